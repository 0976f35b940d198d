"""Reading folder indexes of format versions 1 and 2 (whole copies per generation).

Those generations hold ``catalog.sqlite`` (documents keyed by source, chunks), ``vectors.faiss``
(an ``IndexIDMap2`` over exact search) and ``terms/`` (a bm25s index). ``read_generation``
turns one into a single segment in memory: the catalog in the current schema, the vectors
as they are, BM25 postings computed from the chunk texts. Nothing is embedded again. The
store reads it like any other segment, and its next commit writes it to disk as a segment
of the current format (so an old index is converted by its first change).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import faiss
import numpy as np

from index.backends.segments import Segment
from index.catalog import Catalog
from index.terms import TermIndex
from index.types import Chunk, Document
from index.vectors import FaissVectorStore

LEGACY_VERSIONS = (1, 2)
LEGACY_NAME = "legacy"


def read_generation(folder: Path, dimension: int) -> tuple[Segment, int]:
    """The old-format generation in ``folder`` as one in-memory segment, and the next free id."""
    src = sqlite3.connect(f"file:{folder / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        docs = src.execute("SELECT source, kind, sha256, pages, raw_segments, text FROM documents ORDER BY source").fetchall()
        chunks = src.execute("SELECT id, source, start, end, page, text FROM chunks ORDER BY id").fetchall()
    finally:
        src.close()
    old = faiss.read_index(str(folder / "vectors.faiss"))
    if old.d != dimension:
        raise ValueError(f"vector file has dimension {old.d}, the manifest says {dimension}; rebuild the index")
    stored = faiss.vector_to_array(old.id_map).astype(np.int64) if hasattr(old, "id_map") else np.arange(old.ntotal)
    chunks = [c for c in chunks if c[1] in {d[0] for d in docs}]  # a chunk without its document is dropped
    ids = np.asarray([c[0] for c in chunks], dtype=np.int64)
    missing = np.setdiff1d(ids, stored)
    if len(missing):
        raise ValueError(f"{len(missing)} chunk(s) of {folder.name} have no vector")
    base = old.index if hasattr(old, "id_map") else old
    all_vectors = base.reconstruct_n(0, base.ntotal)
    order = np.argsort(stored)
    rows = order[np.searchsorted(stored[order], ids)]
    first_doc = int(ids.max()) + 1 if len(ids) else 1
    doc_ids = {d[0]: first_doc + i for i, d in enumerate(docs)}
    by_source: dict[str, list[Chunk]] = {}
    for cid, source, start, end, page, text in chunks:
        by_source.setdefault(source, []).append(Chunk(cid, source, start, end, text, page))
    catalog = Catalog()
    for source, kind, sha256, pages, raw, text in docs:
        document = Document(source=source, text=text, sha256=sha256, kind=kind, pages=tuple(json.loads(pages)),
                            raw_segments=tuple(tuple(s) for s in json.loads(raw)))
        catalog.add_document(doc_ids[source], document, by_source.get(source, []))
    vectors = FaissVectorStore.build(all_vectors[rows], dimension=dimension)
    terms = TermIndex.build(c[5] for c in chunks)
    return Segment(LEGACY_NAME, catalog, ids, vectors, terms), first_doc + len(docs)
