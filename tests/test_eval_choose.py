"""qa.eval.choose: settings chosen from held-out runs' questions.csv, each distinct question once."""

import csv

import pytest

from qa.eval import choose

FIELDS = ["id", "question", "answers", "source", "prediction", "score", "f1_always"]


def _run(folder, rows):
    folder.mkdir()
    with open(folder / "questions.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for i, (q, answers, prediction, score, f1) in enumerate(rows):
            w.writerow({"id": i, "question": q, "answers": answers, "source": "doc", "prediction": prediction,
                        "score": score, "f1_always": f1})
    return folder


def test_a_repeated_question_counts_once(tmp_path):
    # One right answer at a low score, asked five times; two unanswerable questions that the
    # engine answers at 0.35. Counting every copy, answering everything looks best (75%); counting
    # each distinct question once, rejecting the unanswerables above 0.35 is (75% against 50%).
    rows = [("When?", "1889", "1889", 0.3, 1.0)] * 5 + [
        ("Who?", "", "Eiffel", 0.35, 0.0), ("Where?", "", "Paris", 0.35, 0.0), ("What?", "a tower", "a tower", 0.9, 1.0)]
    run = choose.load_rows(_run(tmp_path / "run", rows))
    assert choose.best_threshold([run]) <= 0.3
    assert choose.f1_at(run, 0.0) == pytest.approx(75.0)
    distinct = choose.unique(run)
    assert len(distinct) == 4
    assert choose.best_threshold([distinct]) == 0.36
    assert choose.f1_at(distinct, 0.36) == pytest.approx(75.0)  # right answer, 2 right abstentions, 1 lost answer


def test_early_exit_is_the_lowest_value_within_the_tolerance(tmp_path):
    ref = [("Q1?", "x", "x", 0.9, 1.0), ("Q2?", "y", "y", 0.8, 1.0), ("Q3?", "", "z", 0.2, 0.0)]
    worse = [("Q1?", "x", "x", 0.9, 1.0), ("Q2?", "y", "w", 0.8, 0.0), ("Q3?", "", "z", 0.2, 0.0)]
    reference = [choose.load_rows(_run(tmp_path / "ref", ref))]
    same = [choose.load_rows(_run(tmp_path / "same", ref))]
    lossy = [choose.load_rows(_run(tmp_path / "lossy", worse))]
    assert choose.choose_early_exit(reference, {0.5: lossy, 0.7: same}, threshold=0.5) == 0.7
    assert choose.choose_early_exit(reference, {0.5: lossy}, threshold=0.5) == 1.0
    assert choose.choose_early_exit(reference, {0.5: lossy}, threshold=0.5, tolerance=40.0) == 0.5


def test_a_missing_run_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m qa.eval"):
        choose.load_rows(tmp_path)
