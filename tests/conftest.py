"""Shared fixtures: the real embedding model and reader (each loaded once) and small real corpora."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS = REPO_ROOT / "seeds"
SEED_FILE = SEEDS / "000_ffecf142e84792ea.txt"


def default_sigint() -> None:
    """``preexec_fn`` for a child a test stops with Ctrl-C (SIGINT): the child gets the default
    disposition, so Python turns the signal into KeyboardInterrupt even when the test run itself
    was started with SIGINT ignored (a background job of a non-interactive shell, ``nohup``),
    which a child would otherwise inherit."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def embedder():
    """The bundled all-MiniLM-L6-v2, loaded once per test session."""
    from index.embedding import shared_embedder

    return shared_embedder()


@pytest.fixture(scope="session")
def reader():
    """The shipped neural reader, loaded once per test session."""
    from qa.readers.neural import NeuralReader, is_available

    assert is_available(), "qa/models/reader is missing: run `python -m qa.train_reader`"
    return NeuralReader.load()


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, embedder):
    """An index over a copy of seeds/, shared by tests that only read it."""
    from index import Index

    root = tmp_path_factory.mktemp("seed-index")
    docs = root / "docs"
    shutil.copytree(SEEDS, docs)
    index = Index.open(root / "index", create=True, embedder=embedder)
    index.build(docs, quiet=True)
    return index


@pytest.fixture(scope="session")
def seed_engine(seed_index):
    """The engine over the seed index with the rule-based reader."""
    from qa import Engine, QASettings

    return Engine(seed_index, QASettings(reader="sentence"))


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """``milvus://127.0.0.1:PORT``: a Milvus gRPC server on a loopback port for this test session.

    It is Milvus Lite's own server (``milvus-lite server``), so the store's server code path
    (``milvus://`` addresses, writer leases, several processes on one index) runs without
    Docker; ``MILVUS_URI`` points the same tests at a real Milvus instead.
    """
    import os
    import socket
    import subprocess
    import sys
    import time

    from tests.ui_helpers import free_port

    pytest.importorskip("milvus_lite", reason="Milvus Lite is in requirements.txt; pip install -r requirements.txt")
    if os.environ.get("MILVUS_URI"):
        yield os.environ["MILVUS_URI"]
        return
    port = free_port()
    data = tmp_path_factory.mktemp("milvus-server")
    server = subprocess.Popen([str(Path(sys.executable).parent / "milvus-lite"), "server", "--data-dir", str(data / "db"),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=(data / "server.log").open("w"))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"milvus-lite server did not start: {(data / 'server.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield f"milvus://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
