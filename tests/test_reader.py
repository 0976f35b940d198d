"""The trained neural reader: shipped weights, checksums, span extraction, abstention (training: test_training.py)."""

from __future__ import annotations

import json
import shutil

import pytest

from qa.readers import neural
from qa.readers.neural import MODEL_DIR, NeuralReader, ReaderIntegrityError, is_available, verify_checksums
from qa.types import Passage


def _passage(text: str, doc_prefix: str = "", chunk_id: int = 0) -> tuple[str, Passage]:
    """A document ``doc_prefix + text`` and the passage covering ``text`` inside it."""
    doc = doc_prefix + text
    start = len(doc_prefix)
    return doc, Passage(chunk_id=chunk_id, source=f"doc{chunk_id}.txt", start=start, end=len(doc), text=text, score=0.5)


@pytest.fixture(scope="module")
def reader() -> NeuralReader:
    assert is_available(), "qa/models/reader is missing: run `python -m qa.train_reader`"
    return NeuralReader.load()


def test_shipped_weights_pass_checksum_and_are_small():
    verify_checksums(MODEL_DIR)
    size = (MODEL_DIR / "model.safetensors").stat().st_size
    assert size < 50 * 1024 * 1024
    cfg = json.loads((MODEL_DIR / "reader.json").read_text())
    assert 0 < cfg["calib_a"] and 0 <= cfg["threshold"] <= 1


def test_corrupted_copy_is_refused(tmp_path):
    bad = tmp_path / "reader"
    shutil.copytree(MODEL_DIR, bad)
    weights = bad / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ReaderIntegrityError, match="(?i)reinstall|retrain"):
        NeuralReader.load(bad, cached=False)


def test_missing_weights_say_what_to_do(tmp_path):
    assert not is_available(tmp_path)
    with pytest.raises(FileNotFoundError, match="train_reader"):
        NeuralReader.load(tmp_path, cached=False)


@pytest.mark.parametrize(
    "question,text,expected",
    [
        (
            "When was the Eiffel Tower completed?",
            "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 and was designed "
            "by the engineering company of Gustave Eiffel. It is 330 metres tall.",
            "1889",
        ),
        (
            "Who designed the bridge?",
            "The old bridge was closed for repairs last winter. The new bridge, which opened in 2004, was designed "
            "by the architect Maria Lopez. Traffic across the river doubled after it opened.",
            "Maria Lopez",
        ),
        (
            "What is the capital of Australia?",
            "Australia is a country in the southern hemisphere. Its largest city is Sydney, but the capital of "
            "Australia is Canberra, which was chosen as a compromise between Sydney and Melbourne.",
            "Canberra",
        ),
    ],
)
def test_finds_answer_span_with_exact_offsets(reader, question, text, expected):
    doc, p = _passage(text, doc_prefix="Header line.\n\n")
    cands = reader.extract(question, [p])
    assert cands, "the reader should answer"
    best = cands[0]
    assert expected in best.answer
    assert len(best.answer) <= len(expected) + 12
    assert doc[best.answer_start : best.answer_end] == best.answer
    assert doc[best.sentence_start : best.sentence_end] == best.sentence
    assert best.sentence_start <= best.answer_start < best.answer_end <= best.sentence_end
    assert 0.2 < best.score <= 1.0 and best.reader == "neural"


def test_prefers_the_passage_that_answers(reader):
    _, p1 = _passage("Bananas are rich in potassium and are grown in tropical regions around the world.", chunk_id=1)
    _, p2 = _passage("The Treaty of Westphalia was signed in 1648, ending the Thirty Years' War in Europe.", chunk_id=2)
    cands = reader.extract("In what year was the Treaty of Westphalia signed?", [p1, p2])
    assert cands and cands[0].passage.chunk_id == 2 and "1648" in cands[0].answer
    readings = reader.score_passages("In what year was the Treaty of Westphalia signed?", [p1, p2])
    assert [r.passage.chunk_id for r in readings] == [1, 2]
    assert readings[1].margin > readings[0].margin
    assert readings[1].score > readings[0].score


class _CountingReader:
    """The real reader, recording how many passages each ``extract`` call read."""

    name = "neural"

    def __init__(self, reader: NeuralReader):
        self.reader, self.threshold, self.calls = reader, reader.threshold, []

    def extract(self, question, passages):
        self.calls.append(len(passages))
        return self.reader.extract(question, passages)


def test_early_exit_reads_the_rest_only_when_unsure(reader):
    from qa.engine import read_passages

    question = "In what year was the Treaty of Westphalia signed?"
    _, answers = _passage("The Treaty of Westphalia was signed in 1648, ending the Thirty Years' War in Europe.", chunk_id=1)
    _, silent = _passage("Bananas are rich in potassium and are grown in tropical regions around the world.", chunk_id=2)
    counting = _CountingReader(reader)
    confident = read_passages(counting, question, [answers, silent], early_exit=0.5)
    assert counting.calls == [1] and confident[0].passage.chunk_id == 1 and "1648" in confident[0].answer
    counting.calls.clear()
    unsure_first = read_passages(counting, question, [silent, answers], early_exit=0.5)
    assert counting.calls == [1, 1] and "1648" in max(unsure_first, key=lambda c: c.score).answer
    counting.calls.clear()
    everything = read_passages(counting, question, [answers, silent], early_exit=1.0)
    assert counting.calls == [2] and [c.answer for c in everything][:1] == [confident[0].answer]


@pytest.mark.parametrize(
    "question,text",
    [
        (
            "Who won the 1998 World Cup?",
            "Sourdough bread is made by fermenting dough with wild yeast and lactic acid bacteria. "
            "The starter is fed with flour and water every day.",
        ),
        (
            "What is the boiling point of mercury?",
            "The committee meets on the first Monday of every month. Minutes are published on the website "
            "one week after each meeting.",
        ),
    ],
)
def test_abstains_when_passage_does_not_answer(reader, question, text):
    _, p = _passage(text)
    (reading,) = reader.score_passages(question, [p])
    assert reading.score < reader.config.threshold
    assert all(c.score < reader.config.threshold for c in reader.extract(question, [p]))


def test_long_passage_is_read_in_windows(reader):
    filler = " ".join(f"Paragraph {i} talks about the weather in a town with no name." for i in range(60))
    text = filler + " The lighthouse keeper was named Thomas Hardwick. " + filler
    _, p = _passage(text)
    cands = reader.extract("What was the name of the lighthouse keeper?", [p])
    assert cands and "Hardwick" in cands[0].answer
    assert text[cands[0].answer_start - p.start : cands[0].answer_end - p.start] == cands[0].answer


def test_empty_input(reader):
    assert reader.extract("anything?", []) == []


def test_every_precision_reads_the_same_answer():
    doc, p = _passage("The new bridge, which opened in 2004, was designed by the architect Maria Lopez.", "Intro.\n")
    got = {}
    for precision in ("fp32", "bf16", "int8"):
        r = NeuralReader.load(precision=precision)
        assert r.precision == precision
        (best, *_) = r.extract("Who designed the bridge?", [p])
        assert best.answer == "Maria Lopez" and doc[best.answer_start:best.answer_end] == best.answer
        got[precision] = best.score
    assert abs(got["bf16"] - got["fp32"]) < 0.05  # bf16 only rounds the products; int8 may move further
    assert NeuralReader.load(precision="auto").precision == ("bf16" if neural.cpu_has_bf16() else "fp32")
    with pytest.raises(ValueError, match="precision must be one of"):
        NeuralReader.load(precision="fp8")


def test_span_logit_of_the_best_span_is_the_best_logit(reader):
    text = ("The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 and was designed "
            "by the engineering company of Gustave Eiffel.")
    (wins,) = neural.read_windows(reader.model, reader.tokenizer, "When was the tower completed?", [text], reader.config)
    logit, _, s, e = neural.best_of_windows(wins, reader.config.max_answer_tokens)
    scored = neural.span_logit(wins, s, e, reader.config.max_answer_tokens)
    assert scored is not None and scored[1:] == (s, e) and scored[0] == pytest.approx(logit)
    other = neural.span_logit(wins, text.index("Paris"), text.index("Paris") + 5, reader.config.max_answer_tokens)
    assert other is not None and other[0] < logit
    assert neural.span_logit(wins, 0, len(text), reader.config.max_answer_tokens) is None  # longer than 30 pieces


def test_typed_span_wins_only_within_the_agreement_margin(reader):
    text = ("“We are raising it at the highest diplomatic levels,” said State Department official Rob Strayer at an "
            "event at the Center for Strategic and International Studies.")
    alt = neural.typed_alternative("who is Rob Strayer?", text, text.index("State"), text.index("State") + 16)
    assert alt is not None and text[alt[0]:alt[1]] == "State Department official"
    _, p = _passage(text)
    off = NeuralReader(reader.model, reader.tokenizer, neural.ReaderConfig(**{**reader.config.__dict__, "agree_margin": 0.0}),
                       reader.path)
    wide = NeuralReader(reader.model, reader.tokenizer, neural.ReaderConfig(**{**reader.config.__dict__, "agree_margin": 50.0}),
                        reader.path)
    (r_off,) = off.score_passages("who is Rob Strayer?", [p])
    (r_wide,) = wide.score_passages("who is Rob Strayer?", [p])
    assert r_wide.answer == "State Department official"
    assert r_wide.span_logit <= r_off.span_logit  # the typed span never scores above the model's best
    assert text[r_wide.answer_start - p.start : r_wide.answer_end - p.start] == r_wide.answer
