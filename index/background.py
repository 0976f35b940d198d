"""Index changes that run beside questions without slowing them much.

A server that answers questions while it indexes an upload shares the CPU between the two.
``BackgroundIndexer`` runs every change in one worker thread that asks the operating system
for a lower CPU priority for itself alone (``nice`` 10 on Linux, where each thread has its
own), and embeds with a model session made on that thread, whose worker threads inherit the
lower priority. The indexing uses every core the questions leave idle, and a question takes
the cores back whenever it needs them. With the ONNX embedder (the default) a question never
waits for a batch of the upload; with ``embedder="torch"`` it waits for at most one.

On a platform without per-thread priorities the worker runs at normal priority, and questions
share the cores with it.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from index.store import Index, IndexReport

BACKGROUND_NICE = 10  # CFS gives a nice-0 thread ~9x the CPU share of a nice-10 one


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> bool:
    """Lower the calling thread's CPU priority by ``nice``; False where the platform cannot."""
    if not sys.platform.startswith("linux"):
        return False  # elsewhere setpriority(PRIO_PROCESS, id) takes a process id, not a thread's
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        return False
    return True


class BackgroundIndexer:
    """Adds and removes documents of ``index`` in one low-priority worker thread.

    Calls block until their change is committed and return its report, so a caller (an upload
    handler) reads like a plain ``index.add``; only the thread doing the work differs.

    Args:
        index: the index to change; questions keep using it (and its embedder) directly.
        nice: how much lower the worker's priority is (0 keeps it).

    Example:
        >>> indexer = BackgroundIndexer(index)            # doctest: +SKIP
        >>> indexer.add(["big.pdf"]).summary()            # doctest: +SKIP
        '1 indexed, 0 skipped, 0 unchanged, 0 removed (5120 chunks added, 0 removed)'
    """

    def __init__(self, index: Index, nice: int = BACKGROUND_NICE) -> None:
        if nice < 0:
            raise ValueError(f"nice must be 0 or more. Currently, nice is {nice}")
        self.index = index
        self.nice = nice
        self._worker_index: Index | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="indexing", initializer=self._start_worker)
        self.lowered = False

    def _start_worker(self) -> None:
        self.lowered = lower_thread_priority(self.nice) if self.nice else False

    def _index(self) -> Index:
        """The index as the worker sees it: same store, an embedder session made on the worker."""
        if self._worker_index is None:
            self._worker_index = self.index.with_embedder(self.index.embedder.new_session())
        return self._worker_index

    def add(self, paths: Iterable[str | Path], quiet: bool = True) -> IndexReport:
        """Index (or re-index) ``paths`` in the worker; returns when they are committed."""
        paths = list(paths)
        return self._pool.submit(lambda: self._index().add(paths, quiet=quiet)).result()

    def remove(self, sources: Iterable[str]) -> IndexReport:
        """Drop documents by source in the worker; returns when that is committed."""
        sources = list(sources)
        return self._pool.submit(lambda: self._index().remove(sources)).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
