"""Turn files into a searchable store: load (offsets kept), chunk, embed, index.

Example:
    >>> from index import Index
    >>> idx = Index.open(".index/mine", create=True)   # doctest: +SKIP
    >>> idx.build("my-documents/")                     # doctest: +SKIP
"""

from index.loaders import SUPPORTED_SUFFIXES, UnreadableFile, load_document
from index.store import DEFAULT_DOCUMENTS_DIR, DEFAULT_INDEX_DIR, Index, IndexMismatch, IndexNotFound, IndexSettings
from index.types import Chunk, Document, DocumentInfo, IndexReport

__all__ = [
    "DEFAULT_DOCUMENTS_DIR", "DEFAULT_INDEX_DIR", "Chunk", "Document", "DocumentInfo", "Index", "IndexMismatch", "IndexNotFound", "IndexReport",
    "IndexSettings", "SUPPORTED_SUFFIXES", "UnreadableFile", "load_document",
]
