"""Fit the answer-or-abstain decision (``qa.decision.Decider``) on one or several sets of questions.

    python -m qa.training.decision                       # writes qa/models/decider.json
    python -m qa.training.decision --sets longdocs-tune shortdocs-fit --check shortdocs-check \\
        --observations obs/ --out both.json              # long and short documents together
    python -m qa.training.decision --sets longdocs-tune tests/data/conversations-dev.jsonl \\
        --out with-conversations.json                    # and every turn of a conversation set, understood
    python -m qa.training.decision --from-observations longdocs-tune=obs/longdocs-tune.jsonl \\
        shortdocs-fit=obs/shortdocs-fit.jsonl --check shortdocs-check=obs/shortdocs-check.jsonl
    python -m qa.training.decision --reader-dir my-reader --out my-decider.json   # for a retrained reader

The engine answers each question of the fitting sets exactly as it answers users and records
the decision features of its best answer (``qa.decision.decision_features``). The sets are
the tuning part of the long-document set (``qa.eval.longdocs``: one long document fills the
passages read; the shipped model is fitted on it alone) and, optionally, the fit part of the
short-document set (``qa.eval.shortdocs``: a collection of single paragraphs), a question set
of ``qa.eval``'s JSONL format (a ``.jsonl`` path, e.g. ``tests/data/seed-dev.jsonl``) or a
conversation set (a ``.jsonl`` path whose records hold ``turns``: each turn asked as its
``rewrite``, ``qa.eval.conversations.turns_as_questions``); never their
held-out or check parts, never SQuAD dev. A logistic regression learns from them whether
the answer is right (F1 >= 0.5 against the gold answers; every answer to an unanswerable
question is wrong).

Each set counts the same however many questions it has: an observation of set ``g`` weighs
``N / (G * n_g)`` (N observations in all, G sets, n_g in set g), in the fit and in the
threshold. The threshold maximises that weighted overall F1 (an abstention scores 1 on an
unanswerable question, 0 on an answerable one), the mean of the sets' own F1, computed on
out-of-fold probabilities so it is not chosen on the predictions the model was fitted to.
The check sets (``--check``, e.g. ``shortdocs-check``) are scored with the fitted model and
recorded, never fitted on.
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
from qa.settings import PRECISIONS

RIGHT_F1 = 0.5  # an answer at least this close to a gold answer counts as right
REPO = Path(__file__).resolve().parents[2]  # a conversation set may be named relative to it
FIT_SETS = ("longdocs-tune",)  # what the shipped model is fitted on
CHECK_SETS = ()


@dataclass(frozen=True)
class Observation:
    """One answered question: its features, the F1 of the engine's best answer, answerable or not,
    and (to read what the decision saw) the question and that answer."""

    features: dict[str, float] | None  # None: no candidate to answer with, so the engine abstains anyway
    f1: float
    answerable: bool
    question: str = ""
    answer: str = ""  # the best candidate, whatever the decision makes of it ("" when there is none)


def observe(eval_set, index, **overrides) -> list[Observation]:
    """Answer every question of ``eval_set`` over ``index`` and keep the decision features."""
    from qa.engine import Engine

    engine = Engine(index)
    out = []
    for q in eval_set.questions:
        # Never abstaining, so the answer is the best candidate whatever the decision would be.
        answer = engine.ask(q.question, min_score=0.0, decider="off", **overrides)
        f1 = f1_score(answer.text, list(q.answers)) if q.answers else 0.0
        out.append(Observation(dict(answer.evidence) or None, f1, q.answerable, q.question, answer.text))
    return out


def read_observations(path: str | Path) -> list[Observation]:
    """Observations kept by an earlier ``--observations`` run (JSONL, one per line)."""
    try:
        return [Observation(**json.loads(line)) for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"cannot read observations from {path} ({e}); make them with --observations DIR") from None


def overall_f1(probabilities: np.ndarray, observations: list[Observation], threshold: float) -> float:
    """Mean F1 when answering at ``probability >= threshold`` and abstaining below it."""
    scores = _scores(probabilities, observations, threshold)
    return float(np.mean(scores)) if len(scores) else 0.0


def _scores(probabilities, observations: list[Observation], threshold: float) -> np.ndarray:
    return np.array([(o.f1 if p >= threshold else 0.0) if o.answerable else (0.0 if p >= threshold else 1.0)
                     for p, o in zip(probabilities, observations)])


def figures(probabilities, observations: list[Observation], threshold: float) -> dict:
    """Overall F1, HasAns F1, NoAns accuracy and share answered (percentages) at ``threshold``."""
    scores = _scores(probabilities, observations, threshold)
    has = np.array([o.answerable for o in observations], dtype=bool)

    def pct(values) -> float | None:
        return round(100 * float(np.mean(values)), 2) if len(values) else None

    return {"questions": len(observations), "f1": pct(scores), "has_ans_f1": pct(scores[has]),
            "no_ans_accuracy": pct(scores[~has]), "answered": pct(np.asarray(probabilities) >= threshold)}


def _features_of(o: Observation, features: tuple[str, ...], name: str) -> list[float]:
    missing = [f for f in features if f not in o.features]
    if missing:
        raise ValueError(f"the observations of {name} lack the features {missing}; observe that set again "
                         "(python -m qa.training.decision --observations DIR) or fit without them")
    return [o.features[f] for f in features]


def fit(sets: dict[str, list[Observation]], folds: int = 5, seed: int = 0, c: float = 1.0,
        features: tuple[str, ...] = DEFAULT_FEATURES) -> Decider:
    """A Decider over ``features`` fitted to the observations of every set in ``sets`` (name ->
    observations), each set weighing the same in total; its threshold from out-of-fold probabilities."""
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown features {sorted(unknown)}; choose among {FEATURES}")
    sets = {name: sets[name] for name in sorted(sets) if sets[name]}  # folds do not depend on the order given
    if not sets:
        raise ValueError("no observations to fit on; give at least one set with questions")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    observations = [o for obs in sets.values() for o in obs]
    group = np.concatenate([np.full(len(obs), g) for g, obs in enumerate(sets.values())])
    weight = np.concatenate([np.full(len(obs), len(observations) / (len(sets) * len(obs))) for obs in sets.values()])
    names = list(sets)
    scored = np.array([i for i, o in enumerate(observations) if o.features is not None])
    x = np.array([_features_of(observations[i], features, names[group[i]]) for i in scored], dtype=np.float64)
    y = np.array([observations[i].answerable and observations[i].f1 >= RIGHT_F1 for i in scored], dtype=int)
    if len(set(y)) < 2:
        raise ValueError("the observations need both right and wrong answers to fit a decision")
    out_of_fold = np.zeros(len(observations))  # questions without a candidate are never answered
    # Folds keep each set's share of right and wrong answers.
    strata = group[scored] * 2 + y
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, strata):
        model = LogisticRegression(C=c, max_iter=2000).fit(x[train], y[train], sample_weight=weight[scored][train])
        out_of_fold[scored[test]] = model.predict_proba(x[test])[:, 1]
    grid = np.round(np.arange(0.0, 1.0001, 0.01), 2)
    curve = [float(np.average(_scores(out_of_fold, observations, t), weights=weight)) for t in grid]
    threshold = float(grid[int(np.argmax(curve))])
    model = LogisticRegression(C=c, max_iter=2000).fit(x, y, sample_weight=weight[scored])
    record = {
        "fitted_on": names,
        "weighting": "each set weighs the same: N / (G * n_g) per observation",
        "questions": len(observations),
        "right_answers": int(y.sum()),
        "without_candidate": len(observations) - len(scored),
        "folds": folds,
        "C": c,
        "weighted_f1_out_of_fold": round(max(curve) * 100, 2),
        "out_of_fold": {name: figures(out_of_fold[group == g], obs, threshold) for g, (name, obs) in enumerate(sets.items())},
        "always_abstain_f1": {name: figures(np.zeros(len(obs)), obs, 0.5)["f1"] for name, obs in sets.items()},
        "answer_everything_f1": {name: figures(np.ones(len(obs)), obs, 0.5)["f1"] for name, obs in sets.items()},
        "fitted_at": time.strftime("%Y-%m-%d"),
        "features": list(features),
    }
    return Decider(weights={f: round(float(w), 6) for f, w in zip(features, model.coef_[0])},
                   bias=round(float(model.intercept_[0]), 6), threshold=threshold, record=record)


def check(decider: Decider, observations: list[Observation]) -> dict:
    """``figures`` of ``decider`` (its own threshold) on observations it was not fitted to."""
    p = [decider.probability(o.features) if o.features is not None else 0.0 for o in observations]
    return figures(np.array(p), observations, decider.threshold)


def _named(value: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME=FILE``."""
    name, _, path = value.partition("=")
    return name, path or None


def _is_conversations(path: Path) -> bool:
    """Whether a .jsonl set holds conversations (records with ``turns``) rather than questions."""
    with path.open(encoding="utf-8") as f:
        first = next((line for line in f if line.strip()), "{}")
    try:
        return "turns" in json.loads(first)
    except ValueError:
        raise ValueError(f"{path} is not JSON Lines; give a question or conversation set (qa.eval's formats)") from None


def gather(specs: list[str], observations_dir: Path | None, index_caches: dict[str, str],
           progress: bool = True, **overrides) -> dict[str, list[Observation]]:
    """The observations of each ``NAME`` (answered now, with the engine's settings ``overrides``,
    e.g. ``reader_dir``) or ``NAME=FILE`` (read back) in ``specs``."""
    from qa.eval.datasets import NAMED_SETS, load_dataset
    from qa.eval.run import default_index_cache, sync_index

    out: dict[str, list[Observation]] = {}
    for spec in specs:
        name, path = _named(spec)
        if path:
            out[name] = read_observations(path)
            continue
        # A question or conversation set: a .jsonl file, here or relative to the repository.
        file = next((f for f in (Path(name), REPO / name) if f.is_file()), None) if name.endswith(".jsonl") else None
        if name in NAMED_SETS:
            eval_set = load_dataset(name)
            kind = name.split("-", 1)[0]
        elif file is not None and _is_conversations(file):
            from qa.eval.conversations import turns_as_questions

            eval_set = turns_as_questions(file)
            kind = "conversations"
        elif file is not None:
            eval_set = load_dataset(file)
            kind = "questions"
        else:
            raise ValueError(f"unknown set {name!r}; name one of {NAMED_SETS}, a question or conversation set "
                             "(.jsonl), or give NAME=FILE of kept observations")
        cache = index_caches.get(kind) or default_index_cache(eval_set.documents, kind)
        out[name] = observe(eval_set, sync_index(cache, eval_set.documents, progress=progress), **overrides)
        if observations_dir:
            observations_dir.mkdir(parents=True, exist_ok=True)
            (observations_dir / f"{Path(name).stem}.jsonl").write_text("".join(json.dumps(asdict(o)) + "\n" for o in out[name]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.training.decision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DECIDER_FILE, help=f"where to write the decider (default {DECIDER_FILE})")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds for the threshold (default 5)")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength (default 1.0)")
    parser.add_argument("--sets", nargs="+", default=list(FIT_SETS), metavar="NAME[=FILE]",
                        help="sets to fit on, answered now, or NAME=FILE to read observations kept earlier "
                             f"(default: {' '.join(FIT_SETS)})")
    parser.add_argument("--from-observations", nargs="+", metavar="NAME=FILE",
                        help="the same as --sets NAME=FILE ...: fit on kept observations instead of answering again")
    parser.add_argument("--check", nargs="*", default=list(CHECK_SETS), metavar="NAME[=FILE]",
                        help="sets to score the fitted decision on, never fitted on (default: none)")
    parser.add_argument("--observations", type=Path, metavar="DIR",
                        help="keep the observations of every set answered here, as DIR/<set>.jsonl (per question: the "
                             "features, the F1 of the best answer, the question and that answer)")
    parser.add_argument("--features", nargs="+", default=list(DEFAULT_FEATURES), choices=FEATURES,
                        help=f"what the model weighs (default: {' '.join(DEFAULT_FEATURES)})")
    parser.add_argument("--index-cache", nargs="+", default=[], metavar="KIND=DIR",
                        help="index folder of a kind of set's documents, e.g. longdocs=DIR shortdocs=DIR "
                             "(default under eval-output/index-cache/)")
    parser.add_argument("--score", type=Path, metavar="DECIDER",
                        help="fit nothing: print how the decider in this file does on the --check sets")
    parser.add_argument("--reader-dir", metavar="DIR",
                        help="answer with the neural reader in DIR (python -m qa.train_reader --out DIR) instead of "
                             "the shipped one: a retrained reader scores on its own scale and needs its own decision")
    parser.add_argument("--reader-precision", choices=PRECISIONS,
                        help="the neural reader's arithmetic (default: the engine's, auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    try:
        caches = dict(_named(v) for v in args.index_cache)
        reader = {k: v for k, v in (("reader_dir", args.reader_dir), ("reader_precision", args.reader_precision)) if v}
        if any(v is None for v in caches.values()):
            raise ValueError(f"--index-cache takes KIND=DIR. Currently, it is {args.index_cache}")
        if args.score:
            decider = Decider.load(args.score)
            scored = gather(args.check, args.observations, caches, not args.quiet, **reader)
            print(json.dumps({name: check(decider, obs) for name, obs in scored.items()}, indent=2))
            return 0
        fit_sets = gather(args.from_observations or args.sets, args.observations, caches, not args.quiet, **reader)
        check_sets = gather(args.check, args.observations, caches, not args.quiet, **reader)
        decider = fit(fit_sets, folds=args.folds, c=args.c, features=tuple(args.features))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    decider.record["check"] = {name: check(decider, obs) for name, obs in check_sets.items()}
    decider.record["command"] = ("python -m qa.training.decision --sets " + " ".join(sorted(fit_sets)) + " --check "
                                 + " ".join(check_sets) + " --features " + " ".join(args.features)
                                 + "".join(f" --{k.replace('_', '-')} {v}" for k, v in reader.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(decider.to_dict(), indent=2) + "\n")
    print(json.dumps(decider.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
