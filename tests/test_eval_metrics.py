"""Evaluation metrics against hand-computed cases of the official SQuAD and BEIR rules, and the test-set loaders."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from qa.eval import metrics
from qa.eval.datasets import DatasetError, add_unanswerable, load_dataset, load_jsonl, load_squad, sample
from qa.eval.metrics import (
    best_threshold, citation_correct, contains_answer, exact_match, f1_score, ndcg_at_k, normalize_answer, percentile,
    recall_at_k, recall_at_k_docs, reciprocal_rank,
)

DATA = Path(__file__).resolve().parent / "data"
REPO = DATA.parent.parent
SEED_ARTICLE = REPO / "seeds" / "000_ffecf142e84792ea.txt"


# ---- SQuAD normalisation, EM, F1 ----------------------------------------------------------------

@pytest.mark.parametrize("raw, normal", [
    ("The  Quick, brown fox!", "quick brown fox"),       # case, punctuation, article, spaces
    ("An apple a day", "apple day"),                      # every article a/an/the
    ("theater Anatomy", "theater anatomy"),               # articles only as whole words
    ("U.S. e-mail", "us email"),                          # punctuation dropped, not replaced by a space
    ("  \tDenver\nBroncos ", "denver broncos"),
    ("the", ""),
    ("“Smart” quotes", "“smart” quotes"),                 # only ASCII punctuation, as the official script
])
def test_normalize_answer_follows_the_official_script(raw, normal):
    assert normalize_answer(raw) == normal


def test_exact_match_is_the_best_over_gold_answers():
    assert exact_match("Denver Broncos", ["Carolina Panthers", "the Denver Broncos."]) == 1.0
    assert exact_match("Broncos", ["Denver Broncos"]) == 0.0


def test_f1_counts_shared_tokens_with_multiplicity():
    # prediction tokens [denver, broncos, team] vs gold [denver, broncos]: P = 2/3, R = 1, F1 = 0.8
    assert f1_score("the Denver Broncos team", ["Denver Broncos"]) == pytest.approx(0.8)
    # "x x y" vs "x y": only one x is shared -> P = 2/3, R = 1
    assert f1_score("x x y", ["x y"]) == pytest.approx(0.8)
    assert f1_score("Panthers", ["Denver Broncos"]) == 0.0


def test_f1_takes_the_best_gold_answer():
    assert f1_score("Broncos", ["Denver Broncos", "Broncos"]) == 1.0
    assert f1_score("Denver", ["Denver Broncos", "Broncos"]) == pytest.approx(2 / 3)


def test_unanswerable_questions_score_only_an_abstention():
    assert exact_match("", []) == 1.0 and f1_score("", []) == 1.0
    assert exact_match("Denver", []) == 0.0 and f1_score("Denver", []) == 0.0
    # A gold answer that normalises to nothing counts as "no answer", as in the 2.0 script.
    assert exact_match("", ["the"]) == 1.0
    # An abstention on an answerable question scores nothing.
    assert exact_match("", ["Denver"]) == 0.0 and f1_score("", ["Denver"]) == 0.0


def test_two_empty_strings_agree_as_in_the_official_v2_script():
    # A no-answer question answered with an abstention scores 1 (EM and F1), as SQuAD v2's script.
    assert metrics.f1_single("", "") == 1.0 and metrics.exact_match_single("", "") == 1.0
    assert f1_score("", []) == 1.0 and exact_match("", []) == 1.0
    assert f1_score("Denver", []) == 0.0 and metrics.f1_single("", "Denver") == 0.0


def test_score_at_threshold_abstains_below_it():
    assert metrics.score_at_threshold("Denver", 0.3, ["Denver"], 0.5) == (0.0, 0.0)
    assert metrics.score_at_threshold("Denver", 0.3, [], 0.5) == (1.0, 1.0)
    assert metrics.score_at_threshold("Denver", 0.7, ["Denver"], 0.5) == (1.0, 1.0)


def test_best_threshold_matches_a_hand_sweep():
    conf = [0.9, 0.8, 0.6, 0.4, 0.2]
    answered = [1.0, 0.0, 1.0, 1.0, 0.0]   # metric if the prediction is kept
    abstained = [0.0, 1.0, 0.0, 0.0, 1.0]  # 1 for the two unanswerable questions
    # thresholds: >0.9 -> 2/5; 0.9 -> 3/5; 0.8 -> 2/5; 0.6 -> 3/5; 0.4 -> 4/5; 0.2 -> 3/5
    assert best_threshold(conf, answered, abstained) == (0.4, pytest.approx(0.8))


def test_best_threshold_prefers_abstaining_on_ties_and_can_abstain_on_everything():
    assert best_threshold([0.7, 0.7], [1.0, 0.0], [0.0, 1.0]) == (pytest.approx(0.700001), 0.5)
    t, value = best_threshold([0.3, 0.2], [0.0, 0.0], [1.0, 1.0])
    assert t > 0.3 and value == 1.0
    with pytest.raises(ValueError, match="same length"):
        best_threshold([0.1], [1.0, 0.0], [0.0])


def test_best_threshold_weights_candidates_and_ties():
    conf = [0.9, 0.5, 0.3]
    answered, abstained = [1.0, 0.0, 0.0], [0.0, 1.0, 1.0]
    # A grid of candidates: every grid value between 0.5 (exclusive) and 0.9 is as good.
    grid = [0.0, 0.4, 0.6, 0.8, 1.0]
    assert best_threshold(conf, answered, abstained, candidates=grid) == (0.8, 1.0)
    assert best_threshold(conf, answered, abstained, candidates=grid, ties="lowest") == (0.6, 1.0)
    # Weights: the first question alone weighs as much as the two others together.
    t, value = best_threshold([0.9, 0.5, 0.3], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0], weights=[2.0, 1.0, 1.0])
    assert value == pytest.approx(0.5)
    t, value = best_threshold([0.9, 0.5, 0.3], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0], weights=[1.0, 1.0, 1.0])
    assert (t, value) == (0.3, pytest.approx(2 / 3))
    with pytest.raises(ValueError, match="ties"):
        best_threshold(conf, answered, abstained, ties="middle")
    with pytest.raises(ValueError, match="no candidate"):
        best_threshold(conf, answered, abstained, candidates=[])


def test_contains_answer_matches_whole_normalised_tokens():
    assert contains_answer("said State Department official Rob Strayer", ["state department official"])
    assert contains_answer("The U.S. was working", ["US"])
    assert not contains_answer("Huawei and ZTE", ["an"])     # "an" is an article: normalises to nothing
    assert not contains_answer("the Sandman", ["and"])        # not inside a word
    assert not contains_answer("anything", [])


def test_citation_must_be_inside_the_gold_context_and_cover_the_answer():
    ctx, answer = (100, 300), [(150, 160)]
    assert citation_correct((140, 200), "a", "", "a", ctx, answer, ["x"])
    assert not citation_correct((140, 200), "b", "", "a", ctx, answer, ["x"])          # other document
    assert not citation_correct((90, 200), "a", "", "a", ctx, answer, ["x"])           # starts before the context
    assert not citation_correct((161, 200), "a", "", "a", ctx, answer, ["x"])          # misses the answer
    # Without offsets, the quote must contain the answer.
    assert citation_correct((140, 200), "a", "it was Paris.", "a", ctx, [], ["Paris"])
    assert not citation_correct((140, 200), "a", "it was Rome.", "a", ctx, [], ["Paris"])


# ---- retrieval ----------------------------------------------------------------------------------

def test_rank_metrics():
    assert recall_at_k(1, 1) == 1.0 and recall_at_k(5, 1) == 0.0 and recall_at_k(None, 20) == 0.0
    assert reciprocal_rank(4) == 0.25 and reciprocal_rank(None) == 0.0
    with pytest.raises(ValueError, match="k must be greater than 0"):
        recall_at_k(1, 0)


def test_ndcg_uses_linear_gains_like_beir():
    assert ndcg_at_k(["d1", "d2"], {"d1": 1}) == 1.0
    assert ndcg_at_k(["d2", "d1"], {"d1": 1}) == pytest.approx(1 / math.log2(3))
    # graded: DCG = 1/log2(2) + 2/log2(3); ideal = 2/log2(2) + 1/log2(3)
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "a"], {"a": 2, "b": 1}) == pytest.approx(expected)
    assert ndcg_at_k(["x"] * 3 + ["d1"], {"d1": 1}, k=2) == pytest.approx(1 / math.log2(3))  # duplicates count once
    assert ndcg_at_k(["d1"], {"d1": 0}) == 0.0
    assert ndcg_at_k(["d3"] * 10 + ["d1"], {"d1": 1}, k=10) == pytest.approx(1 / math.log2(3))


def test_recall_over_documents():
    assert recall_at_k_docs(["a", "b", "c"], {"a": 1, "c": 1, "z": 1}, 2) == pytest.approx(1 / 3)
    assert recall_at_k_docs(["a"], {"a": 0}, 10) == 0.0


def test_percentile_interpolates_linearly():
    values = [40.0, 10.0, 30.0, 20.0]
    assert percentile(values, 50) == 25.0
    assert percentile(values, 95) == pytest.approx(38.5)  # 30 + 0.85 * (40 - 30)
    assert percentile(values, 0) == 10.0 and percentile(values, 100) == 40.0
    assert percentile([], 50) == 0.0
    with pytest.raises(ValueError, match="q must be in"):
        percentile(values, 101)


# ---- test sets ----------------------------------------------------------------------------------

def test_load_squad_v2_keeps_offsets_and_unanswerable_questions():
    s = load_squad(DATA / "squad_tiny.json")
    assert len(s.questions) == 7 and len(s.documents) == 3
    assert s.has_unanswerable and sum(not q.answerable for q in s.questions) == 2
    assert "squad:Tiny Volcanoes#1" in s.documents
    for q in s.questions:
        ctx = s.context(q)
        for a, (start, end) in zip(q.answers, q.answer_spans()):
            assert ctx[start:end] == a


def test_load_jsonl_ignores_unknown_keys_and_names_bad_lines(tmp_path):
    f = tmp_path / "feedback.jsonl"
    rows = [
        {"question": "Where is Etna?", "answers": ["Sicily"], "context": "Etna is in Sicily.",
         "prediction": "Sicily", "rating": 1, "timestamp": "2026-11-25T10:00:00"},
        {"question": "Who built it?", "answers": [], "context": "Etna is in Sicily."},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    s = load_jsonl(f)
    assert [q.answers for q in s.questions] == [("Sicily",), ()]
    assert len(s.documents) == 1  # the same context is one document
    f.write_text('{"answers": ["x"], "context": "y"}\n')
    with pytest.raises(DatasetError, match=r"feedback.jsonl:1 has no 'question'"):
        load_jsonl(f)
    f.write_text('{"question": "q?", "answers": ["x"], "source": "no/such/file.txt"}\n')
    with pytest.raises(DatasetError, match="not found"):
        load_jsonl(f)


def test_ui_feedback_lines_point_at_the_cited_passage(tmp_path):
    article = SEED_ARTICLE.read_text(encoding="utf-8")
    passage = article[article.index("“We’re raising"):article.index("Studies.") + len("Studies.")]
    f = tmp_path / "feedback.jsonl"
    rows = [
        {"question": "who is Rob Strayer?", "answers": ["State Department official"], "source": str(SEED_ARTICLE),
         "context": passage, "prediction": "State Department official", "rating": "up", "timestamp": "2026-11-25T10:00:00+00:00"},
        {"question": "who is Rob Strayer?", "answers": ["State Department official"], "source": "/gone/file.txt",
         "context": passage, "prediction": "x", "rating": "down", "timestamp": "2026-11-25T10:01:00+00:00"},
    ]
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    with pytest.warns(UserWarning, match="not found"):
        s = load_jsonl(f)
    first, second = s.questions
    assert first.source == str(SEED_ARTICLE) and s.context(first) == passage
    assert (first.context_start, first.context_end) != (0, len(article))
    assert s.documents[second.source] == passage  # the file is gone: its passage stands in for it


def test_seed_test_set_is_honest_and_complete():
    s = load_dataset(DATA / "seed_questions.jsonl")
    article = SEED_ARTICLE.read_text(encoding="utf-8")
    assert len(s.questions) >= 20
    assert sum(not q.answerable for q in s.questions) >= 4
    assert list(s.documents.values()) == [article]
    for q in s.questions:
        assert all(a in article for a in q.answers), q  # gold answers verbatim from the article
    assert len({q.id for q in s.questions}) == len(s.questions)


def test_sample_is_repeatable_and_keeps_every_document():
    s = load_dataset(DATA / "seed_questions.jsonl")
    a, b = sample(s, 5, seed=3), sample(s, 5, seed=3)
    assert [q.id for q in a.questions] == [q.id for q in b.questions]
    assert [q.id for q in sample(s, 5, seed=4).questions] != [q.id for q in a.questions]
    assert a.documents == s.documents


def test_add_unanswerable_holds_contexts_out_and_pairs_with_another_article():
    s = load_squad(DATA / "squad_tiny.json")
    u = add_unanswerable(s, 0.34, seed=1)  # one of three paragraphs
    held = set(s.documents) - set(u.documents)
    assert len(held) == 1
    made = [q for q in u.questions if q.id.endswith("-unanswerable")]
    assert made and all(not q.answerable and q.source in u.documents for q in made)
    titles = {q.source: q.title for q in s.questions}
    assert all(titles[q.source] != q.title for q in made)  # the new context is another article's
    with pytest.raises(ValueError, match="fraction"):
        add_unanswerable(s, 1.5)


def test_unknown_test_set_format_says_what_to_use(tmp_path):
    f = tmp_path / "questions.csv"
    f.write_text("q,a\n")
    with pytest.raises(DatasetError, match="SQuAD .json or .jsonl"):
        load_dataset(f)
