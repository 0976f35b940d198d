"""Unanswerable twins: each rule changes what the question asks so the context no longer answers it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from qa.eval.datasets import add_unanswerable, load_squad
from qa.eval.unanswerable import ALL_KINDS, KINDS, name_pool, perturb, pool_for

DATA = Path(__file__).resolve().parent / "data"
CONTEXT = (
    "Nikola Tesla moved to Paris in 1882 to work for the Continental Edison Company. "
    "The largest of his early designs was an induction motor."
)
POOL = name_pool(["The delegation then travelled to Vienna and met officials of Siemens in Berlin."])


def test_name_pool_skips_sentence_initial_capitals():
    pool = name_pool(["Officials said the plan came from Siemens. Waking early, they met in Vienna."])
    assert "Siemens" in pool[1] and "Vienna" in pool[1]
    assert "Waking" not in pool[1] and "Officials" not in pool[1]


def test_pool_is_read_only_for_the_swap_rule():
    def texts():
        read.append(True)
        yield "The delegation met officials of Siemens in Berlin."

    read: list = []
    assert pool_for(("antonym", "swap_within"), texts()) == {} and not read
    assert "Siemens" in pool_for(KINDS, texts())[1] and read


def test_swap_replaces_a_name_or_number_with_one_the_context_lacks():
    twin = perturb("When did Tesla move to Paris?", CONTEXT, POOL, random.Random(0), kinds=("swap",))
    assert twin is not None and twin.kind == "swap"
    assert twin.old in ("Tesla", "Paris") and twin.new not in CONTEXT
    assert twin.question == "When did Tesla move to Paris?".replace(twin.old, twin.new)
    year = perturb("Where did Tesla move in 1882?", CONTEXT, {1: [], 2: [], 3: []}, random.Random(1), kinds=("swap",))
    assert year is not None and year.old == "1882" and year.new.isdigit() and year.new not in CONTEXT


def test_swap_within_uses_another_name_of_the_context_never_the_answer():
    context = ("Nikola Tesla moved to Paris in 1882 to work for Thomas Edison's company. "
               "Edison later hired him in New York in 1884, and George Westinghouse bought his patents in Pittsburgh, "
               "where he met Marconi.")
    seen = set()
    for seed in range(40):
        twin = perturb("Who did Tesla work for in Paris?", context, {}, random.Random(seed), kinds=("swap_within",),
                       answers=("Thomas Edison",))
        assert twin is not None and twin.kind == "swap_within" and twin.old in ("Tesla", "Paris")
        assert twin.new in context and twin.new.lower() not in "thomas edison" and twin.new not in ("Tesla", "Paris")
        assert len(twin.new.split()) == len(twin.old.split())
        seen.add(twin.new)
    assert seen == {"Pittsburgh", "Marconi"}  # "Edison" is part of the answer; "Edison later" starts a sentence
    year = perturb("Where did he move in 1882?", context, {}, random.Random(0), kinds=("swap_within",),
                   answers=("Paris",))
    assert year is not None and (year.old, year.new) == ("1882", "1884")
    # It needs the answers (to keep away from them), and a context with another name to swap in.
    assert perturb("Who did Tesla work for in Paris?", context, {}, random.Random(0), kinds=("swap_within",)) is None
    assert perturb("When did Tesla move to Paris?", CONTEXT, {}, random.Random(0), kinds=("swap_within",),
                   answers=("1882",)) is None


def test_antonym_only_when_the_context_lacks_the_opposite():
    twin = perturb("What was the largest of his designs?", CONTEXT, POOL, random.Random(0), kinds=("antonym",))
    assert twin is not None and twin.question == "What was the smallest of his designs?"
    both = CONTEXT + " The smallest was a lamp."
    assert perturb("What was the largest of his designs?", both, POOL, random.Random(0), kinds=("antonym",)) is None


def test_negation_of_a_wh_subject_question():
    twin = perturb("Who was the inventor of the induction motor?", CONTEXT, POOL, random.Random(0), kinds=("negation",))
    assert twin is not None and twin.question == "Who was not the inventor of the induction motor?"
    negated = CONTEXT + " He did not stay long."
    assert perturb("Who was the inventor of the motor?", negated, POOL, random.Random(0), kinds=("negation",)) is None


def test_no_rule_applies_and_bad_kind():
    assert perturb("why?", "because.", POOL, random.Random(0)) is None
    with pytest.raises(ValueError, match="unknown kind"):
        perturb("When did Tesla move to Paris?", CONTEXT, POOL, random.Random(0), kinds=("shuffle",))


def test_default_rules_leave_the_within_context_swap_out():
    """The default rules (KINDS) are the ones calibration fits on; swap_within only when asked for."""
    context = ("Nikola Tesla moved to Paris in 1882 to work for Thomas Edison's company. "
               "Later George Westinghouse bought his patents in Pittsburgh, where he met Marconi.")
    question, answers = "Who did Tesla work for in Paris?", ("Thomas Edison",)

    def kinds_made(kinds) -> set:
        twins = (perturb(question, context, POOL, random.Random(seed), kinds=kinds, answers=answers) for seed in range(40))
        return {t.kind for t in twins if t is not None}

    default = kinds_made(KINDS)
    assert default and "swap_within" not in default
    every = kinds_made(ALL_KINDS)
    assert "swap_within" in every and default <= every


def test_twins_are_repeatable():
    a = perturb("When did Tesla move to Paris in 1882?", CONTEXT, POOL, random.Random(5))
    b = perturb("When did Tesla move to Paris in 1882?", CONTEXT, POOL, random.Random(5))
    assert a == b and a is not None


def test_add_unanswerable_twins_keep_every_document_and_context():
    s = load_squad(DATA / "squad_tiny.json")
    u = add_unanswerable(s, 0.9, seed=0, kind="twin")
    assert u.documents == s.documents  # open mode can still retrieve the context
    twins = [q for q in u.questions if q.id.endswith("-twin")]
    assert twins and all(not q.answerable for q in twins)
    originals = {q.id: q for q in s.questions}
    for q in twins:
        orig = originals[q.id[: -len("-twin")]]
        assert q.question != orig.question and (q.source, q.context_start, q.context_end) == (
            orig.source, orig.context_start, orig.context_end)
    within = [q for q in add_unanswerable(s, 0.9, seed=0, kind="twin-within").questions if q.id.endswith("-twin")]
    assert within
    for q in within:
        orig = originals[q.id[: -len("-twin")]]
        added = set(q.question.split()) - set(orig.question.split())
        assert added and all(w.strip("?,.'s") in s.context(orig) for w in added)
    with pytest.raises(ValueError, match="kind"):
        add_unanswerable(s, 0.5, kind="typo")


def test_written_near_misses_replace_their_questions_over_the_same_context(tmp_path):
    from qa.eval import datasets
    from qa.eval.unanswerable import (NEAR_MISSES_HELDOUT, NEAR_MISSES_TRAIN, NEAR_MISSES_TRAIN_MORE, NEAR_MISSES_TRAIN_REST,
                                 load_near_misses)

    s = load_squad(DATA / "squad_tiny.json")
    path = tmp_path / "near.jsonl"
    rows = [{"source": s.name, "of": "tiny-1", "question": "Who wrote the paragraph's sequel?", "category": "other"},
            {"source": s.name, "of": "tiny-3", "question": "When did it stop?", "category": "antonym"},
            {"source": "another_file", "of": "tiny-5", "question": "Why?", "category": "other"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    u = datasets._add_written(s, 0.999, seed=0, path=path)
    written = {q.id: q for q in u.questions if q.id.endswith("-written")}
    assert set(written) == {"tiny-1-written", "tiny-3-written"}  # tiny-5's near miss is another file's
    originals = {q.id: q for q in s.questions}
    for q in written.values():
        orig = originals[q.id[: -len("-written")]]
        assert not q.answerable and q.question in {r["question"] for r in rows}
        assert (q.source, q.context_start, q.context_end) == (orig.source, orig.context_start, orig.context_end)
    assert len(u.questions) == len(s.questions) and u.documents == s.documents
    path.write_text(json.dumps(rows[2]) + "\n")
    with pytest.raises(ValueError, match="new_wiki"):
        datasets._add_written(s, 0.5, seed=0, path=path)
    path.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[0]) + "\n")
    with pytest.raises(ValueError, match="second near miss"):
        load_near_misses(path)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps(rows[0]) + "\n")
    with pytest.raises(ValueError, match="second near miss"):  # across files too
        load_near_misses([path, other])
    rows[1]["second_pass"], rows[2]["second_pass"] = "unanswerable", "unsure"
    path.write_text("\n".join(json.dumps(r) for r in rows[1:]) + "\n")
    assert set(load_near_misses([path, other])) == {(s.name, "tiny-1"), (s.name, "tiny-3"), ("another_file", "tiny-5")}
    assert set(load_near_misses([path, other], second_pass_only=True)) == {(s.name, "tiny-3")}
    dup = tmp_path / "dup.jsonl"
    dup.write_text(json.dumps(rows[2]) + "\n" + json.dumps(rows[2]) + "\n")  # judged "unsure", twice
    with pytest.raises(ValueError, match="second near miss"):  # a line left out still counts
        load_near_misses(dup, second_pass_only=True)
    heldout = load_near_misses(NEAR_MISSES_HELDOUT)
    train_files = [NEAR_MISSES_TRAIN, NEAR_MISSES_TRAIN_MORE, NEAR_MISSES_TRAIN_REST]
    train, checked = load_near_misses(train_files), load_near_misses(train_files, second_pass_only=True)
    assert len(heldout) >= 300 and all(q.endswith("?") for q in heldout.values())
    assert 0.95 * len(train) < len(checked) < len(train)
    assert not set(heldout) & set(train)  # the held-out questions' near misses are never trained on
