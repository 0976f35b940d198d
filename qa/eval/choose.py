"""Choose the engine's abstention threshold and ``early_exit`` from held-out evaluation runs.

Reads the ``questions.csv`` that ``python -m qa.eval`` writes (one pass per run, every
question answered with its score), so a setting can be chosen without re-running anything:

    python -m qa.eval.choose threshold RUN_DIR [RUN_DIR ...]
    python -m qa.eval.choose early-exit --threshold T --reference DIR DIR --candidate 0.8 DIR DIR ...

Each distinct question counts once: a question asked several times over the same document
with the same gold answers (SQuADShifts repeats some, one new_wiki question eleven times)
would otherwise weigh as many times, and a threshold could be chosen to keep or drop that one
question. Thresholds are taken from a 0.01 grid, not from the observed scores, for the same
reason. Never point this at ``squad/``: those sets are the test.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from qa.eval import metrics

GRID = tuple(round(i / 100, 2) for i in range(101))


@dataclass(frozen=True)
class Row:
    """One question of a run: what the engine answered, with which score, and its F1 if kept."""

    question: str
    source: str
    answers: str
    prediction: str
    score: float
    f1: float


def load_rows(run_dir: str | Path) -> list[Row]:
    """The rows of ``run_dir/questions.csv`` (a ``qa.eval`` output folder)."""
    path = Path(run_dir) / "questions.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass a folder written by `python -m qa.eval ... --out DIR`")
    with open(path, encoding="utf-8", newline="") as fh:
        return [Row(r["question"], r["source"], r["answers"], r["prediction"], float(r["score"]), float(r["f1_always"]))
                for r in csv.DictReader(fh)]


def unique(rows: Sequence[Row]) -> list[Row]:
    """The first row of each distinct (question, document, gold answers)."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for r in rows:
        key = (r.question, r.source, r.answers)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _outcomes(r: Row) -> tuple[float, float]:
    """(F1 if the row's answer is kept, F1 if the engine abstains), SQuAD 2.0 rules: abstaining is
    right exactly when the question has no gold answer; an empty prediction is an abstention."""
    abstained = 1.0 if r.answers == "" else 0.0
    if r.prediction == "":
        return abstained, abstained
    return (0.0 if r.answers == "" else r.f1), abstained


def f1_at(rows: Sequence[Row], threshold: float) -> float:
    """Mean F1 in percent when the engine answers only at ``score >= threshold``."""
    if not rows:
        raise ValueError("no questions: the run folder's questions.csv is empty")
    return 100 * sum(kept if r.score >= threshold else abstained
                     for r, (kept, abstained) in zip(rows, map(_outcomes, rows))) / len(rows)


def best_threshold(runs: Sequence[Sequence[Row]], grid: Sequence[float] = GRID) -> float:
    """The grid threshold with the best mean F1 over ``runs`` (each run weighs the same; ties go to
    the lowest threshold)."""
    rows = [r for run in runs for r in run]
    if any(not run for run in runs) or not rows:
        raise ValueError("no questions: a run folder's questions.csv is empty")
    outcomes = [_outcomes(r) for r in rows]
    weights = [1.0 / len(run) for run in runs for _ in run]
    threshold, _ = metrics.best_threshold([r.score for r in rows], [o[0] for o in outcomes], [o[1] for o in outcomes],
                                          weights=weights, candidates=grid, ties="lowest")
    return threshold


def choose_early_exit(reference: Sequence[Sequence[Row]], candidates: dict[float, Sequence[Sequence[Row]]],
                      threshold: float, tolerance: float = 0.5) -> float:
    """The lowest ``early_exit`` whose runs stay within ``tolerance`` F1 (at ``threshold``) of the
    reference runs (every passage read) on every kind; 1.0 (read everything) when none does.

    Args:
        reference: runs with ``--early-exit 1.0``, one per kind of unanswerable question.
        candidates: early-exit value -> its runs, in the same order as ``reference``.
        threshold: the engine threshold the F1 is read at.
        tolerance: F1 points a candidate may lose on any kind.
    """
    ref = [f1_at(rows, threshold) for rows in reference]
    for value in sorted(candidates):
        runs = candidates[value]
        if len(runs) != len(ref):
            raise ValueError(f"early_exit {value}: {len(runs)} runs, but {len(ref)} reference runs")
        if all(f1_at(rows, threshold) >= r - tolerance - 1e-9 for rows, r in zip(runs, ref)):
            return value
    return 1.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qa.eval.choose", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("threshold", help="best mean F1 threshold over the runs")
    t.add_argument("runs", nargs="+", metavar="RUN_DIR")
    e = sub.add_parser("early-exit", help="lowest early_exit within the tolerance of reading every passage")
    e.add_argument("--threshold", type=float, required=True)
    e.add_argument("--reference", nargs="+", required=True, metavar="RUN_DIR")
    e.add_argument("--candidate", nargs="+", action="append", required=True, metavar=("VALUE", "RUN_DIR"))
    e.add_argument("--tolerance", type=float, default=0.5)
    args = p.parse_args(argv)

    if args.what == "threshold":
        runs = [unique(load_rows(d)) for d in args.runs]
        best = best_threshold(runs)
        for d, rows in zip(args.runs, runs):
            own = best_threshold([rows])
            print(f"{d}: {len(rows)} distinct questions, F1 {f1_at(rows, best):.2f} at {best} "
                  f"(its own best {f1_at(rows, own):.2f} at {own})", file=sys.stderr)
        print(best)
        return 0
    reference = [unique(load_rows(d)) for d in args.reference]
    candidates = {float(c[0]): [unique(load_rows(d)) for d in c[1:]] for c in args.candidate}
    for value, runs in [(1.0, reference), *sorted(candidates.items())]:
        print(f"early_exit {value}: F1 at {args.threshold}: " + " / ".join(f"{f1_at(r, args.threshold):.2f}" for r in runs),
              file=sys.stderr)
    print(choose_early_exit(reference, candidates, args.threshold, args.tolerance))
    return 0


if __name__ == "__main__":
    sys.exit(main())
