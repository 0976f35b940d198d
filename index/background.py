"""Index changes that run beside questions without slowing them much.

A server that answers questions while it indexes an upload shares the CPU between the two.
``BackgroundIndexer`` runs every change in one worker thread, and runs the embedding model,
nearly all of an upload's computing, on threads of its own (one per core) that ask the
operating system for a lower CPU priority for themselves alone (``nice`` 10 on Linux, where
each thread has its own). ONNX Runtime computes on the thread that calls it, so the model uses
every core the questions leave idle, and a question takes the cores back whenever it needs
them.

The worker itself (reading, checking and chunking files, committing) keeps normal priority:
it holds the interpreter lock while it runs Python code, and a thread holding that lock must
not be one the operating system starves, or every question waits for it. For the same reason
the embedder tokenises an upload batch by batch: the tokenizer's thread pool is shared by the
whole process. With the ONNX embedder (the default) a question never waits for a batch of the
upload; with ``embedder="torch"`` it waits for at most one, computed at normal priority.

On a platform without per-thread priorities the model runs at normal priority, and questions
share the cores with it.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from index.embedding import usable_cpus
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


def model_threads(nice: int = BACKGROUND_NICE, count: int | None = None) -> ThreadPoolExecutor:
    """``count`` threads (default one per usable core) at ``nice`` lower CPU priority for an
    embedder's model calls: ``embedder.running_on(model_threads())``. Its ``lowered`` says
    whether the platform lowered the threads' priority (False until a thread has started)."""

    def lower() -> None:
        executor.lowered = lower_thread_priority(nice) if nice else False

    executor = ThreadPoolExecutor(max_workers=count or usable_cpus(), thread_name_prefix="embedding",
                                  initializer=lower)
    executor.lowered = False
    return executor


class BackgroundIndexer:
    """Adds and removes documents of ``index`` in a worker thread, embedding at low priority.

    Calls block until their change is committed and return its report, so a caller (an upload
    handler) reads like a plain ``index.add``; only the threads doing the work differ.

    Args:
        index: the index to change; questions keep using it (and its embedder) directly.
        nice: how much lower the embedding thread's priority is (0 keeps it).

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
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="indexing")
        self._model = model_threads(nice)

    @property
    def lowered(self) -> bool:
        """Whether the embedding threads run at lower priority (False before the first change)."""
        return self._model.lowered

    def _index(self) -> Index:
        """The index as the worker sees it: same store, its model calls run at low priority."""
        if self._worker_index is None:
            self._worker_index = self.index.with_embedder(self.index.embedder.running_on(self._model))
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
        self._model.shutdown(wait=True)
