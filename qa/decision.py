"""Answer or abstain: the probability that the best answer is right, from all the evidence read.

The reader's calibrated score says how sure it is of one passage's span. On a long
document the engine reads several passages of the same text, most of them on topic; the
best of several scores is high by chance, and a passage that almost answers is the common
case. So the decision looks at the evidence across every passage read:

- ``reader``: the reader's score of the best answer, as a logit;
- ``runner_up``: the best score of a *different* answer from another passage (competing
  evidence lowers confidence), as a logit;
- ``agreement``: the share of other passages whose own answer is the same text;
- ``coverage``: the IDF-weighted share of the question's content terms found in the answer's
  sentence and its neighbours (a near miss often names something the text does not);
- ``coverage_passage``: the same share over the whole passage;
- ``dense``: the cosine between question and the answer's passage; ``bm25``: whether BM25
  retrieved that passage at all (1/rank);
- ``type``: whether the answer has the shape the question asks for (a date for "when", a
  number for "how many", a name for "who");
- ``same_document``: the share of the other passages read that come from the best answer's
  document (near 1 when one long document fills the passages read, 0 over a collection of
  short ones, where the reader's score means what it was trained to mean);
- ``dense_sentence`` and ``dense_window``: the cosine between the question and the answer's
  sentence alone, and with its neighbours, embedded as the question is (unlike ``dense``, it
  does not grow or shrink with the length of the chunks an index was cut into).

A logistic model over these features (``Decider``), fitted on held-out questions whose
documents are long (``python -m qa.training.decision``), gives the probability; the
engine answers when it reaches the decider's threshold.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from index.text import terms
from qa.readers.sentences import split_sentences
from qa.readers.spans import DATE_RE, NUMBER_RE, ROLE_WORDS, question_type
from qa.types import Candidate

FEATURES = ("reader", "runner_up", "agreement", "coverage", "coverage_passage", "dense", "bm25", "type",
            "same_document", "dense_sentence", "dense_window")
EMBEDDED = ("dense_sentence", "dense_window")  # the features that need ``embed``
# The ones the shipped model weighs: chosen on the tuning set's out-of-fold F1 (python -m
# qa.training.decision --features ...): the dense cosine, the largest weight when it was in,
# depends on how long the chunks are and sank the short seed article, so it is left out.
DEFAULT_FEATURES = ("reader", "coverage", "bm25")
DECIDER_FILE = Path(__file__).resolve().parent / "models" / "decider.json"

_NAME = re.compile(r"\b[A-Z][\w’'-]*")


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def _normal(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def type_fits(question: str, answer: str) -> float:
    """1.0 when ``answer`` has the shape ``question`` asks for (or the question asks for no
    particular shape), else 0.0."""
    kind = question_type(question)  # the rule-based reader's typing, so both readers agree on it
    if kind == "date":
        return 1.0 if DATE_RE.search(answer) else 0.0
    if kind == "number":
        return 1.0 if NUMBER_RE.search(answer) else 0.0
    if kind == "person":
        return 1.0 if _NAME.search(answer) or ROLE_WORDS & set(answer.lower().split()) else 0.0
    return 1.0


def _coverage(q_terms: Sequence[str], weights: dict[str, float], text: str) -> float:
    if not q_terms:
        return 1.0
    present = set(terms(text))
    total = sum(weights[t] for t in q_terms) or 1.0
    return sum(weights[t] for t in q_terms if t in present) / total


def decision_features(question: str, candidates: Sequence[Candidate], idf: Callable[[str], float],
                       embed: Callable[[list[str]], np.ndarray] | None = None,
                       question_vector: np.ndarray | None = None) -> dict[str, float]:
    """The features of the decision for the best candidate (``candidates`` ranked, best first).

    Args:
        question: the question as answered.
        candidates: every candidate the reader returned (one per passage read), best first.
        idf: inverse document frequency of a stemmed term in the index.
        embed: the index's embedder of questions (unit vectors); without it the ``EMBEDDED``
            features are left out.
        question_vector: ``embed([question])[0]`` when the caller has it already.
    """
    if not candidates:
        return dict.fromkeys(FEATURES if embed is not None else [f for f in FEATURES if f not in EMBEDDED], 0.0)
    best = candidates[0]
    answer = best.answer if best.answer_start is not None else best.sentence
    others = candidates[1:]
    same = _normal(answer)
    rivals = [c.score for c in others if _normal(c.answer or c.sentence) != same]
    agreeing = [c for c in others if same and _normal(c.answer or c.sentence) == same]
    q_terms = list(dict.fromkeys(terms(question)))
    weights = {t: idf(t) for t in q_terms}
    p = best.passage
    # The answer's sentence and its neighbours, cut from the passage.
    at = best.sentence_start - p.start
    spans = split_sentences(p.text)
    around = next((i for i, (s, e) in enumerate(spans) if s <= at < e), None)
    if around is None:
        window = best.sentence
    else:
        lo, hi = spans[max(0, around - 1)][0], spans[min(len(spans) - 1, around + 1)][1]
        window = p.text[lo:hi]
    features = {
        "reader": _logit(best.score),
        "runner_up": _logit(max(rivals)) if rivals else _logit(0.0),
        "agreement": len(agreeing) / len(others) if others else 0.0,
        "coverage": _coverage(q_terms, weights, window),
        "coverage_passage": _coverage(q_terms, weights, p.text),
        "dense": p.dense_score if p.dense_score is not None else 0.0,
        "bm25": 1.0 / p.term_rank if p.term_rank else 0.0,
        "type": type_fits(question, answer),
        "same_document": sum(c.passage.source == p.source for c in others) / len(others) if others else 0.0,
    }
    if embed is not None:
        texts = [best.sentence, window] if question_vector is not None else [best.sentence, window, question]
        vectors = np.asarray(embed(texts), dtype=np.float32)
        q = np.asarray(question_vector if question_vector is not None else vectors[2], dtype=np.float32)
        features["dense_sentence"] = float(vectors[0] @ q)
        features["dense_window"] = float(vectors[1] @ q)
    return features


@dataclass(frozen=True)
class Decider:
    """A logistic model over some of ``FEATURES``: ``p = sigmoid(bias + sum(weights[f] * x[f]))``.

    ``threshold`` is the probability at or above which the engine answers. Stored as JSON
    (``qa/models/decider.json``) with the record of how it was fitted.
    """

    weights: dict[str, float]
    bias: float
    threshold: float
    record: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(FEATURES)
        if unknown or not self.weights:
            raise ValueError(f"decider weights name unknown features {sorted(unknown)} (known: {FEATURES}); "
                             "refit with python -m qa.training.decision")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1]. Currently, threshold is {self.threshold}")

    @property
    def embeds(self) -> bool:
        """Whether it weighs a feature that needs the embedder (``EMBEDDED``)."""
        return any(f in EMBEDDED for f in self.weights)

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(w * features[f] for f, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def to_dict(self) -> dict:
        return {"features": list(self.weights), "weights": self.weights, "bias": self.bias, "threshold": self.threshold,
                "record": self.record}

    @classmethod
    def from_dict(cls, d: dict) -> Decider:
        return cls(weights={k: float(v) for k, v in d["weights"].items()}, bias=float(d["bias"]),
                   threshold=float(d["threshold"]), record=d.get("record", {}))

    @classmethod
    def load(cls, path: str | Path = DECIDER_FILE) -> Decider:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"cannot read the decider {path} ({e}); refit it with python -m qa.training.decision") from None
