"""Turn files into a searchable store: load (offsets kept), chunk, embed, index.

Example:
    >>> from index import Index
    >>> idx = Index.open(".index/mine", create=True)   # doctest: +SKIP
    >>> idx.build("my-documents/")                     # doctest: +SKIP
"""

from index.loaders import SUPPORTED_SUFFIXES, UnreadableFile, load_document
from index.store import Index, IndexMismatch, IndexNotFound, IndexSettings
from index.types import Chunk, Document, DocumentInfo, IndexReport

__all__ = [
    "Chunk", "Document", "DocumentInfo", "Index", "IndexMismatch", "IndexNotFound", "IndexReport",
    "IndexSettings", "SUPPORTED_SUFFIXES", "UnreadableFile", "load_document",
]
