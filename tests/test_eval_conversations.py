"""The conversation evaluation: rewrites and answers scored turn by turn over a real index."""

from __future__ import annotations

import json
import re

import pytest

from qa.eval.conversations import (
    ConversationReport, conversation_documents, evaluate_conversations, format_table, load_conversations, main, score_turn,
)
from qa.eval.datasets import DatasetError
from qa.eval.longdocs import DEFAULT_DATA_DIR

SEED = "seeds/000_ffecf142e84792ea.txt"
CSIS = "the Center for Strategic and International Studies"
ZTE = "a Chinese multinational telecommunications equipment and systems company"

# Five turns, three of them follow-ups: one needs a rewrite the rules make, one is a fresh
# question to leave alone, and one carries a rewrite the rules do not make ("the firm ZTE"),
# so the report must count it wrong.
TINY = [
    {"id": "strayer", "source": SEED, "turns": [
        {"question": "who is Rob Strayer?", "rewrite": "who is Rob Strayer?", "answers": ["State Department official"]},
        {"question": "Where did he speak?", "rewrite": "Where did Rob Strayer speak?", "answers": [CSIS]}]},
    {"id": "zte", "source": SEED, "turns": [
        {"question": "What is Huawei?", "rewrite": "What is Huawei?", "answers": ["a Chinese telecom company"]},
        {"question": "What is ZTE?", "rewrite": "What is ZTE?", "answers": [ZTE]},
        {"question": "What are they offering?", "rewrite": "What is the firm ZTE offering?",
         "answers": ["much lower prices than their competitors"]}]},
]


def write(path, conversations) -> str:
    path.write_text("".join(json.dumps(c) + "\n" for c in conversations), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tiny_report(seed_index, tmp_path_factory) -> ConversationReport:
    return evaluate_conversations(write(tmp_path_factory.mktemp("conv") / "tiny.jsonl", TINY), seed_index)


def test_rewrites_are_counted_over_follow_ups_only(tiny_report):
    f = tiny_report.figures
    assert (tiny_report.conversations, f["turns"], f["follow_ups"]) == (2, 5, 3)
    rows = tiny_report.turns
    assert [t.turn for t in rows] == [1, 2, 1, 2, 3]
    assert rows[1].rewrite == "Where did Rob Strayer speak?" and rows[1].rewrite_right
    assert rows[3].rewrite == "What is ZTE?" and not rows[3].needs_rewrite
    assert rows[4].rewrite == "What are ZTE offering?" and not rows[4].rewrite_right
    assert f["rewrite_accuracy"] == 66.7  # 2 of 3 follow-ups
    assert f["rewritten"] == 50.0  # 1 of the 2 that need a rewrite
    assert f["left_alone"] == 100.0


def test_answers_are_scored_per_turn_with_squad_normalisation(tiny_report):
    first, follow_up = tiny_report.turns[0], tiny_report.turns[1]
    assert first.prediction == "State Department official" and (first.em, first.f1) == (1.0, 1.0)
    assert "Center for Strategic and International Studies" in follow_up.prediction and follow_up.f1 > 0.5
    assert first.cited.endswith("000_ffecf142e84792ea.txt")
    ems = [t.em for t in tiny_report.turns]
    assert tiny_report.figures["em"] == round(100 * sum(ems) / len(ems), 1)
    assert tiny_report.figures["no_answer_accuracy"] is None  # every turn here has an answer
    json.dumps(tiny_report.to_dict())  # the report is plain data


def test_the_table_shows_figures_and_the_expected_rewrite_of_a_miss(tiny_report):
    table = format_table(tiny_report)
    assert "rewrite_accuracy" in table and "66.7" in table
    assert "expected: What is the firm ZTE offering?" in table


def test_abstaining_is_right_only_when_the_document_does_not_answer():
    assert score_turn("", []) == (1.0, 1.0)
    assert score_turn("Politico", []) == (0.0, 0.0)
    assert score_turn("", ["Politico"]) == (0.0, 0.0)
    assert score_turn("the Politico", ["Politico"]) == (1.0, 1.0)


def test_long_documents_are_built_from_the_named_articles(tmp_path):
    articles = {"data": [
        {"title": "Tiny_Town", "paragraphs": [{"context": "Tiny Town lies on a river.", "qas": []},
                                              {"context": "Its mayor is Ann Lee.", "qas": []}]},
        {"title": "Other", "paragraphs": [{"context": "Not asked about.", "qas": []}]}]}
    (tmp_path / "new_wiki_v1.0.json").write_text(json.dumps(articles), encoding="utf-8")
    path = write(tmp_path / "set.jsonl", [
        {"id": "t", "source": "longdoc:new_wiki/Tiny_Town", "turns": [{"question": "Who is the mayor?", "answers": []}]},
        {"id": "s", "source": SEED, "turns": [{"question": "What is ZTE?", "answers": []}]}])
    documents, kinds = conversation_documents(load_conversations(path), tmp_path, tmp_path)
    assert documents["longdoc:new_wiki/Tiny_Town"] == "Tiny Town lies on a river.\n\nIts mayor is Ann Lee."
    assert "Huawei" in documents[SEED] and kinds[SEED] == "txt"
    assert set(documents) == {"longdoc:new_wiki/Tiny_Town", SEED}
    missing = write(tmp_path / "missing.jsonl", [{"id": "m", "source": "longdoc:new_wiki/Nowhere", "turns": [
        {"question": "Where?", "answers": []}]}])
    with pytest.raises(DatasetError, match="no article titled \\['Nowhere'\\]"):
        conversation_documents(load_conversations(missing), tmp_path, tmp_path)


def test_privacy_policies_are_built_from_policyqa(tmp_path):
    policy = {"title": "shop.example", "paragraphs": [{"context": "We collect your email address.", "qas": []},
                                                       {"context": "We never sell it.", "qas": []}]}
    (tmp_path / "policyqa-dev.json").write_text(json.dumps({"data": [policy]}), encoding="utf-8")
    (tmp_path / "policyqa-test.json").write_text(json.dumps({"data": []}), encoding="utf-8")
    path = write(tmp_path / "set.jsonl", [{"id": "p", "source": "longdoc:policyqa/shop.example", "turns": [
        {"question": "What do they collect?", "answers": ["your email address"]}]}])
    documents, _ = conversation_documents(load_conversations(path), tmp_path, tmp_path)
    assert documents == {"longdoc:policyqa/shop.example": "We collect your email address.\n\nWe never sell it."}
    missing = write(tmp_path / "missing.jsonl", [{"id": "m", "source": "longdoc:policyqa/nowhere.example", "turns": [
        {"question": "What?", "answers": []}]}])
    with pytest.raises(DatasetError, match="no article titled \\['nowhere.example'\\]"):
        conversation_documents(load_conversations(missing), tmp_path, tmp_path)


@pytest.mark.skipif(not DEFAULT_DATA_DIR.is_dir(), reason="needs ../shared/data/qa-train")
def test_the_development_set_is_well_formed():
    """tests/data/conversations-dev.jsonl, the set the rewriter is developed on: its answers are spans of its
    documents, none of which the test set (conversations.jsonl) uses."""
    from pathlib import Path

    from qa.eval.longdocs import part_of

    path = Path(__file__).parent / "data" / "conversations-dev.jsonl"
    conversations = load_conversations(path)
    documents, _ = conversation_documents(conversations, path.parent)
    assert len(conversations) >= 40 and len({c.id for c in conversations}) == len(conversations)
    test_set = load_conversations(path.parent / "conversations.jsonl")
    assert not {c.source for c in conversations} & {c.source for c in test_set}  # no document of the test set
    articles = {c.source.split("/", 1)[1] for c in conversations if c.source.startswith("longdoc:new_wiki/")}
    assert articles and all(part_of(title) == "tune" for title in articles)  # the long-document set's tuning part
    for c in conversations:
        assert 2 <= len(c.turns) <= 4 and c.turns[0].rewrite == c.turns[0].question, c.id
        assert all(a in documents[c.source] for t in c.turns for a in t.answers), c.id


def test_a_malformed_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(TINY[0]) + "\n" + json.dumps({"id": "x", "turns": []}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="bad.jsonl:2 is not a conversation"):
        load_conversations(path)


def test_the_command_prints_the_figures(seed_index, tmp_path, capsys):
    path = write(tmp_path / "one.jsonl", TINY[:1])
    assert main([path, "--index", str(seed_index.path), "--no-rows", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 conversations, 2 turns, 1 follow-ups" in out and re.search(r"rewrite_accuracy +100\.0\n", out)
    assert main([str(tmp_path / "absent.jsonl"), "--quiet"]) == 2


def test_qa_eval_forwards_its_engine_options_and_writes_the_report_to_out(seed_index, tmp_path, capsys):
    from qa.eval.__main__ import main as eval_main

    path = write(tmp_path / "one.jsonl", TINY[:1])
    out = tmp_path / "report"
    # --min-score 1.0: no answer reaches it, so both turns must abstain if the option reached the engine.
    assert eval_main(["--conversations", path, "--index", str(seed_index.path), "--min-score", "1.0",
                      "--decider", "off", "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [t["prediction"] for t in report["turns"]] == ["", ""]
    assert eval_main(["--conversations", path, "--index", str(seed_index.path), "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["turns"][0]["prediction"] == "State Department official"


def test_qa_eval_refuses_question_set_options_for_conversations(tmp_path, capsys):
    from qa.eval.__main__ import main as eval_main

    path = write(tmp_path / "one.jsonl", TINY[:1])
    assert eval_main(["--conversations", path, "--closed", "--limit", "5"]) == 2
    assert "--closed, --limit do not apply to --conversations" in capsys.readouterr().err


def test_every_turn_becomes_the_question_it_means(tmp_path):
    from qa.eval.conversations import turns_as_questions

    questions = turns_as_questions(write(tmp_path / "tiny.jsonl", TINY))
    assert [q.question for q in questions.questions] == [t["rewrite"] for c in TINY for t in c["turns"]]
    first = questions.questions[1]
    assert first.id == "strayer-2" and first.answers == (CSIS,) and first.source == SEED
    assert CSIS in questions.context(first) and set(questions.documents) == {SEED}
