"""Training the neural reader: a tiny run, averaging, held-out scoring, training windows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qa.readers import neural
from qa.readers.neural import MODEL_DIR, NeuralReader, is_available, verify_checksums
from qa.types import Passage


def _passage(text: str, doc_prefix: str = "", chunk_id: int = 0) -> tuple[str, Passage]:
    """A document ``doc_prefix + text`` and the passage covering ``text`` inside it."""
    doc = doc_prefix + text
    start = len(doc_prefix)
    return doc, Passage(chunk_id=chunk_id, source=f"doc{chunk_id}.txt", start=start, end=len(doc), text=text, score=0.5)


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
    doc, passage = _passage("The tower was completed in 1889.", "Intro.\n")
    (reading,) = loaded.score_passages("When was the tower completed?", [passage])
    assert reading.answer and doc[reading.answer_start:reading.answer_end] == reading.answer  # it reads, exact offsets
    assert 0.0 <= reading.score <= 1.0
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
    doc, passage = _passage("It was built in 1889.", "Intro.\n")
    (reading,) = NeuralReader.load(out, cached=False).score_passages("When was it built?", [passage])
    assert reading.answer and doc[reading.answer_start:reading.answer_end] == reading.answer  # the mean loads and reads
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
