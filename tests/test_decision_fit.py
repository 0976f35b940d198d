"""The answer-or-abstain decision: its features, fitting it on several sets, the short-document set,
and evaluating with another decider file."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest

from qa.decision import Decider, decision_features
from qa.training.decision import Observation, check, fit, main as fit_main, read_observations
from qa.types import Candidate, Passage

DATA = Path(__file__).resolve().parent / "data"
QA_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "qa-train"


def _candidate(source: str, text: str, answer: str, score: float, chunk: int) -> Candidate:
    start = text.index(answer)
    passage = Passage(chunk_id=chunk, source=source, start=0, end=len(text), text=text, score=1.0, term_rank=1)
    return Candidate(passage=passage, sentence_start=0, sentence_end=len(text), sentence=text, answer_start=start,
                     answer_end=start + len(answer), answer=answer, score=score)


def test_same_document_counts_the_other_passages_read_from_the_answers_document():
    one = "Mount Etna erupted in 1669 and destroyed Catania."
    other = "Vesuvius erupted in 79 and buried Pompeii."
    long_doc = [_candidate("long.txt", one, "1669", 0.8, 1), _candidate("long.txt", other, "79", 0.3, 2),
                _candidate("long.txt", other, "Pompeii", 0.2, 3), _candidate("b.txt", other, "79", 0.1, 4)]
    f = decision_features("When did Etna erupt?", long_doc, lambda term: 1.0)
    assert f["same_document"] == pytest.approx(2 / 3)
    short = [_candidate("a.txt", one, "1669", 0.8, 1), _candidate("b.txt", other, "79", 0.3, 2)]
    assert decision_features("When did Etna erupt?", short, lambda term: 1.0)["same_document"] == 0.0
    assert decision_features("When did Etna erupt?", short[:1], lambda term: 1.0)["same_document"] == 0.0


def test_the_sentence_cosines_say_how_close_the_answers_sentence_is_to_the_question(embedder):
    etna = "Mount Etna erupted in 1669 and destroyed the city of Catania."
    bread = "The bakery sells fresh bread every morning at seven."
    # One passage of three sentences: the answer's window holds its neighbours.
    text = f"{bread} {etna} {bread}"
    start = text.index("1669")
    passage = Passage(chunk_id=1, source="a.txt", start=0, end=len(text), text=text, score=1.0, term_rank=1)
    best = Candidate(passage=passage, sentence_start=text.index(etna), sentence_end=text.index(etna) + len(etna),
                     sentence=etna, answer_start=start, answer_end=start + 4, answer="1669", score=0.8)
    wrong = replace(best, sentence_start=0, sentence_end=len(bread), sentence=bread, answer_start=text.index("seven"),
                    answer_end=text.index("seven") + 5, answer="seven")
    question = "When did Etna erupt?"
    right_f = decision_features(question, [best], lambda term: 1.0, embedder.encode)
    wrong_f = decision_features(question, [wrong], lambda term: 1.0, embedder.encode)
    assert right_f["dense_sentence"] > wrong_f["dense_sentence"] + 0.3
    # The window adds the neighbours, so the right sentence's window is further from the question
    # than the sentence alone; the question's vector may be given instead of embedded again.
    assert right_f["dense_window"] < right_f["dense_sentence"]
    given = decision_features(question, [best], lambda term: 1.0, embedder.encode, embedder.encode([question])[0])
    assert given["dense_sentence"] == pytest.approx(right_f["dense_sentence"], abs=1e-5)
    # Without the embedder those two are left out; the others are as with it.
    plain = decision_features(question, [best], lambda term: 1.0)
    assert "dense_sentence" not in plain and plain["reader"] == right_f["reader"]


def test_a_question_set_is_observed_as_it_is_asked(tmp_path):
    from qa.training.decision import gather

    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "q1", "question": "who is Rob Strayer?", "answers": ["State Department official"],
         "source": "seeds/000_ffecf142e84792ea.txt"},
        {"id": "q2", "question": "Who is Huawei's chief financial officer?", "answers": [],
         "source": "seeds/000_ffecf142e84792ea.txt"}]))
    observed = gather([str(path)], tmp_path / "obs", {"questions": str(tmp_path / "index")}, progress=False)
    observations = observed[str(path)]
    assert [o.answerable for o in observations] == [True, False]
    assert observations[0].f1 == 1.0 and observations[0].features["dense_sentence"] > 0.3
    assert read_observations(tmp_path / "obs" / "mine.jsonl") == observations


def _observations(n: int, same_document: float, offset: float, seed: int) -> list[Observation]:
    """Answers right with probability sigmoid(reader + offset): the reader's score means less where offset < 0."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        reader = rng.uniform(-3, 3)
        right = rng.random() < 1 / (1 + pow(2.718281828, -(2 * reader + offset)))
        answerable = right or rng.random() < 0.5
        out.append(Observation({"reader": reader, "coverage": 0.8, "bm25": 1.0, "same_document": same_document},
                               1.0 if right else 0.0, answerable))
    return out


def test_fit_learns_that_a_long_document_needs_a_higher_reader_score():
    sets = {"long": _observations(300, 1.0, -3.0, 0), "short": _observations(300, 0.0, 1.0, 1)}
    decider = fit(sets, features=("reader", "same_document"))
    assert decider.weights["same_document"] < -1.0
    at = {"reader": 0.0, "coverage": 0.8, "bm25": 1.0}
    assert decider.probability({**at, "same_document": 0.0}) >= decider.threshold  # short paragraph: answered
    assert decider.probability({**at, "same_document": 1.0}) < decider.threshold  # long document: not found
    assert set(decider.record["out_of_fold"]) == {"long", "short"}
    # Without the feature one model cannot tell the two apart, and the out-of-fold F1 shows it.
    blind = fit(sets, features=("reader",))
    assert blind.record["weighted_f1_out_of_fold"] < decider.record["weighted_f1_out_of_fold"]


def test_each_set_weighs_the_same_however_many_questions_it_has():
    long, short = _observations(600, 1.0, -3.0, 0), _observations(60, 0.0, 1.0, 1)
    decider = fit({"long": long, "short": short}, features=("reader", "same_document"))
    # Unweighted, the short set is a tenth of the data; weighted, it still gets most of its questions right.
    assert check(decider, short)["f1"] >= check(decider, long)["f1"] - 5
    assert check(decider, short)["answered"] > check(decider, long)["answered"]


def test_observations_without_a_feature_are_refused_with_what_to_do(tmp_path, capsys):
    kept = tmp_path / "old.jsonl"
    rows = [Observation({"reader": r, "coverage": 0.5, "bm25": 1.0}, float(r > 0), True) for r in (-2, -1, 1, 2)] * 5
    kept.write_text("".join(json.dumps({"features": o.features, "f1": o.f1, "answerable": o.answerable}) + "\n"
                            for o in rows))
    assert read_observations(kept) == rows
    with pytest.raises(ValueError, match=r"lack the features \[.same_document.\]; observe that set again"):
        fit({"old": read_observations(kept)}, features=("reader", "same_document"))
    out = tmp_path / "decider.json"
    assert fit_main(["--from-observations", f"old={kept}", "--check", "--features", "reader", "--out", str(out)]) == 0
    decider = Decider.load(out)
    assert decider.weights["reader"] > 0 and decider.record["fitted_on"] == ["old"]
    capsys.readouterr()
    assert fit_main(["--score", str(out), "--check", f"old={kept}"]) == 0
    scored = json.loads(capsys.readouterr().out)["old"]
    assert scored["questions"] == 20 and scored["no_ans_accuracy"] is None and scored["f1"] == 50.0


@pytest.mark.skipif(not QA_TRAIN.is_dir(), reason="needs ../shared/data/qa-train")
def test_the_short_document_set_keeps_its_parts_and_the_long_documents_held_out_part_apart():
    from qa.eval.longdocs import load_longdocs
    from qa.eval.shortdocs import load_shortdocs

    fit_part, check_part = load_shortdocs("fit", QA_TRAIN), load_shortdocs("check", QA_TRAIN)
    assert fit_part.documents == check_part.documents
    assert not {q.id for q in fit_part.questions} & {q.id for q in check_part.questions}
    assert not {q.title for q in fit_part.questions} & {q.title for q in check_part.questions} - {"Filtered_Reddit_Comments"}
    for part in (fit_part, check_part):
        assert 0.15 < sum(not q.answerable for q in part.questions) / len(part.questions) < 0.5
        for q in part.questions:
            if q.answerable:  # the gold answer is in the indexed paragraph, at its offset
                start = q.answer_starts[0]
                assert part.context(q)[start:start + len(q.answers[0])] == q.answers[0]
            elif q.id.endswith("-absent") and q.title != "Filtered_Reddit_Comments":
                # an absent article has no paragraph in the collection
                assert q.title not in {s.split("/", 1)[1].rsplit("#", 1)[0] for s in part.documents}
    assert max(len(t) for t in fit_part.documents.values()) < 15_000
    held = {q.id.split("-")[0] for q in load_longdocs("heldout", QA_TRAIN).questions}
    asked = {q.id.split("-")[0] for p in (fit_part, check_part) for q in p.questions}
    assert not held & asked


def test_evaluation_takes_another_decider_file(tmp_path, embedder):
    from qa.eval.run import evaluate

    figures = {}
    for name, bias in (("never", -50.0), ("always", 50.0)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(Decider({"reader": 0.0}, bias, 0.5).to_dict()))
        report = evaluate(DATA / "seed_questions.jsonl", reader="neural", limit=4, seed=0, progress=False,
                          embedder=embedder, index_cache=str(tmp_path / "index"), decider_file=str(path))
        figures[name] = report.figures
    assert figures["never"]["answered"] == 0.0 and figures["never"]["threshold"] == 0.5
    assert figures["always"]["answered"] > 0.0
    with pytest.raises(ValueError, match="cannot read the decider"):
        evaluate(DATA / "seed_questions.jsonl", limit=1, progress=False, embedder=embedder,
                 index_cache=str(tmp_path / "index"), decider_file=str(tmp_path / "missing.json"))


def test_ask_takes_a_decider_file(tmp_path, seed_index):
    """A decision model of your own (for a reader of your own) is a setting like the others."""
    from qa.engine import Engine

    never = tmp_path / "never.json"
    never.write_text(json.dumps(Decider({"reader": 0.0}, -50.0, 0.5).to_dict()))
    engine = Engine(seed_index)
    shipped = engine.ask("who is Rob Strayer?", reader="neural")
    assert shipped.found and shipped.text == "State Department official"
    held_back = engine.ask("who is Rob Strayer?", reader="neural", decider_file=str(never))
    assert not held_back.found and held_back.withheld == "State Department official"
    assert engine.default_threshold(reader="neural", decider_file=never) == 0.5
    with pytest.raises(ValueError, match="cannot read the decider .*python -m qa.training.decision"):
        engine.ask("who is Rob Strayer?", reader="neural", decider_file=str(tmp_path / "missing.json"))


def test_the_sentence_cosines_are_computed_where_a_decision_weighs_them_or_none_decides(tmp_path, seed_index):
    from qa.engine import Engine

    engine = Engine(seed_index)
    question = "who is Rob Strayer?"
    assert not engine.decider().embeds and "dense_sentence" not in engine.ask(question, reader="neural").evidence
    observed = engine.ask(question, reader="neural", decider="off").evidence
    assert 0.0 < observed["dense_window"] < observed["dense_sentence"]
    weighing = tmp_path / "cosine.json"
    weighing.write_text(json.dumps(Decider({"reader": 1.0, "dense_sentence": 2.0}, -1.0, 0.5).to_dict()))
    answer = engine.ask(question, reader="neural", decider_file=str(weighing))
    assert answer.evidence["dense_sentence"] == pytest.approx(observed["dense_sentence"], abs=1e-5)
    z = -1.0 + answer.evidence["reader"] + 2.0 * answer.evidence["dense_sentence"]
    assert answer.score == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-4)


def test_a_conversation_set_is_observed_as_its_turns_understood(tmp_path):
    from qa.training.decision import gather

    path = tmp_path / "talk.jsonl"
    path.write_text(json.dumps({"id": "c", "source": "seeds/000_ffecf142e84792ea.txt", "turns": [
        {"question": "who is Rob Strayer?", "rewrite": "who is Rob Strayer?", "answers": ["State Department official"]},
        {"question": "Where did he speak?", "rewrite": "Where did Rob Strayer speak?",
         "answers": ["the Center for Strategic and International Studies"]}]}) + "\n")
    observed = gather([str(path)], tmp_path / "obs", {"conversations": str(tmp_path / "index")}, progress=False)
    [(name, observations)] = observed.items()
    assert name == str(path) and len(observations) == 2 and all(o.answerable for o in observations)
    assert observations[0].f1 == 1.0 and observations[0].features["reader"] > 0
    # Kept with the question as asked (a follow-up as understood) and the answer the decision judged.
    assert (observations[1].question, observations[1].answer) == (
        "Where did Rob Strayer speak?", "Center for Strategic and International Studies")
    assert read_observations(tmp_path / "obs" / "talk.jsonl") == observations
    with pytest.raises(ValueError, match="question or conversation set"):
        gather(["no-such-set"], None, {}, progress=False)
    # The engine's settings reach the answers: a reader folder that holds none is refused.
    with pytest.raises(FileNotFoundError, match="no neural reader"):
        gather([str(path)], None, {"conversations": str(tmp_path / "index")}, progress=False,
               reader_dir=str(tmp_path / "no-reader"))
