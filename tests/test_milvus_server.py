"""One index on a Milvus server shared by several processes: what a team gets past one laptop.

The server is the ``milvus_server`` fixture (Milvus Lite's gRPC server on a loopback port,
or the Milvus that ``MILVUS_URI`` names). Nothing of the index is in local files.
"""

from __future__ import annotations

import os
import subprocess
import sys

from index import Index
from qa import Engine
from tests.conftest import REPO_ROOT, SEEDS


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_processes_on_one_server_share_the_index(milvus_server, tmp_path, embedder):
    collection = f"shared_{os.getpid()}"
    where = ["--index", milvus_server, "--collection", collection]
    built = cli("-m", "index", "build", str(SEEDS), *where, "--quiet")
    assert built.returncode == 0, built.stderr
    assert not list(tmp_path.iterdir())  # nothing local: the index is in the server

    index = Index.open(milvus_server, collection=collection, embedder=embedder)
    try:
        engine = Engine(index)
        assert engine.ask("who is Rob Strayer?").text == "State Department official"

        note = tmp_path / "lighthouse.txt"
        note.write_text("The lighthouse keeper of Port Ellen is Marguerite Okafor.\n", encoding="utf-8")
        added = cli("-m", "index", "add", str(note), *where, "--quiet")  # another process writes meanwhile
        assert added.returncode == 0, added.stderr
        assert index.refresh()
        assert engine.ask("Who is the lighthouse keeper of Port Ellen?").text == "Marguerite Okafor"

        asked = cli("-m", "qa", *where, "Who is the lighthouse keeper of Port Ellen?")
        assert asked.returncode == 0, asked.stderr
        assert "Marguerite Okafor" in asked.stdout
        assert "too_many_pings" not in asked.stderr + added.stderr + built.stderr
    finally:
        for suffix in ("chunks", "docs", "df", "meta"):
            index.store._client.drop_collection(f"{collection}_{suffix}")
        index.close()


def test_a_connection_left_idle_keeps_working(milvus_server):
    """pymilvus' default 10 s keep-alive pings made a default gRPC server hang up after ~30 s idle
    (GOAWAY "too_many_pings"), and then no client of this process could connect to it again."""
    import time

    from index.backends import open_store

    collection = f"idle_{os.getpid()}"
    first = open_store(milvus_server, create=True, collection=collection)
    try:
        assert first.count() == 0
        time.sleep(45)
        second = open_store(milvus_server, create=True, collection=collection)
        assert second.count() == 0
        first.refresh()  # a call on the connection that sat idle
        second.close()
    finally:
        first.close()
