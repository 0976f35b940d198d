"""Index changes made beside questions: a worker thread, the model at low priority on a thread
of its own with its own session, the same index."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

from index import Index
from index.background import BackgroundIndexer, lower_thread_priority
from tests.conftest import SEEDS

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")


def thread_nice(tid: int) -> int:
    fields = Path(f"/proc/{os.getpid()}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of stat(5), counted after the command name


@linux_only
def test_lowering_priority_touches_only_the_calling_thread():
    seen = {}

    def worker():
        seen["lowered"] = lower_thread_priority(5)
        seen["tid"] = threading.get_native_id()
        seen["nice"] = thread_nice(seen["tid"])

    before = thread_nice(threading.get_native_id())
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["lowered"] and seen["nice"] == before + 5
    assert thread_nice(threading.get_native_id()) == before


@linux_only
def test_background_adds_with_its_own_low_priority_session(tmp_path, embedder):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    index = Index.open(tmp_path / "index", create=True, embedder=embedder)
    index.build(docs, quiet=True)
    extra = tmp_path / "more" / "note.txt"
    extra.parent.mkdir()
    extra.write_text("The harbour master of Eastport is Mira Okafor, appointed in 2021.\n", encoding="utf-8")

    indexer = BackgroundIndexer(index)
    try:
        report = indexer.add([extra])
        assert report.indexed == (str(extra),)
        # The caller's index sees the commit at once, and finds the new text.
        assert str(extra) in {d.source for d in index.documents()}
        top = index.search_terms("harbour master Eastport", k=1)
        assert index.store.chunks([top[0][0]])[top[0][0]].source == str(extra)

        # The worker (reading, chunking, committing) keeps normal priority: it holds the
        # interpreter lock, and a starved thread holding it would stall every question.
        worker = indexer._pool.submit(threading.get_native_id).result()
        assert thread_nice(worker) == thread_nice(threading.get_native_id())
        # Its embedder's model calls run on low-priority threads; questions keep calling the
        # model on their own threads at normal priority.
        worker_embedder = indexer._index().embedder
        assert worker_embedder is not index.embedder and index.embedder._run_on is None
        model_threads = []
        embed = worker_embedder._impl.embed
        worker_embedder._impl.embed = lambda items: (model_threads.append(threading.get_native_id()), embed(items))[1]
        assert worker_embedder.encode(["harbour"]) == pytest.approx(index.embedder.encode(["harbour"]), abs=1e-5)
        assert indexer.lowered and model_threads and thread_nice(model_threads[0]) == min(19, thread_nice(worker) + 10)

        assert indexer.remove([str(extra)]).removed == (str(extra),)
        assert str(extra) not in {d.source for d in index.documents()}
    finally:
        indexer.close()


def test_nice_must_not_be_negative(tmp_path, embedder):
    index = Index.open(tmp_path / "index", create=True, embedder=embedder)
    with pytest.raises(ValueError, match="nice must be 0 or more"):
        BackgroundIndexer(index, nice=-1)
