"""BM25 over chunk terms (bm25s), with the document frequencies answer scoring needs.

bm25s has no incremental update, so the term index is rebuilt from the catalog's
chunk texts whenever chunks change; at 100k chunks that takes seconds, far less
than embedding them. Saved with bm25s' own JSON/NumPy format (no pickle).
"""

from __future__ import annotations

import json
from pathlib import Path

import bm25s
import numpy as np

from index.text import terms as text_terms


class TermIndex:
    """BM25 ranking of chunk ids by the stemmed terms of a query."""

    DIRNAME = "terms"

    def __init__(self) -> None:
        self._bm25: bm25s.BM25 | None = None
        self._ids = np.zeros(0, dtype=np.int64)
        self._df: dict[str, int] = {}

    def fit(self, ids: list[int], texts: list[str]) -> None:
        """Index ``texts`` (one per chunk id), replacing whatever was indexed."""
        self._ids = np.asarray(ids, dtype=np.int64)
        if not texts:
            self._bm25, self._df = None, {}
            return
        corpus = [text_terms(t) or [""] for t in texts]
        bm25 = bm25s.BM25()
        bm25.index(corpus, show_progress=False)
        self._bm25 = bm25
        self._df = self._frequencies(bm25)

    @staticmethod
    def _frequencies(bm25: bm25s.BM25) -> dict[str, int]:
        indptr = np.asarray(bm25.scores["indptr"])
        counts = np.diff(indptr)
        return {term: int(counts[i]) for term, i in bm25.vocab_dict.items() if term}

    def count(self) -> int:
        return int(len(self._ids))

    def ids(self) -> np.ndarray:
        """The chunk ids indexed, in fit order."""
        return self._ids.copy()

    def document_frequency(self, term: str) -> int:
        """How many chunks contain the stemmed ``term``."""
        return self._df.get(term, 0)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Top ``k`` chunk ids with BM25 score > 0."""
        if self._bm25 is None or k <= 0:
            return []
        q = [t for t in text_terms(query) if t in self._df]
        if not q:
            return []
        scores = self._bm25.get_scores(q)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self._ids[i]), float(scores[i])) for i in top if scores[i] > 0]

    def save(self, path: Path) -> None:
        folder = Path(path) / self.DIRNAME
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ids.json").write_text(json.dumps(self._ids.tolist()))
        if self._bm25 is not None:
            self._bm25.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> TermIndex:
        folder = Path(path) / cls.DIRNAME
        index = cls()
        index._ids = np.asarray(json.loads((folder / "ids.json").read_text()), dtype=np.int64)
        if len(index._ids):
            index._bm25 = bm25s.BM25.load(str(folder), allow_pickle=False)
            index._df = cls._frequencies(index._bm25)
        return index
