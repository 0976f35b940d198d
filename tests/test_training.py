"""Training the neural reader: data, features, the schedule, a tiny real run, averaging, the command line."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from qa.readers import neural
from qa.readers.neural import MODEL_DIR, NeuralReader, is_available, verify_checksums
from qa.training import config as training_config
from qa.training.calibration import balanced_best_f1
from qa.training.config import DEFAULT_FILES, TrainConfig
from qa.training.data import load_data, written_focus
from qa.training.features import FeatureBuilder, collate, make_batches
from qa.types import Passage

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTEXTS = [
    ("The Eiffel Tower in Paris was completed in 1889 and designed by the company of Gustave Eiffel. "
     "It is 330 metres tall and was the tallest structure in the world until 1930.",
     [("When was the Eiffel Tower completed?", "1889"), ("Whose company designed the tower?", "Gustave Eiffel"),
      ("How tall is the Eiffel Tower?", "330 metres")]),
    ("Canberra is the capital of Australia. It was chosen in 1908 as a compromise between Sydney and "
     "Melbourne, the two largest cities, and lies in the Australian Capital Territory.",
     [("What is the capital of Australia?", "Canberra"), ("When was Canberra chosen?", "1908"),
      ("Which two cities was Canberra a compromise between?", "Sydney and Melbourne")]),
]


def _tiny_training_set(folder: Path) -> Path:
    """The file names the training reads, each holding a few hand-made questions."""
    folder.mkdir()
    for n, name in enumerate(DEFAULT_FILES):
        paragraphs = []
        for c, (ctx, qas) in enumerate(CONTEXTS):
            paragraphs.append({"context": ctx, "qas": [
                {"id": f"{n}-{c}-{k}", "question": q, "answers": [{"text": a, "answer_start": ctx.index(a)}]}
                for k, (q, a) in enumerate(qas)]})
        (folder / name).write_text(json.dumps({"version": "tiny", "data": [{"title": name, "paragraphs": paragraphs}]}))
    return folder


def _tiny_builder_inputs(tmp_path: Path) -> tuple:
    """``(cfg, contexts, train, tokenizer)`` for FeatureBuilder over the tiny training set, with
    every optional no-answer window off (tests turn one on with ``replace(cfg, ...)``)."""
    data = _tiny_training_set(tmp_path / "data")
    cfg = TrainConfig(neg_rate=0.0, heldout_per_mille=0, hard_neg_rate=0.0, within_rate=0.0)
    contexts, train, _ = load_data(data, DEFAULT_FILES, cfg)
    return cfg, contexts, train, neural.load_tokenizer(MODEL_DIR)


# ---- data -----------------------------------------------------------------------------------------

def test_load_data_reads_every_file_and_holds_out_by_context(tmp_path):
    data = _tiny_training_set(tmp_path / "data")
    contexts, train, heldout = load_data(data, DEFAULT_FILES, TrainConfig(heldout_per_mille=0))
    assert len(contexts) == 2 and not heldout
    assert {e.source for e in train} == {name.split(".json")[0] for name in DEFAULT_FILES}
    for e in train:
        assert contexts[e.context_id][e.answer_start:e.answer_start + len(e.answer_text)] == e.answer_text
    _, train_all, heldout_all = load_data(data, DEFAULT_FILES, TrainConfig(heldout_per_mille=1000))
    assert not train_all and len(heldout_all) == len(train)  # per mille 1000: every context held out
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        load_data(tmp_path / "nowhere", DEFAULT_FILES, TrainConfig())


# ---- features -------------------------------------------------------------------------------------

def test_training_windows_include_unanswerable_twins_labelled_no_answer(tmp_path):
    cfg, contexts, train, tok = _tiny_builder_inputs(tmp_path)
    plain = FeatureBuilder(tok, contexts, train, cfg).build(0)
    assert plain and all(f.start > 0 for f in plain)  # every window holds its answer
    hard = FeatureBuilder(tok, contexts, train, replace(cfg, hard_neg_rate=1.0)).build(0)
    twins = [f for f in hard if f.start == 0 and f.end == 0]
    assert twins, "questions with a name, number or comparative get an unanswerable twin"
    questions = {tok.decode(f.input_ids[1:f.question_end - 1]) for f in plain}
    for ids, q_end, _, _ in twins:
        assert tok.decode(ids[1:q_end - 1]) not in questions  # the twin asks something else
        assert ids[q_end:] and ids[-1] == tok.sep_token_id
    # --within-rate adds twins that swap in another name or number of the same context.
    within = FeatureBuilder(tok, contexts, train, replace(cfg, within_rate=1.0)).build(0)
    within_twins = [f for f in within if f.start == 0 and f.end == 0]
    assert within_twins and len(within) == len(plain) + len(within_twins)
    for ids, q_end, _, _ in within_twins:
        question = tok.decode(ids[1:q_end - 1])
        assert question not in questions
        context = tok.decode(ids[q_end:-1])
        assert all(w in context for w in question.rstrip(" ?").split()[2:] if w[0].isalnum())


def test_training_windows_hold_the_answer_tokens(tmp_path):
    cfg, contexts, train, tok = _tiny_builder_inputs(tmp_path)
    by_question = {e.question.lower(): e for e in train}
    for f in FeatureBuilder(tok, contexts, train, cfg).build(3):
        ex = by_question[tok.decode(f.input_ids[1:f.question_end - 1])]
        assert tok.decode(f.input_ids[f.start:f.end + 1]) == ex.answer_text.lower()


def test_training_windows_include_written_near_misses_and_can_focus_on_them(tmp_path):
    cfg, contexts, train, tok = _tiny_builder_inputs(tmp_path)
    near = "When was the Eiffel Tower demolished?"
    first = next(e for e in train if e.question == "When was the Eiffel Tower completed?")
    written = {(first.source, first.qid): near}
    plain = FeatureBuilder(tok, contexts, train, cfg, written).build(0)  # written_rate 0: unused
    assert all(f.start > 0 for f in plain)
    feats = FeatureBuilder(tok, contexts, train, replace(cfg, written_rate=1.0), written).build(0)
    added = [f for f in feats if f.start == 0 and f.end == 0]
    assert len(feats) == len(plain) + 1 and len(added) == 1
    ids, q_end, _, _ = added[0]
    assert tok.decode(ids[1:q_end - 1]) == near.lower()  # the written question, labelled "no answer"
    answer_window = next(f for f in plain if tok.decode(f.input_ids[1:f.question_end - 1]) == first.question.lower())
    assert ids[q_end:] == answer_window.input_ids[answer_window.question_end:]  # over the answer's own window
    focus = written_focus(train, written, replay=2, seed=0)
    assert focus[0] == first and len(focus) == 3 and len(set(focus)) == 3
    with pytest.raises(ValueError, match="near miss"):
        written_focus(train, {}, replay=1, seed=0)


def test_training_windows_can_include_other_documents_labelled_no_answer(tmp_path):
    cfg, contexts, train, tok = _tiny_builder_inputs(tmp_path)
    plain = FeatureBuilder(tok, contexts, train, cfg).build(0)
    feats = FeatureBuilder(tok, contexts, train, replace(cfg, other_neg_rate=1.0)).build(0)
    added = [f for f in feats if f.start == 0 and f.end == 0]
    assert added and len(feats) == len(plain) + len(added)
    own = {tok.decode(f.input_ids[1:f.question_end - 1]): tok.decode(f.input_ids[f.question_end:-1]) for f in plain}
    for ids, q_end, _, _ in added:
        question, text = tok.decode(ids[1:q_end - 1]), tok.decode(ids[q_end:-1])
        assert text != own[question]  # a window of another context than the question's


def _pad_by_hand(rows, pad_id: int):
    """Right padding written out: pad token, mask 1 on real tokens, token type 1 from the context on."""
    import torch

    width = max(len(f.input_ids) for f in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long)
    for r, f in enumerate(rows):
        ids[r, :len(f.input_ids)] = torch.tensor(f.input_ids)
        mask[r, :len(f.input_ids)] = 1
        types[r, f.question_end:len(f.input_ids)] = 1
    return ids, mask, types


def test_batches_padded_by_the_tokenizer_match_padding_by_hand():
    """On real SQuAD-format paragraphs (tests/data/squad_tiny.json), with every kind of window."""
    contexts, examples, _ = load_data(REPO_ROOT / "tests" / "data", ("squad_tiny.json",), TrainConfig(heldout_per_mille=0))
    tok = neural.load_tokenizer(MODEL_DIR)
    cfg = TrainConfig(max_length=96, neg_rate=1.0, hard_neg_rate=1.0)
    feats = FeatureBuilder(tok, contexts, examples, cfg).build(0)
    batches = make_batches(feats, 4, seed=0)
    assert len({len(f.input_ids) for f in feats}) > 1  # batches really need padding
    for batch in batches:
        ids, mask, types, starts, ends = collate(feats, batch, tok)
        rows = [feats[i] for i in batch]
        for got, want in zip((ids, mask, types), _pad_by_hand(rows, tok.pad_token_id)):
            assert got.dtype == want.dtype and bool((got == want).all())
        assert starts.tolist() == [f.start for f in rows] and ends.tolist() == [f.end for f in rows]
    assert sorted(i for b in batches for i in b) == list(range(len(feats)))  # every window once


# ---- schedule -------------------------------------------------------------------------------------

def _old_factor(step: int, warmup: int, planned: int, total: int, anchor: int | None) -> float:
    """The schedule as it was written out by hand: linear warm-up, linear decay to 0 at the planned
    total, and a run shortened at ``anchor`` decaying from there to 0 at ``total``."""
    def base(s):
        return s / max(1, warmup) if s < warmup else max(0.0, (planned - s) / max(1, planned - warmup))
    if anchor is None or step < anchor:
        return base(step)
    return base(anchor) * max(0.0, (total - step) / max(1, total - anchor))


@pytest.mark.parametrize("warmup,planned,total,anchor,resume_at", [
    (5, 100, 100, None, 0), (5, 100, 100, None, 37), (0, 10, 10, None, 0), (5, 100, 60, 40, 40), (5, 100, 60, 40, 50),
])
def test_learning_rate_follows_the_linear_schedule(warmup, planned, total, anchor, resume_at):
    import torch

    from qa.training.loop import SchedulePlan, make_scheduler

    lr = 2e-4
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=lr)
    scheduler = make_scheduler(optimizer, SchedulePlan(warmup, planned, total, anchor), step=resume_at)
    for step in range(resume_at, total):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(lr * _old_factor(step, warmup, planned, total, anchor),
                                                                abs=1e-12), step
        optimizer.step()
        scheduler.step()


def test_resumed_schedule_shortens_from_the_checkpoint():
    from qa.training.loop import resumed_plan

    state = {"step": 40, "total_steps": 100, "planned_total": 100, "warmup_steps": 5, "anchor_step": None}
    assert resumed_plan(state, 0.05, 100).anchor_step is None
    short = resumed_plan(state, 0.05, 60)
    assert (short.warmup_steps, short.planned_total, short.total, short.anchor_step) == (5, 100, 60, 40)
    with pytest.raises(ValueError, match="below the checkpoint's step 40"):
        resumed_plan(state, 0.05, 30)


# ---- calibration ----------------------------------------------------------------------------------

def test_balanced_best_f1_weighs_answerable_and_unanswerable_alike():
    # Answerable readings: margin 3 (F1 1.0) and margin 1 (F1 0.5); unanswerable: margins 0 and 2.
    # The best threshold lies above 2: it keeps the first answer (0.5 of the answerable
    # average) and rejects both unanswerables (1.0), (0.5 + 1.0) / 2 = 75.
    assert balanced_best_f1([3.0, 1.0], [1.0, 0.5], [0.0, 2.0]) == pytest.approx(75.0)
    # When the unanswerables outscore every answer, abstaining on everything (50) is the best.
    assert balanced_best_f1([3.0, 1.0], [1.0, 0.5], [5.0, 6.0]) == pytest.approx(50.0)
    # Ten unanswerable readings weigh no more than the one answerable reading: abstaining on
    # everything scores 50, not the 10 of 11 it would with every reading weighing the same.
    assert balanced_best_f1([7.0], [1.0], [8.0] * 10) == pytest.approx(50.0)
    assert balanced_best_f1([9.0], [1.0], [8.0] * 10) == pytest.approx(100.0)
    assert balanced_best_f1([1.0], [1.0], []) == 0.0


def test_fit_calibration_orders_margins_by_correctness():
    from qa.training.calibration import fit_calibration

    rng = random.Random(0)
    margins = [rng.gauss(3, 1) for _ in range(200)] + [rng.gauss(-1, 1) for _ in range(200)]
    labels = [1] * 200 + [0] * 200
    a, b = fit_calibration(margins, labels)
    assert a > 0  # a larger margin means a likelier right answer
    assert -b / a == pytest.approx(1.0, abs=0.4)  # probability one half halfway between the groups
    assert fit_calibration([1.0, 2.0], [1, 0]) == (0.5, 0.0)  # too little data: the fallback


# ---- a tiny real run ------------------------------------------------------------------------------

def test_tiny_training_run_changes_weights_and_exports_a_loadable_reader(tmp_path):
    from safetensors.torch import load_file

    from qa.training.cli import main

    out, work = tmp_path / "reader", tmp_path / "work"
    data = _tiny_training_set(tmp_path / "data")
    rc = main(["--limit", "12", "--max-steps", "2", "--batch-size", "4", "--out", str(out), "--work", str(work),
               "--eval-limit", "3", "--log-every", "1", "--data-dir", str(data), "--device", "cpu"])
    assert rc == 0
    assert is_available(out)
    verify_checksums(out)
    trained = load_file(str(work / "checkpoint" / "model.safetensors"))
    base = load_file(str(training_config.base_model_dir() / "model.safetensors"))
    key = "encoder.layer.0.attention.self.query.weight"
    tkey = next(k for k in trained if k.endswith(key))
    bkey = next(k for k in base if k.endswith(key))
    assert not bool((trained[tkey] - base[bkey].float()).abs().max() == 0)
    state = json.loads((work / "checkpoint" / "state.json").read_text())
    assert state["step"] == 2 and state["total"] == 2
    written = json.loads((out / "reader.json").read_text())
    assert neural.ReaderConfig.from_dict(written).max_answer_tokens == 30
    assert written["training"]["steps"] == 2 and written["training"]["command"].startswith("python -m qa.train_reader")
    assert 0 <= written["heldout"]["best_balanced_f1_twins"] <= 100
    loaded = NeuralReader.load(out, cached=False)
    assert (loaded.config.calib_a, loaded.config.calib_b) == (written["calib_a"], written["calib_b"])
    text = CONTEXTS[1][0]
    passage = Passage(chunk_id=0, source="doc.txt", start=0, end=len(text), text=text, score=0.5)
    for c in loaded.extract("What is the capital of Australia?", [passage]):
        assert 0.0 <= c.score <= 1.0 and text[c.sentence_start:c.sentence_end] == c.sentence
        if c.answer_start is not None:
            assert text[c.answer_start:c.answer_end] == c.answer


def test_average_of_readers_is_the_mean_of_their_weights(tmp_path):
    from safetensors.torch import load_file, save_file

    from qa.training.export import average_readers

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
    assert NeuralReader.load(out, cached=False).config.max_answer_tokens == written["max_answer_tokens"]
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


def test_recalibrate_and_agreement_rewrite_an_exported_reader(tmp_path):
    from qa.training.agreement import AGREE_GRID, tune_agreement
    from qa.training.calibration import recalibrate

    reader_dir = tmp_path / "reader"
    shutil.copytree(MODEL_DIR, reader_dir)
    data = _tiny_training_set(tmp_path / "data")
    contexts, _, heldout = load_data(data, DEFAULT_FILES[:2], TrainConfig(heldout_per_mille=1000))
    assert recalibrate(reader_dir, contexts, heldout, limit=12, seed=0) == 0
    verify_checksums(reader_dir)
    written = json.loads((reader_dir / "reader.json").read_text())
    record = written["calibration"]
    assert record["questions"] == 12 and record["em"] >= 50  # the shipped reader answers these easy questions
    assert 0 <= record["kept_rate_answerable"] <= 1 and "--recalibrate" in record["command"]
    assert tune_agreement(reader_dir, contexts, heldout, limit=6) == 0
    verify_checksums(reader_dir)
    written = json.loads((reader_dir / "reader.json").read_text())
    assert written["agree_margin"] in AGREE_GRID and written["agreement"]["questions"] == 6
    best = max(r["f1"] for r in written["agreement"]["grid"].values())
    assert written["agreement"]["grid"][str(written["agree_margin"])]["f1"] == best
    assert NeuralReader.load(reader_dir, cached=False).config.agree_margin == written["agree_margin"]


# ---- command line ---------------------------------------------------------------------------------

@pytest.mark.parametrize("module", ["qa.train_reader", "qa.training"])
def test_help_lists_every_mode(module):
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    for flag in ("--eval-only", "--tune-agreement", "--recalibrate", "--average", "--resume", "--written-replay"):
        assert flag in done.stdout


def test_cli_options_become_the_run_settings():
    from qa.training.cli import parse_args, run_options, train_config

    args = parse_args(["--seed", "14", "--lr", "1e-4", "--within-rate", "0.5", "--limit", "8", "--no-agreement",
                       "--out", "x", "--near-misses", "a.jsonl", "b.jsonl", "--distill", "0.5",
                       "--distill-confidence", "2"])
    cfg, opts = train_config(args), run_options(args, "cmd")
    assert (cfg.seed, cfg.lr, cfg.within_rate, cfg.batch_size) == (14, 1e-4, 0.5, TrainConfig().batch_size)
    assert (cfg.distill, cfg.distill_confidence) == (0.5, 2.0)
    assert TrainConfig().distill == TrainConfig().distill_confidence == 0
    assert opts.limit == 8 and not opts.agreement and opts.out == Path("x")
    assert opts.near_misses == (Path("a.jsonl"), Path("b.jsonl"))
    with pytest.raises(SystemExit):
        from qa.training.cli import main

        main(["--average-weights", "1", "2"])  # weights without readers to average


def test_span_distillation_holds_where_the_answer_lies_not_whether_there_is_one():
    import torch

    from qa.training.loop import span_distillation

    torch.manual_seed(0)
    teacher_start, teacher_end = torch.randn(3, 10), torch.randn(3, 10)
    context = torch.zeros(3, 10, dtype=torch.bool)
    context[:, 4:9] = True  # [CLS] and the question (0-3) and the padding (9) are not context
    assert float(span_distillation(teacher_start, teacher_end, teacher_start, teacher_end, context)) == pytest.approx(0, abs=1e-6)

    # The no-answer logit, the question and the padding are free; so is a shift of every context logit.
    free_start, free_end = teacher_start.clone(), teacher_end.clone()
    free_start[:, 0] += 5.0
    free_end[:, :4] -= 3.0
    free_start[:, 9] += 7.0
    free_end[:, 4:9] += 2.0
    assert float(span_distillation(free_start, free_end, teacher_start, teacher_end, context)) == pytest.approx(0, abs=1e-5)

    moved = teacher_start.clone().requires_grad_(True)
    with torch.no_grad():
        moved[:, 5] += 4.0  # another start in the context
    loss = span_distillation(moved, teacher_end, teacher_start, teacher_end, context)
    assert float(loss) > 0.1
    loss.backward()
    assert torch.isfinite(moved.grad).all()
    assert float(moved.grad[:, 5].sum()) > 0  # descending the loss lowers the moved start again
    assert float(moved.grad[:, :4].abs().sum()) == 0 and float(moved.grad[:, 9].abs().sum()) == 0

    # With [CLS] among the positions (--distill-confidence) a surer or less sure reader is held
    # too, and only on the windows given positions (those labelled with an answer).
    with_cls = context.clone()
    with_cls[:, 0] = True
    with_cls[2] = False
    assert float(span_distillation(free_start, teacher_end, teacher_start, teacher_end, with_cls)) > 0.1
    doubting_the_last = teacher_start.clone()
    doubting_the_last[2, 0] += 5.0
    assert float(span_distillation(doubting_the_last, teacher_end, teacher_start, teacher_end, with_cls)) == pytest.approx(0, abs=1e-6)


def test_distillation_needs_the_reader_a_run_starts_from(tmp_path):
    from qa.training.config import RunOptions
    from qa.training.recipe import train

    data = _tiny_training_set(tmp_path / "data")
    with pytest.raises(ValueError, match="--init"):
        train(TrainConfig(distill=1.0), RunOptions(out=tmp_path / "r", work=tmp_path / "w", data_dir=data, limit=4,
                                                   device="cpu"))
    with pytest.raises(ValueError, match="--init"):
        train(TrainConfig(distill_confidence=1.0), RunOptions(out=tmp_path / "r", work=tmp_path / "w", data_dir=data,
                                                              limit=4, device="cpu"))


def test_a_fine_tuning_can_hold_the_starting_readers_spans_and_confidence(tmp_path):
    from qa.training.cli import main

    out, work = tmp_path / "reader", tmp_path / "work"
    data = _tiny_training_set(tmp_path / "data")
    rc = main(["--init", str(MODEL_DIR), "--distill", "1.0", "--distill-confidence", "0.5", "--limit", "12",
               "--max-steps", "2", "--batch-size", "4", "--lr", "5e-5", "--out", str(out), "--work", str(work),
               "--eval-limit", "3", "--data-dir", str(data), "--device", "cpu", "--no-agreement"])
    assert rc == 0
    written = json.loads((out / "reader.json").read_text())
    assert (written["training"]["distill"], written["training"]["distill_confidence"]) == (1.0, 0.5)
    assert written["training"]["init"] is not None  # how the starting reader was made is kept
    assert NeuralReader.load(out, cached=False).extract("What is the capital of Australia?", []) == []
