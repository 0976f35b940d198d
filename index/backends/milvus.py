"""An index held entirely in Milvus: Milvus Lite (a local ``.db`` folder) up to a cluster.

Four collections share a prefix (``collection``, default ``documents``):

* ``PREFIX_chunks``: one row per chunk: id, document id, source, span, page, text, the
  vector (HNSW, COSINE), the chunk's stemmed terms (``index.text.terms``, joined by
  spaces) and their BM25 sparse vector, made by Milvus' BM25 function.
* ``PREFIX_docs``: the document records (source, sha256, kind, pages, raw segments and
  the full text every citation offset points into), as JSON split into parts that fit
  a VARCHAR field.
* ``PREFIX_df``: how many chunks hold each term, kept by the writers
  (``index.backends.milvus_df``), for ``document_frequency``.
* ``PREFIX_meta``: the ``state`` row (committed generation, next id, manifest, chunk
  count, documents still to delete, or the ``hidden-*`` rows that list them when there
  are many) and the writer ``lease`` row.

Commits. Milvus has no multi-row transactions, so every row carries the ``generation``
of the commit that wrote it and readers only see rows of generations up to the one the
``state`` row names; the single-row upsert of ``state`` is the commit. A writer inserts
its rows with the next generation (invisible), then upserts ``state``; the removed
documents are listed in ``state`` as hidden (readers skip them) until their rows are
deleted right after. What a crash can leave: rows of a generation never committed
(invisible; the next writer deletes them before it writes) and hidden documents not
yet deleted (invisible; the next writer deletes them). Neither is ever visible.

Writers: one at a time, by a lease row (``index.backends.milvus_lease`` states the
guarantee) plus a lock per process. Milvus Lite lets one process open a data folder;
another process gets ``StoreBusy``.

Example:
    >>> store = MilvusStore.open("milvus:.index/docs.db", create=True)      # doctest: +SKIP
    >>> with store.writer(manifest) as w:                                    # doctest: +SKIP
    ...     w.add(document, chunks, vectors)
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from collections import Counter
from typing import Iterator, Mapping, Sequence

import numpy as np

from index.backends.base import FORMAT_VERSION, StoreBusy, StoreError, StoreMismatch, StoreNotFound
from index.backends.milvus_client import (BM25_K1, MAX_VARCHAR, TOKEN_ENV, connect, create_chunks,
                                          create_meta_and_docs, disconnect, load)
from index.backends.milvus_df import TermCounts, chunk_terms, create_df
from index.backends.milvus_lease import LEASE_KEY, Lease
from index.text import terms as text_terms
from index.types import Chunk, Document, DocumentInfo

DEFAULT_COLLECTION = "documents"
PART_CHARS = 60000           # characters of ASCII-only JSON per document part
BATCH = 500                  # rows per insert or ``in [...]`` filter
HIDDEN_PER_ROW = 4000        # removed document ids per meta row (well under a VARCHAR's 64 KiB)
DOC_PARTS_BATCH = 64         # document parts per insert: at most ~4 MB in one gRPC message
DF_CACHE = 50_000            # document frequencies remembered per generation
_process_locks: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()


def milvus_options_from(args=None, env: Mapping[str, str] | None = None) -> dict:
    """Milvus options for ``open_store`` from parsed CLI arguments and the environment.

    Reads ``args.collection`` and ``args.milvus_token_file`` when present; the token comes
    from that file, else from ``MILVUS_TOKEN`` in ``env`` (``os.environ`` when None).
    """
    env = os.environ if env is None else env
    options: dict = {}
    collection = getattr(args, "collection", None)
    if collection:
        options["collection"] = collection
    token_file = getattr(args, "milvus_token_file", None)
    if token_file:
        try:
            options["token"] = Path(token_file).read_text().strip()
        except OSError as e:
            raise StoreError(f"Cannot read the Milvus token file {token_file}: {e.strerror}; pass a readable file") from None
    elif env.get(TOKEN_ENV):
        options["token"] = env[TOKEN_ENV]
    return options


def parse_location(location: str) -> tuple[str, bool]:
    """``(uri for MilvusClient, is Milvus Lite)`` for a ``milvus:`` location."""
    for prefix, scheme in (("milvus+https://", "https://"), ("milvus+http://", "http://"), ("milvus://", "http://")):
        if location.startswith(prefix):
            return scheme + location[len(prefix):], False
    path = location[len("milvus:"):]
    if not path.endswith(".db"):
        raise StoreError(f"{location!r}: a Milvus Lite location names a .db path (milvus:.index/docs.db); "
                         f"for a server use milvus://HOST:19530")
    return str(Path(path).expanduser().resolve()), True


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def bm25_text(text: str) -> str:
    """The project's stemmed terms of ``text`` as Milvus' analyzer splits them (``'`` made a word character)."""
    return " ".join(t.replace("'", "_") for t in text_terms(text))


def _terms_field(text: str) -> str:
    joined = bm25_text(text)
    return joined if len(joined) <= MAX_VARCHAR else joined[:MAX_VARCHAR].rsplit(" ", 1)[0]


class MilvusStore:
    """A ``Store`` in Milvus (see the module docstring). Open it with ``MilvusStore.open``."""

    def __init__(self, location: str, client, prefix: str, lite: bool, uri: str,
                 lease_ttl: float = 30.0, lease_settle: float | None = None, lease_wait: float = 120.0) -> None:
        self.location, self._client, self._lite, self._uri = location, client, lite, uri
        self._chunks_name, self._docs_name, self._meta_name = f"{prefix}_chunks", f"{prefix}_docs", f"{prefix}_meta"
        self._counts = TermCounts(client, f"{prefix}_df")
        self._lease_args = (lease_ttl, 0.0 if lite else (2.0 if lease_settle is None else lease_settle), lease_wait)
        self._state: dict = {}
        self._catalog_cache: tuple[tuple, dict[str, dict]] | None = None
        self._df: dict[str, int] = {}
        self._read_lock = threading.RLock()
        with _registry_lock:
            self._process_lock = _process_locks.setdefault(f"{uri}|{prefix}", threading.Lock())
        for name in (self._meta_name, self._docs_name, self._chunks_name, self._counts.name):
            load(client, name)
        self.refresh()

    # ---- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, location: str, create: bool = False, collection: str = DEFAULT_COLLECTION, token: str | None = None,
             **lease) -> MilvusStore:
        """Connect to the store at ``location`` (``milvus:PATH.db``, ``milvus://HOST:PORT``, ``milvus+https://...``).

        Args:
            create: make the collections when they are missing; otherwise that raises ``StoreNotFound``.
            collection: prefix of the store's collections (several indexes can share one Milvus).
            token: a Milvus token (``user:password`` or an API key) for servers that require one.
            **lease: ``lease_ttl``, ``lease_settle``, ``lease_wait`` (see ``index.backends.milvus_lease``).
        """
        if not collection or not collection.replace("_", "a").isalnum() or collection[0].isdigit():
            raise ValueError(f"collection must be letters, digits and '_' (not starting with a digit). Currently, collection is {collection!r}")
        uri, lite = parse_location(location)
        if lite:
            if not create and not Path(uri).exists():
                raise StoreNotFound(f"No Milvus Lite index at {uri}. Build one with: python -m index build FOLDER --index {location}")
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        client = connect(uri, lite, token)
        try:
            meta = f"{collection}_meta"
            if not client.has_collection(meta):
                if not create:
                    raise StoreNotFound(f"No index named {collection!r} at {location}. Build one with: "
                                        f"python -m index build FOLDER --index {location} --collection {collection}")
                create_meta_and_docs(client, collection)
                create_df(client, f"{collection}_df")
            return cls(location, client, collection, lite, uri, **lease)
        except BaseException:
            disconnect(client, uri, lite)
            raise

    def close(self) -> None:
        if self._client is not None:
            disconnect(self._client, self._uri, self._lite)
            self._client = None

    # ---- reading -------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        rows = self._client.get(self._meta_name, ids=[key], output_fields=["value"])
        return rows[0]["value"] if rows else None

    def refresh(self) -> bool:
        raw = self._meta("state")
        state = json.loads(raw) if raw else {"generation": 0, "next_id": 1, "hidden": [], "manifest": None, "chunks": 0}
        if state.get("hidden_rows"):  # a long list of removed documents, kept in rows of its own
            rows = self._client.get(self._meta_name, ids=state["hidden_rows"], output_fields=["key", "value"])
            parts = {r["key"]: json.loads(r["value"]) for r in rows}
            state["hidden"] = [d for key in state["hidden_rows"] for d in parts[key]]
        with self._read_lock:
            changed = (state.get("generation"), state.get("hidden")) != (self._state.get("generation"), self._state.get("hidden"))
            self._state = state
            if changed:
                self._df = {}
            return changed and bool(self._state.get("generation"))

    def _visible(self) -> str:
        """The filter that shows committed rows only (see the module docstring)."""
        state = self._state   # one snapshot: a commit may replace it meanwhile
        expr = f"generation <= {int(state['generation'])}"
        if state.get("hidden"):
            expr += f" and doc not in {[int(d) for d in state['hidden']]}"
        return expr

    def _live(self) -> bool:
        return bool(self._state.get("generation"))

    def manifest(self) -> dict | None:
        return self._state.get("manifest")

    def count(self) -> int:
        return int(self._state.get("chunks", 0))

    def _catalog(self) -> dict[str, dict]:
        """``source -> document record`` (without text) of the visible documents, cached per commit."""
        key = (self._state.get("generation"), tuple(self._state.get("hidden") or ()))
        cached = self._catalog_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        records = {}
        if self._live():
            fields = ["doc", "source", "sha256", "kind", "chars", "chunks"]
            for row in self._query_all(self._docs_name, f"part == 0 and {self._visible()}", fields):
                records[row["source"]] = row
        self._catalog_cache = (key, records)
        return records

    def hashes(self) -> dict[str, str]:
        return {s: r["sha256"] for s, r in self._catalog().items()}

    def documents(self) -> list[DocumentInfo]:
        return [DocumentInfo(source=s, kind=r["kind"], chars=int(r["chars"]), chunks=int(r["chunks"]), sha256=r["sha256"])
                for s, r in sorted(self._catalog().items())]

    def document(self, source: str) -> Document | None:
        record = self._catalog().get(source)
        if record is None:
            return None
        rows = self._query_all(self._docs_name, f"doc == {int(record['doc'])}", ["part", "data"])
        return Document.from_dict(json.loads("".join(r["data"] for r in sorted(rows, key=lambda r: r["part"]))))


    @staticmethod
    def _chunk(row: dict) -> Chunk:
        page = int(row["page"])
        return Chunk(int(row["id"]), row["source"], int(row["start"]), int(row["end"]), row["text"], page if page >= 0 else None)

    def _by_ids(self, ids: list[int], fields: list[str]) -> list[dict]:
        if not self._live():
            return []
        rows = []
        for b in range(0, len(ids), BATCH):
            rows += self._client.query(self._chunks_name, filter=f"id in {ids[b:b + BATCH]} and {self._visible()}",
                                       output_fields=fields)
        return rows

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        rows = self._by_ids([int(i) for i in ids], ["id", "source", "start", "end", "text", "page"])
        return {int(row["id"]): self._chunk(row) for row in rows}

    def chunks_of(self, source: str) -> list[Chunk]:
        record = self._catalog().get(source)
        if record is None:
            return []
        rows = self._query_all(self._chunks_name, f"doc == {int(record['doc'])} and {self._visible()}",
                               ["id", "source", "start", "end", "text", "page"])
        return sorted((self._chunk(r) for r in rows), key=lambda c: (c.start, c.id))

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of chunks ``ids``, float32 rows in the order asked."""
        ids = [int(i) for i in ids]
        found = {int(row["id"]): row["vector"] for row in self._by_ids(ids, ["id", "vector"])}
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(f"no chunks with ids {missing[:10]} in {self.location}")
        dim = int((self.manifest() or {}).get("dimension", 0))
        return np.asarray([found[i] for i in ids], dtype=np.float32).reshape(len(ids), dim)

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if k <= 0 or not self._live() or not self.count():
            return []
        vec = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        hits = self._client.search(self._chunks_name, data=[vec], anns_field="vector", limit=min(k, 16384),
                                   filter=self._visible(), output_fields=["id"],
                                   search_params={"metric_type": "COSINE", "params": {"ef": max(64, min(k, 16384))}})
        return [(int(h["id"]), float(h["distance"])) for h in hits[0]]

    def search_terms(self, query: str, k: int) -> list[tuple[int, float]]:
        text = bm25_text(query)
        if k <= 0 or not text or not self._live() or not self.count():
            return []
        hits = self._client.search(self._chunks_name, data=[text], anns_field="sparse", limit=min(k, 16384),
                                   filter=self._visible(), output_fields=["id"], search_params={"metric_type": "BM25"})
        # Milvus Lite returns BM25 scores negated (as distances); a server returns them as they are.
        scored = [(int(h["id"]), abs(float(h["distance"])) / (BM25_K1 + 1)) for h in hits[0]]
        return sorted([p for p in scored if p[1] > 0], key=lambda p: -p[1])

    def document_frequency(self, term: str) -> int:
        """Chunks holding the stemmed ``term``: exact, from the counts commits keep (``index.backends.milvus_df``)."""
        token = term.replace("'", "_")
        if not self._live() or not token or not token.replace("_", "a").isalnum():
            return 0
        with self._read_lock:
            if token in self._df:
                return self._df[token]
        df = self._counts.lookup([token], int(self._state["generation"]))[token]
        with self._read_lock:
            if len(self._df) >= DF_CACHE:
                self._df.clear()
            self._df[token] = df
        return df

    def _query_all(self, name: str, expr: str, fields: list[str]) -> list[dict]:
        it = self._client.query_iterator(name, batch_size=1000, filter=expr, output_fields=fields)
        rows: list[dict] = []
        try:
            while batch := it.next():
                rows.extend(batch)
        finally:
            it.close()
        return rows

    # ---- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self, manifest: dict) -> Iterator[MilvusWriter]:
        ttl, settle, wait = self._lease_args
        lease = Lease(lambda: self._meta(LEASE_KEY), self._write_lease, self._drop_lease, ttl, settle, wait)
        if not self._process_lock.acquire(timeout=wait):
            raise StoreBusy(f"Another writer in this process kept {self.location} for over {wait:.0f} s; try again when it is done")
        try:
            lease.acquire()
            try:
                self.refresh()
                self._check_manifest(manifest)
                self._clean_up()
                self._ensure_chunks(int(manifest["dimension"]))
                generation = int(self._state["generation"])
                w = MilvusWriter(self, generation + 1, int(self._state.get("next_id", 1)), int(manifest["dimension"]))
                try:
                    yield w
                except BaseException:
                    self._delete_generation_above(generation)   # roll back: this writer's rows are still invisible
                    raise
                lease.check()   # a writer that lost the lease leaves its rows to the next writer's clean-up
                w.commit(manifest)
            finally:
                lease.release()
        finally:
            self._process_lock.release()

    def _write_lease(self, value: str) -> None:
        self._client.upsert(self._meta_name, [{"key": LEASE_KEY, "value": value, "v": [1.0, 0.0]}])

    def _drop_lease(self) -> None:
        self._client.delete(self._meta_name, ids=[LEASE_KEY])

    def _write_state(self, state: dict) -> None:
        """Upsert the ``state`` row: the commit point.

        The documents a commit removes are listed in the row itself, or, when that would not
        fit one VARCHAR (more than ``HIDDEN_PER_ROW``), in ``hidden-GENERATION-N`` rows written first (invisible until the
        state row names them); rows no state names are deleted by the next clean-up.
        """
        state = {k: v for k, v in state.items() if k != "hidden_rows"}
        hidden = [int(d) for d in state.get("hidden") or ()]
        if len(hidden) > HIDDEN_PER_ROW:
            keys = [f"hidden-{int(state['generation'])}-{n}" for n in range(-(-len(hidden) // HIDDEN_PER_ROW))]
            self._client.upsert(self._meta_name, [
                {"key": key, "value": json.dumps(hidden[n * HIDDEN_PER_ROW:(n + 1) * HIDDEN_PER_ROW]), "v": [1.0, 0.0]}
                for n, key in enumerate(keys)])
            state = {**state, "hidden": [], "hidden_rows": keys}
        self._client.upsert(self._meta_name, [{"key": "state", "value": json.dumps(state), "v": [1.0, 0.0]}])
        self.refresh()

    def _check_manifest(self, manifest: dict) -> None:
        stored = self.manifest()
        if manifest.get("format_version") != FORMAT_VERSION:
            raise StoreMismatch(f"manifest format_version {manifest.get('format_version')} is not {FORMAT_VERSION}")
        if stored is None:
            return
        for key in ("format_version", "model", "dimension"):
            if stored.get(key) != manifest.get(key):
                raise StoreMismatch(
                    f"The index at {self.location} was built with {key} {stored.get(key)!r}, this program uses "
                    f"{manifest.get(key)!r}. Rebuild it into a new collection: python -m index build FOLDER "
                    f"--index {self.location} --collection NEW_NAME")

    def _clean_up(self) -> None:
        """Finish what a killed writer left: delete hidden documents and rows of uncommitted generations."""
        hidden = [int(d) for d in self._state.get("hidden") or ()]
        for b in range(0, len(hidden), BATCH):
            expr = f"doc in {hidden[b:b + BATCH]}"
            self._delete(self._chunks_name, expr)
            self._client.delete(self._docs_name, filter=expr)
        if hidden:
            self._write_state({**self._state, "hidden": []})
        self._client.delete(self._meta_name, filter='key like "hidden-%"')  # lists no state row names now
        self._delete_generation_above(int(self._state["generation"]))

    def _delete(self, name: str, expr: str) -> None:
        if self._client.has_collection(name):
            self._client.delete(name, filter=expr)

    def _delete_generation_above(self, generation: int) -> None:
        for name in (self._chunks_name, self._docs_name, self._counts.name):
            self._delete(name, f"generation > {generation}")

    def _ensure_chunks(self, dimension: int) -> None:
        if not self._client.has_collection(self._chunks_name):
            create_chunks(self._client, self._chunks_name, dimension, self._lite)


class MilvusWriter:
    """The ``StoreWriter`` of a ``MilvusStore``: rows go in at once, invisible until ``commit``."""

    def __init__(self, store: MilvusStore, generation: int, next_id: int, dimension: int) -> None:
        self._store, self.generation, self._next_id, self._dimension = store, generation, next_id, dimension
        self._records = dict(store._catalog())      # source -> record, as this writer will leave it
        self._hidden: list[int] = []
        self._added = self._removed = 0
        self._delta: Counter = Counter()                # term -> change in the chunks holding it
        self._doc_terms: dict[int, Counter] = {}        # the same, per document this writer added
        self._pending: dict[str, list[dict]] = {store._chunks_name: [], store._docs_name: []}  # rows not yet inserted
        self._changed = False

    def hashes(self) -> dict[str, str]:
        return {s: r["sha256"] for s, r in self._records.items()}

    def remove(self, source: str) -> int:
        record = self._records.pop(source, None)
        if record is None:
            return 0
        doc = int(record["doc"])
        self._changed = True
        if record.get("generation") == self.generation:   # added by this writer: its rows are still invisible
            self._insert_pending()
            self._store._client.delete(self._store._chunks_name, filter=f"doc == {doc}")
            self._store._client.delete(self._store._docs_name, filter=f"doc == {doc}")
            self._added -= int(record["chunks"])
            self._delta.subtract(self._doc_terms.pop(doc))
        else:
            for row in self._store._query_all(self._store._chunks_name, f"doc == {doc}", ["terms"]):
                self._delta.subtract(chunk_terms(row["terms"]))
            self._hidden.append(doc)
            self._removed += int(record["chunks"])
        return int(record["chunks"])

    def add(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> list[int]:
        if document.source in self._records:
            raise ValueError(f"{document.source} is already in the index; remove it first")
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self._dimension):
            raise ValueError(f"vectors must have shape ({len(chunks)}, {self._dimension}). Currently, vectors has shape {vectors.shape}")
        doc = self._next_id
        self._changed = True
        ids = list(range(doc + 1, doc + 1 + len(chunks)))
        self._next_id = doc + 1 + len(chunks)
        rows = []
        for cid, chunk, vec in zip(ids, chunks, vectors):
            if len(chunk.text.encode("utf-8")) > MAX_VARCHAR or len(chunk.source.encode("utf-8")) > MAX_VARCHAR:
                raise ValueError(f"a chunk of {document.source} is over {MAX_VARCHAR} bytes; index with a smaller chunk_size")
            rows.append({"id": cid, "doc": doc, "source": chunk.source, "start": chunk.start, "end": chunk.end,
                         "page": -1 if chunk.page is None else int(chunk.page), "text": chunk.text,
                         "terms": _terms_field(chunk.text),
                         "vector": vec.tolist(), "generation": self.generation})
        counts = Counter(t for row in rows for t in chunk_terms(row["terms"]))
        self._doc_terms[doc] = counts
        self._delta.update(counts)
        payload = json.dumps(document.to_dict())                     # ASCII only: characters == bytes
        parts = [payload[i:i + PART_CHARS] for i in range(0, len(payload), PART_CHARS)] or [""]
        record = {"doc": doc, "source": document.source, "sha256": document.sha256, "kind": document.kind,
                  "chars": len(document.text), "chunks": len(chunks), "generation": self.generation}
        self._pending[self._store._chunks_name] += rows
        self._pending[self._store._docs_name] += [
            {**record, "id": (doc << 20) + n, "part": n, "data": part, "v": [1.0, 0.0]} for n, part in enumerate(parts)]
        if len(self._pending[self._store._chunks_name]) >= BATCH or len(self._pending[self._store._docs_name]) >= DOC_PARTS_BATCH:
            self._insert_pending()
        self._records[document.source] = record
        self._added += len(chunks)
        return ids

    def _insert_pending(self) -> None:
        """Insert the rows kept so far (still invisible: their generation is not committed).

        Rows of many small documents go in together: one call per document would cost a
        round trip each."""
        for name, rows in self._pending.items():
            step = DOC_PARTS_BATCH if name == self._store._docs_name else BATCH
            for b in range(0, len(rows), step):
                self._store._client.insert(name, rows[b:b + step])
            rows.clear()

    def commit(self, manifest: dict) -> None:
        self._insert_pending()
        store, state = self._store, self._store._state
        if not self._changed and store.manifest() is not None:
            return                                               # nothing to commit: no new generation
        touched = store._counts.stage(self._delta, int(state["generation"]), self.generation)
        new = {"generation": self.generation, "next_id": self._next_id, "hidden": self._hidden,
               "manifest": manifest, "chunks": int(state.get("chunks", 0)) + self._added - self._removed}
        store._write_state(new)                                  # the commit point
        store._counts.prune(touched, self.generation)
        if self._hidden:
            store._clean_up()
        if store._lite:
            # Milvus Lite scans unsealed rows one by one and builds its HNSW, BM25 and scalar
            # indexes when a segment is sealed: flush so queries after a commit stay fast.
            for name in (store._chunks_name, store._docs_name, store._counts.name):
                store._client.flush(name)
