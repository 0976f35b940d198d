"""Stores an index can live in, chosen by the location string.

    open_store(".index/default")                     # a folder: FAISS + BM25 + SQLite (FolderStore)
    open_store("milvus:.index/docs.db")              # Milvus Lite, a local file (MilvusStore)
    open_store("milvus://host:19530")                # a Milvus server or cluster
    open_store("milvus+https://host:443")            # the same over TLS (token: see MilvusStore)
"""

from __future__ import annotations

from index.backends.base import (FORMAT_VERSION, Store, StoreBusy, StoreError, StoreMismatch, StoreNotFound,
                                 StoreWriter)

MILVUS_PREFIXES = ("milvus:", "milvus://", "milvus+http://", "milvus+https://")


def is_milvus(location: str) -> bool:
    """Whether ``location`` names a Milvus store rather than a folder."""
    return str(location).startswith(MILVUS_PREFIXES)


def open_store(location: str, create: bool = False, **options) -> Store:
    """The store at ``location`` (a folder path or a ``milvus:`` address).

    Args:
        location: where the index lives (see the module docstring).
        create: start an empty store when there is none; otherwise that raises ``StoreNotFound``.
        **options: backend options (``collection``, ``token`` for Milvus; ``lock_timeout`` and
            ``load_parts`` for folders, see ``FolderStore``).
    """
    if is_milvus(location):
        from index.backends.milvus import MilvusStore

        return MilvusStore.open(str(location), create=create, **options)
    from index.backends.folder import FolderStore

    unknown = sorted(set(options) - {"lock_timeout", "load_parts"})
    if unknown:
        raise TypeError(f"options {unknown} apply to Milvus stores only; {location!r} is a folder")
    return FolderStore.open(str(location), create=create, **options)


__all__ = ["FORMAT_VERSION", "Store", "StoreBusy", "StoreError", "StoreMismatch", "StoreNotFound", "StoreWriter",
           "is_milvus", "open_store"]
