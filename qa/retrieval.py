"""Hybrid retrieval: dense (FAISS) and BM25 candidates fused by reciprocal rank."""

from __future__ import annotations

import numpy as np

from index import Index
from qa.types import Passage


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = 60) -> list[tuple[int, float]]:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + rank), rank from 1.

    >>> reciprocal_rank_fusion([[1, 2], [2, 3]], k=60)[0][0]
    2
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def retrieve(index: Index, question: str, top_k: int, retrieve_k: int = 30, rrf_k: int = 60,
             question_vector: np.ndarray | None = None) -> list[Passage]:
    """The ``top_k`` passages for ``question``, best first.

    Args:
        index: the store to search.
        question: the question text.
        top_k: passages returned.
        retrieve_k: candidates taken from each retriever before fusion.
        rrf_k: fusion constant.
        question_vector: the question's embedding, if already computed.
    """
    if index.count() == 0:
        return []
    vector = question_vector if question_vector is not None else index.embed([question])[0]
    dense = index.search_dense(vector, retrieve_k)
    terms = index.search_terms(question, retrieve_k)
    dense_rank = {cid: r for r, (cid, _) in enumerate(dense, start=1)}
    dense_score = dict(dense)
    term_rank = {cid: r for r, (cid, _) in enumerate(terms, start=1)}
    fused = reciprocal_rank_fusion([[c for c, _ in dense], [c for c, _ in terms]], k=rrf_k)[:top_k]
    chunks = index.chunks([cid for cid, _ in fused])
    passages = []
    for cid, score in fused:
        c = chunks.get(cid)
        if c is None:
            continue
        passages.append(
            Passage(
                chunk_id=cid, source=c.source, start=c.start, end=c.end, text=c.text, score=score,
                page=c.page, dense_rank=dense_rank.get(cid), term_rank=term_rank.get(cid),
                dense_score=dense_score.get(cid),
            )
        )
    return passages
