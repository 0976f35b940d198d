"""Turn files into a searchable store: load (offsets kept), chunk, embed, index.

Example:
    >>> from index import Index
    >>> idx = Index.open(".index/mine", create=True)   # doctest: +SKIP
    >>> idx.build("my-documents/")                     # doctest: +SKIP

The names below are imported on first use, so that ``from index.text import terms`` (the
word tokens that BM25 and answer scoring share) loads neither FAISS nor LangChain nor the
file loaders: ``qa.extract`` and the reader's training run on machines without them.
"""

from __future__ import annotations

from importlib import import_module

_HOME = {
    "SUPPORTED_SUFFIXES": "index.loaders", "UnreadableFile": "index.loaders", "load_document": "index.loaders",
    "DEFAULT_DOCUMENTS_DIR": "index.store", "DEFAULT_INDEX_DIR": "index.store", "Index": "index.store",
    "IndexMismatch": "index.store", "IndexNotFound": "index.store", "IndexSettings": "index.store",
    "IndexStoreError": "index.store", "StoreBusy": "index.backends",
    "Chunk": "index.types", "Document": "index.types", "DocumentInfo": "index.types", "IndexReport": "index.types",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'index' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
