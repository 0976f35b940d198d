"""The engine end to end on the seed article, with the real embedding model."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from index import Index
from qa import Answer, Engine, QASettings, QuestionError, answer_from_context
from tests.conftest import REPO_ROOT, SEED_FILE
from tests.helpers import assert_citations_hold


def test_who_is_rob_strayer(seed_engine):
    answer = seed_engine.ask("who is Rob Strayer?")
    assert answer.found
    assert answer.text == "State Department official"
    assert 0.0 <= answer.score <= 1.0
    top = answer.citations[0]
    assert "Rob Strayer" in top.quote
    assert top.answer_start is not None
    assert_citations_hold(answer)


def test_citation_checks_with_plain_open(seed_engine):
    """For text files anyone can check a citation with open(path).read()[start:end]."""
    c = seed_engine.ask("who is Rob Strayer?").citations[0]
    with open(c.source, encoding="utf-8") as fh:
        text = fh.read()
    assert text[c.start:c.end] == c.quote
    assert text[c.answer_start:c.answer_end] == "State Department official"


@pytest.mark.parametrize(
    "question",
    ["Who is the chief executive of Nokia?", "What is the capital of France?", "When was Apple founded?"],
)
def test_abstains_when_documents_are_silent(seed_engine, question):
    answer = seed_engine.ask(question)
    assert not answer.found
    assert answer.text == ""
    assert answer.citations, "the closest passages are still cited"
    assert_citations_hold(answer)


@pytest.mark.parametrize(
    "question, expected",
    [
        ("What is Huawei?", "a Chinese telecom company"),
        ("Who is Garrett Marquis?", "National Security Council spokesman"),
        ("What was MWC Barcelona formerly known as?", "Mobile World Congress"),
        ("How many Chinese hackers did the DOJ indict?", "two"),
    ],
)
def test_short_answers_on_seed_article(seed_engine, question, expected):
    answer = seed_engine.ask(question)
    assert answer.found
    assert answer.text == expected
    assert_citations_hold(answer)


def test_answer_round_trips_through_dict(seed_engine):
    answer = seed_engine.ask("who is Rob Strayer?")
    again = Answer.from_dict(json.loads(json.dumps(answer.to_dict())))
    assert answer.passages and "passages" not in answer.to_dict()
    assert again == replace(answer, passages=())


def test_answer_carries_the_passages_it_read(seed_engine, seed_index):
    """Evaluation scores retrieval from ``answer.passages`` instead of searching again."""
    from qa.retrieval import retrieve

    answer = seed_engine.ask("who is Rob Strayer?", top_k=3)
    assert answer.passages == tuple(retrieve(seed_index, "who is Rob Strayer?", 3))
    contexts = {(p.source, p.start, p.end) for p in answer.passages}
    assert all((c.source, c.context_start, c.context_end) in contexts for c in answer.citations)
    closed = answer_from_context("who is Rob Strayer?", "Rob Strayer is a State Department official.")
    assert [p.text for p in closed.passages] == ["Rob Strayer is a State Department official."]


@pytest.mark.parametrize(
    "question, message",
    [("", "empty"), ("   \n ", "empty"), ("x" * 5000, "limit is 2000"), (None, "must be a string")],
)
def test_bad_questions_get_clear_errors(seed_engine, question, message):
    with pytest.raises(QuestionError, match=message):
        seed_engine.ask(question)


def test_lone_surrogate_in_a_question_is_a_clear_error(seed_engine):
    with pytest.raises(QuestionError, match=r"invalid character at position 8 \(U\+D800"):
        seed_engine.ask("who is \ud800?")
    with pytest.raises(QuestionError, match="U\\+DCFF"):
        answer_from_context("who is \udcff?", "Rob Strayer is an official.")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"top_k": "5"}, r"top_k must be a whole number such as 5\. Currently, top_k is '5' \(a str\)"),
        ({"min_score": "0.5"}, r"min_score must be a number such as 0\.5 or None\. Currently, min_score is '0\.5'"),
        ({"top_k": True}, r"top_k must be a whole number"),
        ({"reader": 1}, r"reader must be text"),
    ],
)
def test_settings_of_the_wrong_type_name_the_value(seed_index, overrides, message):
    from qa import ask

    with pytest.raises(TypeError, match=message):
        ask("who is Rob Strayer?", index=seed_index.path, **overrides)


def test_index_of_the_wrong_type_names_the_value():
    from qa import ask, default_engine

    for call in (lambda: ask("who is Rob Strayer?", index=5), lambda: default_engine(5), lambda: Engine(5.0)):
        with pytest.raises(TypeError, match=r"index must be an opened Index, an index folder .*Currently, index is 5"):
            call()


def test_neural_reader_files_are_looked_up_once_per_folder(monkeypatch):
    from qa import engine
    from qa.readers import neural

    looked = []
    monkeypatch.setattr(neural, "is_available", lambda path=None: looked.append(path) or True)
    monkeypatch.setattr(engine, "_complete_reader_folders", set())
    assert all(engine.resolve_reader_name("auto") == "neural" for _ in range(3))
    assert len(looked) == 1


def test_a_reader_folder_named_must_hold_a_reader(tmp_path):
    """The rule-based fallback is for a missing shipped reader, not for a mistyped folder."""
    from qa import engine

    with pytest.raises(FileNotFoundError, match=r"no neural reader in .*empty.*python -m qa.train_reader"):
        engine.resolve_reader_name("auto", tmp_path / "empty")
    assert engine.resolve_reader_name("sentence", tmp_path / "empty") == "sentence"


def test_bad_settings_name_the_value():
    with pytest.raises(ValueError, match="top_k must be greater than 0. Currently, top_k is 0"):
        QASettings(top_k=0)
    with pytest.raises(ValueError, match="min_score must be in"):
        QASettings(min_score=1.5)
    with pytest.raises(ValueError, match="reader_precision must be one of"):
        QASettings(reader_precision="double")


def test_bad_early_exit_is_refused():
    with pytest.raises(ValueError, match=r"early_exit must be in \[0, 1\] \(1.0 reads every passage\). Currently, it is 1.5"):
        QASettings(early_exit=1.5)


def test_per_call_overrides(seed_engine):
    assert len(seed_engine.ask("who is Rob Strayer?", top_k=1).citations) == 1
    strict = seed_engine.ask("who is Rob Strayer?", min_score=1.0)
    assert not strict.found and strict.text == ""
    with pytest.raises(TypeError, match="unknown setting"):
        seed_engine.ask("who is Rob Strayer?", topk=3)


def test_empty_index_answers_not_found(tmp_path, embedder):
    engine = Engine(Index.open(tmp_path / "empty", create=True, embedder=embedder))
    answer = engine.ask("who is Rob Strayer?")
    assert not answer.found and answer.text == "" and answer.citations == ()


def test_missing_index_path_is_refused(tmp_path):
    from index import IndexNotFound

    with pytest.raises(IndexNotFound, match="python -m index build"):
        Engine(tmp_path / "nowhere")


def test_ask_function_takes_an_index_path(seed_index):
    from qa import ask

    answer = ask("who is Rob Strayer?", index=seed_index.path, reader="sentence")
    assert answer.text == "State Department official"


def test_answer_from_context_cites_into_the_context():
    context = SEED_FILE.read_text(encoding="utf-8")
    answer = answer_from_context("who is Rob Strayer?", context, source=str(SEED_FILE), reader="sentence")
    assert answer.text == "State Department official"
    c = answer.citations[0]
    assert context[c.answer_start:c.answer_end] == answer.text


def test_engine_is_safe_from_several_threads(seed_engine):
    from concurrent.futures import ThreadPoolExecutor

    questions = ["who is Rob Strayer?", "What is Huawei?", "Who is the chief executive of Nokia?"] * 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(seed_engine.ask, questions))
    assert [a.text for a in answers[:3]] == ["State Department official", "a Chinese telecom company", ""]
    assert [a.text for a in answers] == [a.text for a in answers[:3]] * 3


# ---- the default reader (the trained one) ---------------------------------------------------------


@pytest.fixture(scope="module")
def default_engine(seed_index):
    return Engine(seed_index)  # default settings: reader "auto", the shipped neural reader


@pytest.mark.parametrize(
    "question, expected",
    [
        ("who is Rob Strayer?", "State Department official"),
        ("Who is Garrett Marquis?", "National Security Council spokesman"),
        ("What was MWC Barcelona formerly known as?", "Mobile World Congress"),
    ],
)
def test_default_reader_answers_seed_questions(default_engine, question, expected):
    answer = default_engine.ask(question)
    assert answer.reader == "neural"
    assert answer.found and answer.text == expected
    exact = default_engine.ask(question, reader_precision="fp32")  # the default may compute in bf16
    assert exact.found and exact.text == expected
    top = answer.citations[0]
    assert top.answer_start is not None and top.quote.count(expected) >= 1
    assert_citations_hold(answer)


@pytest.mark.parametrize(
    "question",
    ["Who is the chief executive of Nokia?", "What is the capital of France?", "When was Apple founded?"],
)
def test_default_reader_abstains_when_documents_are_silent(default_engine, question):
    answer = default_engine.ask(question)
    assert not answer.found and answer.text == ""
    assert answer.citations, "the closest passages are still cited"
    assert_citations_hold(answer)


# ---- the command line -----------------------------------------------------------------------------


def _cli(*args: str | bytes, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qa", *args], cwd=REPO_ROOT, stderr=subprocess.PIPE, **popen)


@pytest.mark.parametrize(
    "argv",
    [["--json", "who is Rob Strayer?"], ["who is Rob Strayer?", "--json"], ["who is", "--json", "Rob Strayer?"]],
)
def test_cli_options_before_and_after_the_question(seed_index, capsys, argv):
    from qa.__main__ import main

    assert main([*argv, "--index", str(seed_index.path), "--reader", "sentence"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["question"] == "who is Rob Strayer?" and answer["text"] == "State Department official"


def test_cli_refuses_a_lone_surrogate_in_one_line(seed_index):
    """Bytes that are not UTF-8 reach Python as lone surrogates: one line on stderr, exit 2."""
    proc = _cli(b"who is \xed\xa0\x80?", "--index", str(seed_index.path), "--reader", "sentence",
                stdout=subprocess.PIPE)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and out == b""
    assert err.decode().strip().count("\n") == 0 and "invalid character at position 8" in err.decode()


def test_cli_stops_quietly_when_the_reader_of_its_output_goes_away(seed_index):
    """``python -m qa ... | head``: the pipe closes before the answer is written."""
    proc = _cli("who is Rob Strayer?", "--index", str(seed_index.path), "--reader", "sentence", stdout=subprocess.PIPE)
    proc.stdout.close()  # like `head` exiting before the answer is printed
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    assert "BrokenPipeError" not in err and "Traceback" not in err
    assert proc.returncode == 1


def test_the_prompt_understands_a_follow_up(seed_index, capsys, monkeypatch):
    """At the interactive prompt each question may point back at the earlier ones."""
    from qa.__main__ import main

    typed = iter(["who is Rob Strayer?", "Where did he speak?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(typed))
    assert main(["--index", str(seed_index.path)]) == 0
    out = capsys.readouterr().out
    first, second = out.split("\n\n")[:2]
    assert "State Department official" in first and "understood as" not in first
    assert second.startswith("(understood as: Where did Rob Strayer speak?)\nCenter for Strategic and International Studies")
