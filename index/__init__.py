"""Turn files into a searchable store: load (offsets kept), chunk, embed, index.

Example:
    >>> from index import Index
    >>> idx = Index.open(".index/mine", create=True)   # doctest: +SKIP
    >>> idx.build("my-documents/")                     # doctest: +SKIP

Importing ``index`` loads no model library and no store engine: the embedding model, FAISS
and Milvus load when an index is opened or a text embedded.
"""

from __future__ import annotations

from index.backends import StoreBusy
from index.loaders import SUPPORTED_SUFFIXES, UnreadableFile, load_document
from index.store import (DEFAULT_DOCUMENTS_DIR, DEFAULT_INDEX_DIR, Index, IndexMismatch, IndexNotFound, IndexSettings,
                         IndexStoreError)
from index.types import Chunk, Document, DocumentInfo, IndexReport

__all__ = [
    "Chunk", "DEFAULT_DOCUMENTS_DIR", "DEFAULT_INDEX_DIR", "Document", "DocumentInfo", "Index", "IndexMismatch",
    "IndexNotFound", "IndexReport", "IndexSettings", "IndexStoreError", "SUPPORTED_SUFFIXES", "StoreBusy",
    "UnreadableFile", "load_document",
]
