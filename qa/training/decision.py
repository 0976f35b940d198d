"""Fit the answer-or-abstain decision (``qa.decision.Decider``) on the long-document tuning set.

    python -m qa.training.decision                       # writes qa/models/decider.json
    python -m qa.training.decision --out my-decider.json --folds 5

The engine answers each question of the tuning part of the long-document set
(``qa.eval.longdocs``, never its held-out part) exactly as it answers users, and records
the decision features of its best answer (``qa.decision.decision_features``). A logistic
regression learns from them whether the answer is right (F1 >= 0.5 against the gold
answers; every answer to an unanswerable question is wrong). The threshold is the one
that maximises the set's overall F1 (an abstention scores 1 on an unanswerable question,
0 on an answerable one), computed on out-of-fold probabilities so it is not chosen on the
same predictions the model was fitted to.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qa.decision import DECIDER_FILE, DEFAULT_FEATURES, FEATURES, Decider
from qa.eval.metrics import f1_score

RIGHT_F1 = 0.5  # an answer at least this close to a gold answer counts as right


@dataclass(frozen=True)
class Observation:
    """One answered question: its features, the F1 of the engine's best answer, answerable or not."""

    features: dict[str, float] | None  # None: no candidate to answer with, so the engine abstains anyway
    f1: float
    answerable: bool


def observe(eval_set, index, **overrides) -> list[Observation]:
    """Answer every question of ``eval_set`` over ``index`` and keep the decision features."""
    from qa.engine import Engine

    engine = Engine(index)
    out = []
    for q in eval_set.questions:
        # Never abstaining, so the answer is the best candidate whatever the decision would be.
        answer = engine.ask(q.question, min_score=0.0, decider="off", **overrides)
        f1 = f1_score(answer.text, list(q.answers)) if q.answers else 0.0
        out.append(Observation(dict(answer.evidence) or None, f1, q.answerable))
    return out


def overall_f1(probabilities: np.ndarray, observations: list[Observation], threshold: float) -> float:
    """Mean F1 when answering at ``probability >= threshold`` and abstaining below it."""
    scores = [(o.f1 if p >= threshold else 0.0) if o.answerable else (0.0 if p >= threshold else 1.0)
              for p, o in zip(probabilities, observations)]
    return float(np.mean(scores)) if scores else 0.0


def fit(observations: list[Observation], folds: int = 5, seed: int = 0, c: float = 1.0,
        features: tuple[str, ...] = DEFAULT_FEATURES) -> Decider:
    """A Decider over ``features`` fitted to ``observations``; its threshold from out-of-fold probabilities."""
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown features {sorted(unknown)}; choose among {FEATURES}")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    scored = [i for i, o in enumerate(observations) if o.features is not None]
    x = np.array([[observations[i].features[f] for f in features] for i in scored], dtype=np.float64)
    y = np.array([observations[i].answerable and observations[i].f1 >= RIGHT_F1 for i in scored], dtype=int)
    if len(set(y)) < 2:
        raise ValueError("the observations need both right and wrong answers to fit a decision")
    model = LogisticRegression(C=c, max_iter=2000)
    out_of_fold = np.zeros(len(observations))  # questions without a candidate are never answered
    out_of_fold[scored] = cross_val_predict(model, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                                            method="predict_proba")[:, 1]
    grid = np.round(np.arange(0.0, 1.0001, 0.01), 2)
    curve = [overall_f1(out_of_fold, observations, t) for t in grid]
    threshold = float(grid[int(np.argmax(curve))])
    model.fit(x, y)
    answerable = [o for o in observations if o.answerable]
    record = {
        "fitted_on": "qa.eval.longdocs tuning part",
        "questions": len(observations),
        "answerable": len(answerable),
        "right_answers": int(y.sum()),
        "without_candidate": len(observations) - len(scored),
        "folds": folds,
        "C": c,
        "overall_f1_out_of_fold": round(max(curve) * 100, 2),
        "always_abstain_f1": round(100 * (1 - len(answerable) / len(observations)), 2),
        "answer_everything_f1": round(100 * overall_f1(np.ones(len(observations)), observations, 0.5), 2),
        "fitted_at": time.strftime("%Y-%m-%d"),
        "features": list(features),
        "command": "python -m qa.training.decision --features " + " ".join(features),
    }
    return Decider(weights={f: round(float(w), 6) for f, w in zip(features, model.coef_[0])},
                   bias=round(float(model.intercept_[0]), 6), threshold=threshold, record=record)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.training.decision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DECIDER_FILE, help=f"where to write the decider (default {DECIDER_FILE})")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds for the threshold (default 5)")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength (default 1.0)")
    parser.add_argument("--observations", type=Path, help="also keep each question's features and F1 here (JSONL)")
    parser.add_argument("--from-observations", type=Path, metavar="FILE",
                        help="fit on observations kept by an earlier --observations run instead of answering again")
    parser.add_argument("--features", nargs="+", default=list(DEFAULT_FEATURES), choices=FEATURES,
                        help=f"what the model weighs (default: {' '.join(DEFAULT_FEATURES)})")
    parser.add_argument("--index-cache", help="index folder for the set's documents (default under eval-output/)")
    args = parser.parse_args(argv)

    from qa.eval.longdocs import load_longdocs
    from qa.eval.run import default_index_cache, sync_index

    if args.from_observations:
        observations = [Observation(**json.loads(line)) for line in args.from_observations.read_text().splitlines() if line]
    else:
        eval_set = load_longdocs("tune")
        cache = args.index_cache or default_index_cache(eval_set.documents, "longdocs")
        index = sync_index(cache, eval_set.documents)
        observations = observe(eval_set, index)
    if args.observations:
        args.observations.write_text("".join(json.dumps(asdict(o)) + "\n" for o in observations))
    decider = fit(observations, folds=args.folds, c=args.c, features=tuple(args.features))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(decider.to_dict(), indent=2) + "\n")
    print(json.dumps(decider.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
