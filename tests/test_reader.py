"""The trained neural reader: shipped weights, checksums, span extraction, abstention, training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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


def _tiny_training_set(folder: Path) -> Path:
    """The file names qa.train_reader reads, each holding a few hand-made questions."""
    folder.mkdir()
    contexts = [
        ("The Eiffel Tower in Paris was completed in 1889 and designed by the company of Gustave Eiffel. "
         "It is 330 metres tall and was the tallest structure in the world until 1930.",
         [("When was the Eiffel Tower completed?", "1889"), ("Whose company designed the tower?", "Gustave Eiffel"),
          ("How tall is the Eiffel Tower?", "330 metres")]),
        ("Canberra is the capital of Australia. It was chosen in 1908 as a compromise between Sydney and "
         "Melbourne, the two largest cities, and lies in the Australian Capital Territory.",
         [("What is the capital of Australia?", "Canberra"), ("When was Canberra chosen?", "1908"),
          ("Which two cities was Canberra a compromise between?", "Sydney and Melbourne")]),
    ]
    from qa.training.train import DEFAULT_FILES

    for n, name in enumerate(DEFAULT_FILES):
        paragraphs = []
        for c, (ctx, qas) in enumerate(contexts):
            paragraphs.append({"context": ctx, "qas": [
                {"id": f"{n}-{c}-{k}", "question": q, "answers": [{"text": a, "answer_start": ctx.index(a)}]}
                for k, (q, a) in enumerate(qas)]})
        (folder / name).write_text(json.dumps({"version": "tiny", "data": [{"title": name, "paragraphs": paragraphs}]}))
    return folder


def test_tiny_training_run_changes_weights(tmp_path):
    from safetensors.torch import load_file

    from qa.training import train as train_reader

    out, work = tmp_path / "reader", tmp_path / "work"
    data = _tiny_training_set(tmp_path / "data")
    rc = train_reader.main(
        ["--limit", "12", "--max-steps", "2", "--batch-size", "4", "--out", str(out), "--work", str(work),
         "--eval-limit", "3", "--log-every", "1", "--data-dir", str(data), "--device", "cpu"]
    )
    assert rc == 0
    assert is_available(out)
    verify_checksums(out)
    trained = load_file(str(work / "checkpoint" / "model.safetensors"))
    base = load_file(str(train_reader.base_model_dir() / "model.safetensors"))
    key = "encoder.layer.0.attention.self.query.weight"
    tkey = next(k for k in trained if k.endswith(key))
    bkey = next(k for k in base if k.endswith(key))
    assert not bool((trained[tkey] - base[bkey].float()).abs().max() == 0)
    state = json.loads((work / "checkpoint" / "state.json").read_text())
    assert state["step"] == 2
    loaded = NeuralReader.load(out, cached=False)
    assert isinstance(loaded.extract("What?", [_passage("Some text here.")[1]]), list)
    written = json.loads((out / "reader.json").read_text())
    assert neural.ReaderConfig.from_dict(written).max_answer_tokens == 30
    assert 0 <= written["heldout"]["best_balanced_f1_twins"] <= 100


def test_average_of_readers_is_the_mean_of_their_weights(tmp_path):
    from safetensors.torch import load_file, save_file

    from qa.training.train import average_readers

    key = "qa_outputs.weight"
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "mean"
    shutil.copytree(MODEL_DIR, a)
    shutil.copytree(MODEL_DIR, b)
    shifted = load_file(str(b / "model.safetensors"))
    shifted[key] = shifted[key] + 1.0
    save_file(shifted, str(b / "model.safetensors"))
    neural.write_checksums(b)
    written = average_readers([a, b], out)
    verify_checksums(out)
    mean, orig = load_file(str(out / "model.safetensors")), load_file(str(a / "model.safetensors"))
    assert (mean[key].float() - orig[key].float() - 0.5).abs().max() < 1e-2  # fp16 storage
    other = "qa_outputs.bias"
    assert bool((mean[other] == orig[other]).all())
    assert [p["folder"] for p in written["training"]["average_of"]] == [str(a), str(b)]
    assert isinstance(NeuralReader.load(out, cached=False).extract("When was it built?", [_passage("It was built in 1889.")[1]]), list)
    tilted = average_readers([a, b], tmp_path / "tilted", weights=[3, 1])  # a quarter of the way to b
    near_a = load_file(str(tmp_path / "tilted" / "model.safetensors"))
    assert (near_a[key].float() - orig[key].float() - 0.25).abs().max() < 1e-2
    assert [p["weight"] for p in tilted["training"]["average_of"]] == [0.75, 0.25]
    assert "--average-weights 3 1" in tilted["training"]["command"]
    with pytest.raises(ValueError, match="one non-negative weight per reader"):
        average_readers([a, b], tmp_path / "bad", weights=[1.0])
    with pytest.raises(ValueError, match="new folder"):
        average_readers([a, out], out)
    with pytest.raises(ValueError, match="at least two"):
        average_readers([a], out)


def test_balanced_best_f1_weighs_answerable_and_unanswerable_alike():
    from qa.training.train import balanced_best_f1

    # Answerable readings: margin 3 (F1 1.0) and margin 1 (F1 0.5); unanswerable: margins 0 and 2.
    # The best threshold lies above 2: it keeps the first answer (0.5 of the answerable
    # average) and rejects both unanswerables (1.0), (0.5 + 1.0) / 2 = 75.
    assert balanced_best_f1([3.0, 1.0], [1.0, 0.5], [0.0, 2.0]) == pytest.approx(75.0)
    # When the unanswerables outscore every answer, abstaining on everything (50) is the best.
    assert balanced_best_f1([3.0, 1.0], [1.0, 0.5], [5.0, 6.0]) == pytest.approx(50.0)
    assert balanced_best_f1([1.0], [1.0], []) == 0.0


def _tiny_builder_inputs(tmp_path: Path) -> tuple:
    """``(cfg, contexts, train, tokenizer)`` for FeatureBuilder over the tiny training set, with
    every optional no-answer window off (tests turn one on with ``replace(cfg, ...)``)."""
    from qa.training import train as train_reader

    data = _tiny_training_set(tmp_path / "data")
    cfg = train_reader.TrainConfig(neg_rate=0.0, heldout_per_mille=0, hard_neg_rate=0.0, within_rate=0.0)
    contexts, train, _ = train_reader.load_data(data, train_reader.DEFAULT_FILES, cfg)
    return cfg, contexts, train, neural.load_tokenizer(MODEL_DIR)


def test_training_windows_include_unanswerable_twins_labelled_no_answer(tmp_path):
    from dataclasses import replace

    from qa.training import train as train_reader

    cfg, contexts, train, tok = _tiny_builder_inputs(tmp_path)
    plain = train_reader.FeatureBuilder(tok, contexts, train, cfg).build(0)
    assert plain and all(f[2] > 0 for f in plain)  # every window holds its answer
    hard = train_reader.FeatureBuilder(tok, contexts, train, replace(cfg, hard_neg_rate=1.0)).build(0)
    twins = [f for f in hard if f[2] == 0 and f[3] == 0]
    assert twins, "questions with a name, number or comparative get an unanswerable twin"
    questions = {tok.decode(f[0][1:f[1] - 1]) for f in plain}
    for ids, q_end, _, _ in twins:
        assert tok.decode(ids[1:q_end - 1]) not in questions  # the twin asks something else
        assert ids[q_end:] and ids[-1] == tok.sep_token_id
    # --within-rate adds twins that swap in another name or number of the same context.
    within = train_reader.FeatureBuilder(tok, contexts, train, replace(cfg, within_rate=1.0)).build(0)
    within_twins = [f for f in within if f[2] == 0 and f[3] == 0]
    assert within_twins and len(within) == len(plain) + len(within_twins)
    for ids, q_end, _, _ in within_twins:
        question = tok.decode(ids[1:q_end - 1])
        assert question not in questions
        context = tok.decode(ids[q_end:-1])
        assert all(w in context for w in question.rstrip(" ?").split()[2:] if w[0].isalnum())


def test_training_windows_include_written_near_misses_and_can_focus_on_them(tmp_path):
    from dataclasses import replace

    from qa.training import train as train_reader

    cfg, contexts, train, tok = _tiny_builder_inputs(tmp_path)
    near = "When was the Eiffel Tower demolished?"
    first = next(e for e in train if e.question == "When was the Eiffel Tower completed?")
    written = {(first.source, first.qid): near}
    plain = train_reader.FeatureBuilder(tok, contexts, train, cfg, written).build(0)  # written_rate 0: unused
    assert all(f[2] > 0 for f in plain)
    feats = train_reader.FeatureBuilder(tok, contexts, train, replace(cfg, written_rate=1.0), written).build(0)
    added = [f for f in feats if f[2] == 0 and f[3] == 0]
    assert len(feats) == len(plain) + 1 and len(added) == 1
    ids, q_end, _, _ = added[0]
    assert tok.decode(ids[1:q_end - 1]) == near.lower()  # the written question, labelled "no answer"
    answer_window = next(f for f in plain if tok.decode(f[0][1:f[1] - 1]) == first.question.lower())
    assert ids[q_end:] == answer_window[0][answer_window[1]:]  # over the answer's own window
    focus = train_reader.written_focus(train, written, replay=2, seed=0)
    assert focus[0] == first and len(focus) == 3 and len(set(focus)) == 3
    with pytest.raises(ValueError, match="near miss"):
        train_reader.written_focus(train, {}, replay=1, seed=0)


def test_training_windows_can_include_other_documents_labelled_no_answer(tmp_path):
    from dataclasses import replace

    from qa.training import train as train_reader

    cfg, contexts, train, tok = _tiny_builder_inputs(tmp_path)
    plain = train_reader.FeatureBuilder(tok, contexts, train, cfg).build(0)
    feats = train_reader.FeatureBuilder(tok, contexts, train, replace(cfg, other_neg_rate=1.0)).build(0)
    added = [f for f in feats if f[2] == 0 and f[3] == 0]
    assert added and len(feats) == len(plain) + len(added)
    own = {tok.decode(f[0][1:f[1] - 1]): tok.decode(f[0][f[1]:-1]) for f in plain}
    for ids, q_end, _, _ in added:
        question, text = tok.decode(ids[1:q_end - 1]), tok.decode(ids[q_end:-1])
        assert text != own[question]  # a window of another context than the question's
