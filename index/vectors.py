"""Vector stores behind one small interface, so another engine can replace FAISS.

``VectorStore`` is what the rest of the project uses: add, remove, search, count,
save, load. ``FaissVectorStore`` keeps an exact inner-product index with an id map
(``IndexIDMap2`` over ``IndexFlatIP``) so chunks can be removed one by one.

Index type rule: exact flat search is used at every size. On a laptop it answers a
query over 100,000 MiniLM vectors (384 floats) in a few milliseconds and needs no
training, so incremental adds stay exact. Beyond about a million chunks an IVF index
(``4 * sqrt(n)`` cells, as txtai does) would be the next step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import faiss
import numpy as np


class VectorStore(Protocol):
    dimension: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray) -> int: ...
    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]: ...
    def count(self) -> int: ...
    def save(self, path: Path) -> None: ...
    @classmethod
    def load(cls, path: Path, dimension: int) -> "VectorStore": ...


class FaissVectorStore:
    """Exact cosine search over unit vectors with removable int64 ids.

    Example:
        >>> store = FaissVectorStore(dimension=2)
        >>> store.add(np.array([7]), np.array([[1.0, 0.0]], dtype=np.float32))
        >>> store.search(np.array([1.0, 0.0], dtype=np.float32), k=1)
        [(7, 1.0)]
    """

    FILENAME = "vectors.faiss"

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        if dimension <= 0:
            raise ValueError(f"dimension must be greater than 0. Currently, dimension is {dimension}")
        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors must have shape (n, {self.dimension}); got {vectors.shape}")
        if len(ids) != len(vectors):
            raise ValueError(f"got {len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if k <= 0:
            raise ValueError(f"k must be greater than 0. Currently, k is {k}")
        n = self._index.ntotal
        if n == 0:
            return []
        query = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        scores, ids = self._index.search(query, min(k, n))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors for ``ids`` (each must be present)."""
        return np.vstack([self._index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, self.dimension), np.float32)

    def ids(self) -> np.ndarray:
        """Every stored id."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def copy(self) -> FaissVectorStore:
        """An independent copy (a writer changes the copy; readers keep the original)."""
        return FaissVectorStore(self.dimension, faiss.clone_index(self._index))

    def count(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(Path(path) / self.FILENAME))

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissVectorStore:
        index = faiss.read_index(str(Path(path) / cls.FILENAME))
        if index.d != dimension:
            raise ValueError(f"vector file has dimension {index.d}, the manifest says {dimension}; rebuild the index")
        return cls(dimension, index)
