"""The store interface: where an index's documents, chunks, vectors and terms live.

``Index`` (``index.store``) turns files into chunks and vectors; a ``Store`` keeps them
and searches them. Nothing outside ``index/`` knows which store it talks to. Two
implementations exist:

* ``FolderStore`` (``index.backends.folder``): a folder on one machine, FAISS vectors,
  BM25 terms and a SQLite catalog. The default.
* ``MilvusStore`` (``index.backends.milvus``): a Milvus collection, from Milvus Lite (a
  local ``.db`` file) to a server or cluster, holding everything, documents included.

A store is read by many threads and processes at once and written by one writer at a
time. A writer takes the store's lock *before* it reads the state it will change::

    with store.writer(manifest) as w:      # waits for the lock, then sees the latest state
        if w.hashes().get(source) != doc.sha256:
            w.remove(source)
            w.add(doc, chunks, vectors)
    # leaving the block commits atomically; an exception rolls everything back

so two writers never lose each other's changes, and a reader sees either the state
before a commit or the state after it, never a half-applied one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, Sequence

import numpy as np

from index.types import Chunk, Document, DocumentInfo

# Bump when the stored layout changes in a way older code cannot read.
FORMAT_VERSION = 2


class StoreError(RuntimeError):
    """Base for store errors whose message says what to do."""


class StoreNotFound(StoreError, FileNotFoundError):
    """No index at the given location (and ``create`` was not asked for)."""


class StoreMismatch(StoreError):
    """The stored index was built with another embedding model or format version."""


class StoreBusy(StoreError):
    """Another writer holds the lock and did not release it in time."""


class StoreWriter(Protocol):
    """One exclusive change to a store, committed as a whole when the ``writer`` block ends."""

    def hashes(self) -> dict[str, str]:
        """``source -> sha256`` of every document, as of now (the lock is held)."""
        ...

    def remove(self, source: str) -> int:
        """Drop ``source`` and its chunks; returns the number of chunks removed (0 if absent)."""
        ...

    def add(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> list[int]:
        """Store ``document`` with its chunks and their unit vectors (one row per chunk).

        ``document.source`` must not be present (``remove`` it first). Returns the ids the
        store gave the chunks, in order; ``Chunk.id`` on input is ignored.
        """
        ...


class Store(Protocol):
    """Documents, chunks, vectors and terms of one index, searchable.

    Every read method reflects the last ``refresh`` (or commit by this object).
    """

    location: str

    def manifest(self) -> dict | None:
        """The stored manifest (``format_version``, ``model``, ``dimension``, chunking),
        or None while nothing was ever committed."""
        ...

    def count(self) -> int:
        """Number of chunks."""
        ...

    def hashes(self) -> dict[str, str]:
        """``source -> sha256`` of every indexed document."""
        ...

    def documents(self) -> list[DocumentInfo]:
        """Every indexed document, ordered by source."""
        ...

    def document(self, source: str) -> Document | None:
        """The indexed text of ``source``: what every offset points into."""
        ...

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        """The chunks with these ids (missing ids are left out)."""
        ...

    def chunks_of(self, source: str) -> list[Chunk]:
        """The chunks of ``source`` in document order."""
        ...

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored unit vectors of these chunk ids: float32 rows in the order of ``ids``
        (each id must be present). ``python -m index copy`` moves an index with them
        without embedding anything again."""
        ...

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, cosine)`` pairs, best first."""
        ...

    def search_terms(self, query: str, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, BM25 score > 0)`` pairs for the query's stemmed terms, best first."""
        ...

    def document_frequency(self, term: str) -> int:
        """How many chunks contain the stemmed ``term``."""
        ...

    def refresh(self) -> bool:
        """Pick up commits made by other writers (processes or objects); True when something changed."""
        ...

    def writer(self, manifest: dict) -> AbstractContextManager[StoreWriter]:
        """Take the write lock, refresh, and yield a ``StoreWriter``; commit on a clean exit.

        ``manifest`` is written with the commit; the store refuses it (``StoreMismatch``)
        when it disagrees with the stored one on ``model``, ``dimension`` or ``format_version``.
        """
        ...

    def close(self) -> None:
        """Release files, connections and locks."""
        ...
