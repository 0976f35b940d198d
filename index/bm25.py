"""BM25 over the live chunks of several segments, with the statistics taken at query time.

Each segment keeps its own postings (``index.terms.TermIndex``); what BM25 needs from the
whole index (the number of live chunks N, a term's document frequency df, the average chunk
length) is computed here over the chunks that are live in the reader's state, so a search
scores exactly as one bm25s index built over those chunks would. The formula is bm25s'
default, method "lucene" (k1 = 1.5, b = 0.75)::

    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score(q, c) = sum over the query's terms t (repeats count) of
                  idf(t) * tf(t, c) / (tf(t, c) + k1 * (1 - b + b * len(c) / avg_len))

Everything is vectorised over postings, and a search reads only the postings that can change
its top k (exact dynamic pruning, as MaxScore): a term can add at most its ``bound`` to any
chunk, its weight times tf / (tf + k1 * (1 - b + b * len / avg_len)) at its largest tf and
shortest chunk (``TermIndex.bound``). Terms are scored from the highest bound down, each over
all its postings, until the bounds of the terms left sum below theta, the k-th best score so
far (a lower bound of the final k-th score: scores only grow). A chunk none of the scored terms
holds cannot reach the top k then; for the chunks they hold, the terms left are looked up by
binary search in their postings, and a chunk is dropped as soon as its score plus the bounds
left falls below theta. Every chunk's score is summed in the same term order with or without
pruning, so both return the same chunks with the same scores.
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

SLACK = 1e-9  # relative margin on theta, against rounding in the sums of bounds

_scratch = threading.local()


def _accumulator(rows: int) -> np.ndarray:
    """A zeroed float64 array of ``rows``, this thread's own and reused from search to search.

    It spans the rows of every part: a million rows need 8 MB; a fresh one each query costs
    thousands of page faults (the allocator returns such blocks to the system when freed). Callers put back the
    zeros they overwrite."""
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or len(buffer) < rows:
        buffer = _scratch.buffer = np.zeros(rows)
    return buffer[:rows]


def _contribution(weight: float, tfs: np.ndarray, lengths: np.ndarray, avg_length: float) -> np.ndarray:
    """What a term of ``weight`` adds to chunks of ``lengths`` holding it ``tfs`` times."""
    tfs = tfs.astype(np.float64)
    norm = K1 * (1 - B + B * lengths / avg_length)
    return weight * tfs / (tfs + norm)


def _kth(values: np.ndarray, k: int) -> float:
    """The ``k``-th largest of ``values`` (0 when there are fewer)."""
    if len(values) < k:
        return 0.0
    return float(np.partition(values, len(values) - k)[len(values) - k])


def _raise(theta: float, partial: np.ndarray, k: int) -> float:
    """``theta``, or the ``k``-th best of the ``partial`` scores of distinct chunks if higher."""
    above = partial[partial > theta]
    return max(theta, _kth(above, k))


def _collect(acc: np.ndarray, touched: list[np.ndarray], at_least: float) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``acc`` in ``touched`` (ascending arrays, which may share rows) whose score
    is at least ``at_least`` (and above 0), ascending, with those scores; puts zeros back in
    every touched row.

    Each array's rows are zeroed once read, so a row another array read first reads 0 and is
    left out: no row comes twice, without sorting all of them. Those kept are a few ascending
    runs, which a stable sort merges in linear time."""
    rows, scores = [], []
    for touched_rows in touched:
        values = acc[touched_rows]
        keep = np.flatnonzero(values >= at_least if at_least > 0 else values > 0)  # every value added is > 0
        rows.append(touched_rows[keep])
        scores.append(values[keep])
        acc[touched_rows] = 0.0
    if len(rows) == 1:
        return rows[0], scores[0]
    rows_, scores_ = np.concatenate(rows), np.concatenate(scores)
    order = np.argsort(rows_, kind="stable")
    return rows_[order], scores_[order]


@dataclass(frozen=True)
class Part:
    """One segment as a search sees it: postings, which rows are live, and the rows' chunk ids."""

    terms: TermIndex
    live: np.ndarray  # bool per row
    ids: np.ndarray   # int64 chunk id per row


@dataclass(frozen=True)
class _Term:
    """A query term: its weight (repeats times idf), the most it adds to any chunk, and its
    postings in each part holding it, ``(part, rows, tfs)``, removed rows included."""

    text: str
    weight: float
    bound: float
    postings: list[tuple[int, np.ndarray, np.ndarray]]


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
        # part i's rows are rows offsets[i]..offsets[i+1]-1 of one accumulator over all parts
        self.offsets = np.zeros(len(self.parts) + 1, dtype=np.int64)
        np.cumsum([len(p.live) for p in self.parts], out=self.offsets[1:])
        self._removed = [np.flatnonzero(~p.live).astype(p.terms.positions.dtype) for p in self.parts]

    def document_frequency(self, term: str) -> int:
        """Live chunks holding the stemmed ``term``."""
        return sum(self._live_count(i, p.terms.postings(term)[0]) for i, p in enumerate(self.parts))

    def _live_count(self, part: int, positions: np.ndarray) -> int:
        removed = self._removed[part]
        if not removed.size or not positions.size:
            return len(positions)
        if removed.size * 16 < len(positions):   # few removed rows: look them up in the postings
            at = np.minimum(np.searchsorted(positions, removed), len(positions) - 1)
            return len(positions) - int(np.count_nonzero(positions[at] == removed))
        return int(np.count_nonzero(self.parts[part].live[positions]))

    def idf(self, df: int) -> float:
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def search(self, query: str, k: int, *, prune: bool = True) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, score > 0)``, best first (ties: lower id first).

        ``prune``: skip the postings that cannot reach the top k (the default); False scores
        every posting of the query's terms. Both give the same result."""
        if self.n == 0 or k <= 0:
            return []
        terms = self._query_terms(query)
        if not terms:
            return []
        left = np.cumsum([t.bound for t in terms][::-1])[::-1].tolist() + [0.0]  # bounds of terms j.. summed
        acc = _accumulator(int(self.offsets[-1]))
        theta, scored, touched = 0.0, 0, []
        while scored < len(terms) and not (prune and left[scored] < theta * (1 - SLACK)):
            rows = self._score_all(terms[scored], acc)
            touched.append(rows)
            scored += 1
            if prune and scored < len(terms):
                theta = _raise(theta, acc[rows], k)
        hits, scores = _collect(acc, touched, theta * (1 - SLACK) - left[scored])
        for j in range(scored, len(terms)):
            keep = np.flatnonzero(scores + left[j] >= theta * (1 - SLACK))
            hits, scores = hits[keep], scores[keep]
            self._score_some(terms[j], hits, scores)
            theta = _raise(theta, scores, k)
        return self._best(hits, scores, k)

    def _query_terms(self, query: str) -> list[_Term]:
        """The query's terms found in live chunks, highest bound first (ties by term)."""
        found = []
        for text, repeats in Counter(text_terms(query)).items():
            postings = [(i, *p.terms.postings(text)) for i, p in enumerate(self.parts)]
            postings = [(i, rows, tfs) for i, rows, tfs in postings if len(rows)]
            df = sum(self._live_count(i, rows) for i, rows, _ in postings)
            if not df:
                continue
            weight = repeats * self.idf(df)
            bounds = [self.parts[i].terms.bound(text) for i, _, _ in postings]
            tf, length = max(tf for tf, _ in bounds), min(length for _, length in bounds)
            bound = float(_contribution(weight, np.array([tf]), np.array([length]), self.avg_length)[0])
            found.append(_Term(text, weight, bound, postings))
        return sorted(found, key=lambda t: (-t.bound, t.text))

    def _score_all(self, term: _Term, acc: np.ndarray) -> np.ndarray:
        """Add ``term`` to every live chunk holding it; their rows in ``acc``, ascending."""
        out = []
        for i, positions, tfs in term.postings:
            part = self.parts[i]
            if self._removed[i].size:
                live = part.live[positions]
                positions, tfs = positions[live], tfs[live]
            rows = positions + self.offsets[i]
            acc[rows] += _contribution(term.weight, tfs, part.terms.lengths[positions], self.avg_length)
            out.append(rows)                        # a term's rows are distinct
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def _score_some(self, term: _Term, hits: np.ndarray, scores: np.ndarray) -> None:
        """Add ``term`` to ``scores`` of the chunks at ``hits`` (ascending rows, all live),
        finding them in its postings by binary search from whichever side is shorter."""
        cuts = np.searchsorted(hits, self.offsets)
        for i, positions, tfs in term.postings:
            a, b = cuts[i], cuts[i + 1]
            if a == b:
                continue
            rows = (hits[a:b] - self.offsets[i]).astype(positions.dtype)
            if len(rows) <= len(positions):
                at = np.minimum(np.searchsorted(positions, rows), len(positions) - 1)
                mine = np.flatnonzero(positions[at] == rows)        # hits holding the term
                theirs = at[mine]
            else:
                at = np.minimum(np.searchsorted(rows, positions), len(rows) - 1)
                theirs = np.flatnonzero(rows[at] == positions)      # postings of hits
                mine = at[theirs]
            if mine.size:
                lengths = self.parts[i].terms.lengths[rows[mine]]
                scores[a + mine] += _contribution(term.weight, tfs[theirs], lengths, self.avg_length)

    def _best(self, hits: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` best of the chunks at rows ``hits``: score down, then chunk id up."""
        if len(scores) > k:
            keep = np.flatnonzero(scores >= _kth(scores, k))  # ties at the cut are ranked by id below
            hits, scores = hits[keep], scores[keep]
        cuts = np.searchsorted(hits, self.offsets)
        ids = np.concatenate([np.zeros(0, np.int64)] + [p.ids[hits[cuts[i]:cuts[i + 1]] - self.offsets[i]]
                                                       for i, p in enumerate(self.parts)])
        order = np.lexsort((ids, -scores))[:k]
        return [(int(ids[i]), float(scores[i])) for i in order if scores[i] > 0]
