"""The change one ``FolderStore.writer`` block makes, held in memory until it commits.

Added documents go to an in-memory catalog with their vectors (they become one new segment
at commit); removed documents of existing segments are marked in copies of those segments'
deletion masks (they become deletion files). Nothing is written before the block ends, so
a writer that fails commits nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from index.catalog import Catalog
from index.types import Chunk, Document

if TYPE_CHECKING:
    from index.backends.folder import _State


class FolderWriter:
    """``hashes``, ``remove`` and ``add`` over one generation (see ``index.backends.base.StoreWriter``)."""

    def __init__(self, state: _State, dimension: int) -> None:
        self.state = state
        self.dimension = dimension
        self.next_id = state.next_id
        self.changed = False
        self.catalog = Catalog()
        self.deleted: dict[int, tuple[np.ndarray, set[int]]] = {}  # segment index -> (rows, documents) removed
        self._where = dict(state.where())  # source -> (segment index, document id, sha256)
        self._added: dict[str, tuple[int, str, np.ndarray, np.ndarray]] = {}  # source -> (doc id, sha, ids, vectors)

    def hashes(self) -> dict[str, str]:
        found = {source: sha for source, (_, _, sha) in self._where.items()}
        found.update({source: sha for source, (_, sha, _, _) in self._added.items()})
        return found

    def remove(self, source: str) -> int:
        if source in self._added:
            doc_id, _, ids, _ = self._added.pop(source)
            self.catalog.remove_document(doc_id)
            return len(ids)
        if source not in self._where:
            return 0
        i, doc_id, _ = self._where.pop(source)
        live = self.state.segments[i]
        chunk_ids = live.segment.catalog.chunk_ids_of(doc_id)
        rows, _ = live.segment.rows_of(np.asarray(chunk_ids, dtype=np.int64))
        deleted, docs = self.deleted.setdefault(i, (live.deleted.copy(), set(live.deleted_docs)))
        deleted[rows] = True
        docs.add(doc_id)
        self.changed = True
        return len(chunk_ids)

    def add(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> list[int]:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(chunks), self.dimension) if len(chunks) \
            else np.zeros((0, self.dimension), np.float32)
        if len(vectors) != len(chunks):
            raise ValueError(f"got {len(vectors)} vectors for {len(chunks)} chunks of {document.source}")
        if document.source in self._where or document.source in self._added:
            raise ValueError(f"{document.source} is already in the index; remove it first")
        doc_id = self.next_id
        ids = list(range(doc_id + 1, doc_id + 1 + len(chunks)))
        self.next_id = doc_id + 1 + len(chunks)
        stored = [Chunk(cid, c.source, c.start, c.end, c.text, c.page) for cid, c in zip(ids, chunks)]
        self.catalog.add_document(doc_id, document, stored)
        self._added[document.source] = (doc_id, document.sha256, np.asarray(ids, dtype=np.int64), vectors)
        self.changed = True
        return ids

    def where_after(self, segments: list) -> dict[str, tuple[int, int, str]] | None:
        """The documents after this change as ``source -> (segment index, doc id, sha256)``,
        given the new generation's segments in order (the new one last, when something was added)."""
        index_of = {id(live.segment): i for i, live in enumerate(self.state.segments)}
        position = {id(seg): j for j, seg in enumerate(segments)}
        old_to_new = {i: position[sid] for sid, i in index_of.items() if sid in position}
        if any(i not in old_to_new for i, _, _ in self._where.values()):
            return None  # a segment was rewritten (converted from an old format): list it afresh
        found = {source: (old_to_new[i], doc_id, sha) for source, (i, doc_id, sha) in self._where.items()}
        for source, (doc_id, sha, _, _) in self._added.items():
            found[source] = (len(segments) - 1, doc_id, sha)
        return found

    def segment_parts(self) -> tuple[Catalog, np.ndarray, np.ndarray, list[str]] | None:
        """What the new segment holds: catalog, chunk ids (ascending), vectors, chunk texts; None when nothing was added."""
        added = sorted(self._added.values(), key=lambda a: a[0])
        if not added:
            return None
        ids = np.concatenate([a[2] for a in added])
        # One document's vectors (a single large file) are used as they are, not copied.
        vectors = added[0][3] if len(added) == 1 else np.concatenate([a[3] for a in added])
        texts = [text for _, text in self.catalog.texts()]
        if len(texts) != len(ids):
            raise RuntimeError(f"the new segment has {len(texts)} chunk texts for {len(ids)} chunk ids")
        return self.catalog, ids, vectors, texts
