"""A folder store's live state as readers hold it, and the lock its writers take.

``_State`` is one loaded generation: its manifest and segments, with what readers derive from
them (the document map, BM25 statistics, the live-row bitmaps searches pass to FAISS),
computed once per state and shared by every thread reading it.

A dense query searches every segment (FAISS, one query, on the calling thread) and keeps the
best ``k`` of all. Once the segments hold more than ``PARALLEL_DENSE_ROWS`` vectors together,
they are searched side by side on a pool of one thread per core (FAISS releases the GIL while
it searches): a store holds several large HNSW segments then (a merge writes at most
``segments.MAX_MERGED_ROWS`` rows), each costing a fraction of a millisecond, and a query
would otherwise wait for them one after another on one core.
"""

from __future__ import annotations

import contextlib
import fcntl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from index.backends.base import StoreBusy
from index.backends.segments import Live
from index.bm25 import Bm25, Part
from index.embedding import usable_cpus
from index.vectors import live_bitmap

PARALLEL_DENSE_ROWS = 100_000  # below this many vectors a store's segments cost ~1 ms in all: searched in turn

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _search_pool() -> ThreadPoolExecutor:
    """The process's threads for searching segments side by side, one per core, made on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=usable_cpus(), thread_name_prefix="dense-search")
        return _pool


@dataclass(frozen=True, eq=False)
class _State:
    """One loaded generation; readers take the whole object, so they never see a mix of two."""

    generation: str | None
    stamp: tuple[int, int] | None  # CURRENT's (inode, mtime) when it was read
    manifest: dict | None
    segments: tuple[Live, ...] = ()
    next_id: int = 1
    cache: dict = field(default_factory=dict)

    def where(self) -> dict[str, tuple[int, int, str]]:
        """``source -> (segment index, document id, sha256)`` of every live document."""
        if "where" not in self.cache:
            found = {}
            for i, live in enumerate(self.segments):
                for doc_id, source, _, _, _, sha in live.segment.catalog.document_rows():
                    if doc_id not in live.deleted_docs:
                        found[source] = (i, doc_id, sha)
            self.cache["where"] = found
        return self.cache["where"]

    def find(self, source: str) -> tuple[int, int, str] | None:
        """``(segment index, document id, sha256)`` of live ``source``, without listing every document."""
        if "where" in self.cache:
            return self.cache["where"].get(source)
        for i, live in enumerate(self.segments):
            for doc_id, sha in live.segment.catalog.find(source):
                if doc_id not in live.deleted_docs:
                    return i, doc_id, sha
        return None

    def bm25(self) -> Bm25:
        if "bm25" not in self.cache:
            self.cache["bm25"] = Bm25([Part(s.segment.terms, s.live, s.segment.ids) for s in self.segments])
        return self.cache["bm25"]

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` live chunks nearest ``vector``: ``(chunk id, inner product)``, best first
        (ties: lower id first), over every segment; side by side once the store is large."""
        jobs = []
        for i, live in enumerate(self.segments):   # loaded here, once, not by the pool's threads
            bitmap = self.bitmap(i)
            jobs.append((live.segment.ids, live.segment.vectors, live.live if bitmap is not None else None, bitmap))

        def one(job) -> list[tuple[int, float]]:
            ids, vectors, rows, bitmap = job
            return [(int(ids[row]), score) for row, score in vectors.search(vector, k, rows, bitmap)]

        parallel = (len(jobs) > 1 and usable_cpus() > 1
                    and sum(vectors.count() for _, vectors, _, _ in jobs) > PARALLEL_DENSE_ROWS)
        found = _search_pool().map(one, jobs) if parallel else map(one, jobs)
        hits = [hit for part in found for hit in part]
        return sorted(hits, key=lambda h: (-h[1], h[0]))[:k]

    def bitmap(self, i: int) -> np.ndarray | None:
        key = ("bitmap", i)
        if key not in self.cache:
            live = self.segments[i]
            self.cache[key] = live_bitmap(live.live) if live.deleted.any() else None
        return self.cache[key]


def generation_number(name: str) -> int | None:
    head, _, number = name.partition("-")
    return int(number) if head == "gen" and number.isdigit() else None


def _identity(path: Path) -> tuple[int, int] | None:
    """``(inode, mtime)`` of a file written once, to tell a segment from another of the same name."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


@contextlib.contextmanager
def write_lock(path: Path, thread_lock: threading.Lock, timeout: float) -> Iterator[None]:
    """Hold the write lock of the index folder ``path``: ``thread_lock`` for threads of this
    process, then ``path/.lock`` (fcntl) for other processes.

    A writer that has to wait says so once on stderr; after ``timeout`` seconds it gives up
    with ``StoreBusy``.
    """
    began, told = time.monotonic(), False

    def wait_or_give_up() -> bool:
        if time.monotonic() - began > timeout:
            raise StoreBusy(
                f"Another writer has held the index at {path} for over {timeout:.0f} s. "
                f"Let it finish (or stop it) and try again."
            )
        if not told:
            print(f"waiting for another writer on {path} ...", file=sys.stderr, flush=True)
        return True

    while not thread_lock.acquire(timeout=0.2):
        told = wait_or_give_up()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(path / ".lock", "a+") as fh:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    told = wait_or_give_up()
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        thread_lock.release()
