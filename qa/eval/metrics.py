"""Evaluation metrics: small pure functions, comparable with published figures.

SQuAD metrics follow the official evaluation scripts (v1.1 and v2.0): answers are
normalised (lower-case, punctuation removed, the articles a/an/the removed, white
space collapsed); exact match and token F1 are the maximum over the gold answers.
An empty gold list means "not answerable" (SQuAD 2.0): then only an empty
prediction scores, with EM = F1 = 1.

Retrieval metrics follow BEIR (pytrec_eval): nDCG@k with the qrels score as a
linear gain, recall@k as the share of relevant documents in the top k.

Example:
    >>> exact_match("The Eiffel Tower!", ["eiffel tower"])
    1.0
    >>> round(f1_score("the tall Eiffel Tower", ["Eiffel Tower"]), 3)
    0.8
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, drop articles, collapse white space (as the official script)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _gold_list(gold_answers: Sequence[str]) -> list[str]:
    """Gold answers as the SQuAD 2.0 script reads them: those normalising to "" are dropped;
    none left means the only right answer is the empty string."""
    golds = [g for g in gold_answers if normalize_answer(g)]
    return golds or [""]


def exact_match_single(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_single(prediction: str, gold: str) -> float:
    """Token-overlap F1 between one prediction and one gold answer.

    Two empty strings agree (F1 = 1); an empty one against a non-empty one scores 0.
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold_answers: Sequence[str]) -> float:
    """Best exact match over ``gold_answers``; [] means the right answer is to abstain ("")."""
    return max(exact_match_single(prediction, g) for g in _gold_list(gold_answers))


def f1_score(prediction: str, gold_answers: Sequence[str]) -> float:
    """Best token F1 over ``gold_answers``; [] means the right answer is to abstain ("")."""
    return max(f1_single(prediction, g) for g in _gold_list(gold_answers))


def contains_answer(text: str, gold_answers: Sequence[str]) -> bool:
    """True when the normalised ``text`` contains a normalised gold answer as whole tokens.

    >>> contains_answer("Rob Strayer, a State Department official, said...", ["state department official"])
    True
    >>> contains_answer("Chinese telecom", ["a"])   # an answer that normalises to "" never counts
    False
    """
    haystack = f" {normalize_answer(text)} "
    for g in gold_answers:
        needle = normalize_answer(g)
        if needle and f" {needle} " in haystack:
            return True
    return False


def span_inside(inner: tuple[int, int], outer: tuple[int, int]) -> bool:
    """True when the character span ``inner`` lies within ``outer`` (end-exclusive spans)."""
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def spans_overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """True when two end-exclusive character spans share at least one character."""
    return a[0] < b[1] and b[0] < a[1]


def citation_correct(cited_span: tuple[int, int], cited_source: str, cited_quote: str, gold_source: str,
                     gold_context: tuple[int, int], gold_answer_spans: Sequence[tuple[int, int]],
                     gold_answers: Sequence[str]) -> bool:
    """True when a citation lies inside the gold context and contains a gold answer.

    Spans are end-exclusive character offsets into the same document. Where the gold
    answers' offsets are known the cited span must cover one of them (so a citation of
    another mention elsewhere in the document does not count); otherwise the quote must
    contain a gold answer (``contains_answer``).

    >>> citation_correct((10, 40), "a.txt", "...", "a.txt", (0, 100), [(20, 25)], ["Paris"])
    True
    >>> citation_correct((10, 40), "b.txt", "...", "a.txt", (0, 100), [(20, 25)], ["Paris"])
    False
    """
    if cited_source != gold_source or not span_inside(cited_span, gold_context):
        return False
    if gold_answer_spans:
        return any(span_inside(a, cited_span) for a in gold_answer_spans)
    return contains_answer(cited_quote, gold_answers)


def recall_at_k(rank: int | None, k: int) -> float:
    """1.0 when the gold item's 1-based ``rank`` is within the top ``k`` (None: not retrieved)."""
    if k <= 0:
        raise ValueError(f"k must be greater than 0. Currently, k is {k}")
    return float(rank is not None and rank <= k)


def reciprocal_rank(rank: int | None) -> float:
    """1 / rank of the first relevant item; 0.0 when it was not retrieved."""
    if rank is not None and rank <= 0:
        raise ValueError(f"rank is 1-based. Currently, rank is {rank}")
    return 0.0 if rank is None else 1.0 / rank


def ndcg_at_k(ranked_ids: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k as BEIR computes it (pytrec_eval ``ndcg_cut``): gain = qrels score, discount log2(rank + 1).

    Args:
        ranked_ids: retrieved document ids, best first (duplicates after the first are ignored).
        qrels: document id -> relevance for one query (scores <= 0 are not relevant).
        k: cut-off.

    Returns:
        DCG of the top k divided by the DCG of the ideal ranking; 0.0 when nothing is relevant.
    """
    if k <= 0:
        raise ValueError(f"k must be greater than 0. Currently, k is {k}")
    ranked = _unique(ranked_ids)[:k]
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k_docs(ranked_ids: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents (qrels score > 0) found in the top ``k``."""
    if k <= 0:
        raise ValueError(f"k must be greater than 0. Currently, k is {k}")
    relevant = {d for d, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(_unique(ranked_ids)[:k])) / len(relevant)


def _unique(ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for d in ids:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def score_at_threshold(prediction: str, confidence: float, gold_answers: Sequence[str], threshold: float) -> tuple[float, float]:
    """(EM, F1) of a prediction that is kept only when ``confidence >= threshold`` (else abstains)."""
    kept = prediction if confidence >= threshold else ""
    return exact_match(kept, gold_answers), f1_score(kept, gold_answers)


def best_threshold(confidences: Sequence[float], answered: Sequence[float], abstained: Sequence[float],
                   weights: Sequence[float] | None = None, candidates: Sequence[float] | None = None,
                   ties: str = "highest") -> tuple[float, float]:
    """The abstention threshold that maximises the (weighted) mean score: the one threshold search
    that evaluation, threshold choice and the reader's training all use.

    An item is answered when its confidence >= threshold and then scores ``answered[i]``,
    otherwise ``abstained[i]``. With the defaults this is SQuAD 2.0's ``find_best_thresh``:
    candidate thresholds are the observed confidences plus "abstain on everything" (reported
    just above the highest confidence, at most 1.0), and ties go to the highest threshold.

    Args:
        confidences: per item, the score the threshold is compared with.
        answered: per item, the metric (EM or F1) if the prediction is kept.
        abstained: per item, the metric if it abstains (1 for no-answer questions, else 0).
        weights: per item, its weight (default 1 each); the mean is ``sum(w * metric) / sum(w)``.
            Giving each of two groups a total weight of one half gives SQuAD 2.0's F1 with as many
            unanswerable questions as answerable ones; ``1 / len(run)`` per item weighs runs alike.
        candidates: thresholds to try (e.g. a 0.01 grid); None: the observed confidences and
            "abstain on everything".
        ties: "highest" (answer least, as the official script) or "lowest" threshold among equal means.

    Returns:
        (threshold, weighted mean metric).

    Raises:
        ValueError: lengths differ, no items, no candidates, or an unknown ``ties``.

    >>> best_threshold([0.9, 0.2], answered=[1.0, 0.0], abstained=[0.0, 1.0])
    (0.9, 1.0)
    """
    n = len(confidences)
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    if not (n == len(answered) == len(abstained) == len(w)):
        raise ValueError(f"confidences, answered, abstained (and weights) must have the same length; got {n}, "
                         f"{len(answered)}, {len(abstained)}, {len(w)}")
    if n == 0:
        raise ValueError("no questions to choose a threshold on; pass at least one")
    if ties not in ("highest", "lowest"):
        raise ValueError(f"ties must be 'highest' or 'lowest'. Currently, ties is {ties!r}")
    total = sum(w)
    if total <= 0:
        raise ValueError(f"weights must sum to more than 0; got {total}")
    abstain_all = float("inf")
    if candidates is None:
        thresholds = [abstain_all, *sorted(set(confidences), reverse=True)]
    else:
        thresholds = sorted(set(candidates), reverse=True)
        if not thresholds:
            raise ValueError("no candidate thresholds; pass at least one")
    order = sorted(range(n), key=lambda i: -confidences[i])
    current = sum(wi * a for wi, a in zip(w, abstained))  # everything abstains above the highest confidence
    best_value = best_thresh = None
    i = 0
    for t in thresholds:  # highest first: each step answers the items at or above t
        while i < n and confidences[order[i]] >= t:
            j = order[i]
            current += w[j] * (answered[j] - abstained[j])
            i += 1
        if (best_value is None or current > best_value + 1e-12
                or (ties == "lowest" and current >= best_value - 1e-12)):
            best_value, best_thresh = current, t
    if best_thresh == abstain_all:
        best_thresh = min(max(confidences) + 1e-6, 1.0)
    return round(best_thresh, 6), best_value / total


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), numpy's linear interpolation; 0.0 for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100]. Currently, q is {q}")
    if len(values) == 0:
        return 0.0
    return float(np.percentile(np.asarray(values, dtype=float), q, method="linear"))
