"""BM25 over the live chunks of several segments, with the statistics taken at query time.

Each segment keeps its own postings (``index.terms.TermIndex``); what BM25 needs from the
whole index (the number of live chunks N, a term's document frequency df, the average chunk
length) is computed here over the chunks that are live in the reader's state, so a search
scores exactly as one bm25s index built over those chunks would. The formula is bm25s'
default, method "lucene" (k1 = 1.5, b = 0.75)::

    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score(q, c) = sum over the query's terms t (repeats count) of
                  idf(t) * tf(t, c) / (tf(t, c) + k1 * (1 - b + b * len(c) / avg_len))

Everything is vectorised over postings: a query costs the length of its terms' postings,
not the number of chunks.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from index.terms import TermIndex
from index.text import terms as text_terms

K1 = 1.5
B = 0.75

_scratch = threading.local()


def _accumulator(rows: int) -> np.ndarray:
    """A zeroed float64 array of ``rows``, this thread's own and reused from search to search.

    A segment of half a million rows needs 4 MB; a fresh one each query costs a thousand page
    faults (the allocator returns such blocks to the system when freed). Callers put back the
    zeros they overwrite."""
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or len(buffer) < rows:
        buffer = _scratch.buffer = np.zeros(rows)
    return buffer[:rows]


@dataclass(frozen=True)
class Part:
    """One segment as a search sees it: postings, which rows are live, and the rows' chunk ids."""

    terms: TermIndex
    live: np.ndarray  # bool per row
    ids: np.ndarray   # int64 chunk id per row


class Bm25:
    """Scores over the live rows of ``parts``.

    Example:
        >>> t = TermIndex.build(["red lamps", "a fire in the lamp room", "red potatoes"])
        >>> bm = Bm25([Part(t, np.array([True, True, False]), np.array([1, 2, 3]))])
        >>> [cid for cid, _ in bm.search("red lamp", 5)], bm.document_frequency("red")
        ([1, 2], 1)
    """

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = list(parts)
        self.n = int(sum(int(p.live.sum()) for p in self.parts))
        total = sum(int(p.terms.lengths[p.live].sum()) for p in self.parts)
        self.avg_length = total / self.n if self.n else 0.0

    def document_frequency(self, term: str) -> int:
        """Live chunks holding the stemmed ``term``."""
        return sum(int(p.live[p.terms.postings(term)[0]].sum()) for p in self.parts)

    def idf(self, df: int) -> float:
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, score > 0)``, best first (ties: lower id first)."""
        if self.n == 0 or k <= 0:
            return []
        weights: dict[str, float] = {}
        for term, repeats in Counter(text_terms(query)).items():
            df = self.document_frequency(term)
            if df:
                weights[term] = repeats * self.idf(df)
        if not weights:
            return []
        ids, scores = [], []
        for p in self.parts:
            rows, values = [], []
            for term, weight in weights.items():
                positions, tfs = p.terms.postings(term)
                live = p.live[positions]
                positions, tfs = positions[live], tfs[live].astype(np.float64)
                norm = K1 * (1 - B + B * p.terms.lengths[positions] / self.avg_length)
                rows.append(positions)
                values.append(weight * tfs / (tfs + norm))
            touched = sum(len(r) for r in rows)
            if not touched:
                continue
            if touched * 8 < len(p.live):   # few postings: sum them per row
                unique, inverse = np.unique(np.concatenate(rows), return_inverse=True)
                ids.append(p.ids[unique])
                scores.append(np.bincount(inverse, weights=np.concatenate(values)))
            else:                           # many: one accumulator over the segment's rows
                acc = _accumulator(len(p.live))
                for r, v in zip(rows, values):
                    acc[r] += v             # a term's rows are distinct
                hit = np.flatnonzero(acc)   # every value added is > 0
                ids.append(p.ids[hit])
                scores.append(acc[hit])
                acc[hit] = 0.0
        if not ids:
            return []
        all_ids, all_scores = np.concatenate(ids), np.concatenate(scores)
        if len(all_ids) > k:
            keep = np.argpartition(-all_scores, k - 1)[:k]
            cut = all_scores[keep].min()
            keep = np.flatnonzero(all_scores >= cut)  # ties at the cut are ranked by id below
            all_ids, all_scores = all_ids[keep], all_scores[keep]
        order = np.lexsort((all_ids, -all_scores))[:k]
        return [(int(all_ids[i]), float(all_scores[i])) for i in order if all_scores[i] > 0]
