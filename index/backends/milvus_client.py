"""Connecting to Milvus (Lite in this process, or a server) and creating a store's collections."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from pathlib import Path

from index.backends.base import StoreBusy, StoreError

TOKEN_ENV = "MILVUS_TOKEN"
MAX_VARCHAR = 65535          # bytes in a Milvus VARCHAR
# BM25 as the folder store computes it (bm25s' Lucene variant, k1 1.5, b 0.75); Milvus multiplies
# each term's score by (k1 + 1), which the store divides out so both stores score alike.
BM25_K1, BM25_B = 1.5, 0.75
_lite_users: dict[str, int] = {}
_lite_lock = threading.Lock()


# pymilvus pings the server every 10 s, idle or not. A gRPC server with the library's defaults
# (Milvus Lite's, embedded or served) allows one ping per 5 minutes without calls and answers
# more with GOAWAY "too_many_pings": the connection drops, and every later client for the same
# address fails to connect. Ping only while a call is under way, at most every 5 minutes.
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": False}


def connect(uri: str, lite: bool, token: str | None):
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    # Lite: the check, the start of the in-process server and the count of its users happen under
    # one lock, so threads of this process never mistake each other's server for another process.
    with _lite_lock if lite else contextlib.nullcontext():
        if lite and not _lite_users.get(uri) and _locked_by_another(uri):
            raise StoreBusy(f"Another process has the Milvus Lite index {uri} open (Milvus Lite allows one process "
                            f"per index); stop it, or serve the index from a Milvus server (docs/SCALE.md)")
        try:
            client = MilvusClient(uri=uri, token=token or "", grpc_options=GRPC_OPTIONS)
        except MilvusException as e:
            if lite and _locked_by_another(uri):
                raise StoreBusy(f"Another process has the Milvus Lite index {uri} open (Milvus Lite allows one "
                                f"process per index); stop it and try again") from None
            raise StoreError(f"Cannot connect to Milvus at {uri}: {e}. Check the address and the token "
                             f"(--milvus-token-file or {TOKEN_ENV})") from None
        if lite:
            _lite_users[uri] = _lite_users.get(uri, 0) + 1
            iterator_log = logging.getLogger("pymilvus.client.iterator.query_iterator")
            if not any(isinstance(f, _QuietLiteTimestamps) for f in iterator_log.filters):
                iterator_log.addFilter(_QuietLiteTimestamps())
    return client


class _QuietLiteTimestamps(logging.Filter):
    """Milvus Lite answers iterators without a server timestamp; pymilvus warns on every one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "mvccTs" not in record.getMessage()


def _locked_by_another(path: str) -> bool:
    lock = Path(path) / "LOCK"
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def disconnect(client, uri: str, lite: bool) -> None:
    client.close()
    if lite:
        with _lite_lock:
            _lite_users[uri] = _lite_users.get(uri, 1) - 1
            if _lite_users[uri] <= 0:
                from milvus_lite.server_manager import server_manager_instance

                del _lite_users[uri]
                server_manager_instance.release_server(uri)   # lets another process open the folder


def load(client, name: str) -> None:
    """Load ``name`` into memory when it exists and is not loaded (after a restart it is not)."""
    if client.has_collection(name) and str(client.get_load_state(name).get("state")) != "Loaded":
        client.load_collection(name)


def create_meta_and_docs(client, prefix: str) -> None:
    from pymilvus import DataType

    for name, fields in (
        (f"{prefix}_meta", [("key", DataType.VARCHAR, {"is_primary": True, "max_length": 64}),
                            ("value", DataType.VARCHAR, {"max_length": MAX_VARCHAR})]),
        (f"{prefix}_docs", [("id", DataType.INT64, {"is_primary": True}), ("doc", DataType.INT64, {}),
                            ("part", DataType.INT64, {}), ("source", DataType.VARCHAR, {"max_length": MAX_VARCHAR}),
                            ("sha256", DataType.VARCHAR, {"max_length": 64}), ("kind", DataType.VARCHAR, {"max_length": 64}),
                            ("chars", DataType.INT64, {}), ("chunks", DataType.INT64, {}),
                            ("data", DataType.VARCHAR, {"max_length": MAX_VARCHAR}), ("generation", DataType.INT64, {})]),
    ):
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        for field, dtype, kw in fields:
            schema.add_field(field, dtype, **kw)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)   # Milvus requires a vector field in every collection
        index = client.prepare_index_params()
        index.add_index(field_name="v", index_type="FLAT", metric_type="L2")
        client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def create_chunks(client, name: str, dimension: int, lite: bool) -> None:
    from pymilvus import DataType, Function, FunctionType
    from pymilvus.exceptions import MilvusException

    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
    index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
    index.add_index(field_name="doc", index_type="INVERTED")
    # The terms are already the project's stemmed terms: split on spaces only. Milvus has a
    # whitespace tokenizer; Milvus Lite (embedded, or its gRPC server) has only "standard",
    # which splits on non-word characters, and the stored terms contain none.
    for tokenizer in ("standard",) if lite else ("whitespace", "standard"):
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        for field in ("doc", "start", "end", "page", "generation"):
            schema.add_field(field, DataType.INT64)
        schema.add_field("source", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("terms", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
                         analyzer_params={"tokenizer": tokenizer})
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_function(Function(name="terms_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["terms"], output_field_names=["sparse"]))
        try:
            client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
            return
        except MilvusException as e:
            if tokenizer == "standard" or "tokenizer" not in str(e):
                raise
