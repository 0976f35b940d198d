"""One training run end to end: data -> features -> training loop -> held-out scores and
calibration -> export -> ``agree_margin``. Each step is its own module; this one strings them."""

from __future__ import annotations

import collections
import json
import random
import time
from dataclasses import asdict
from pathlib import Path

from qa.eval.unanswerable import load_near_misses
from qa.training.agreement import tune_agreement
from qa.training.calibration import calibrate, heldout_record
from qa.training.config import BASE_MODEL_NAME, DEFAULT_FILES, RunOptions, TrainConfig, base_model_dir
from qa.training.data import Example, load_data, written_focus
from qa.training.export import export
from qa.training.features import FeatureBuilder
from qa.training.loop import LoopState, SchedulePlan, make_optimizer, resume, train_loop


def pick_device(opts: RunOptions):
    """``(device, use_bf16)``: a CUDA GPU when asked for or (``auto``) present; bf16 autocast on a
    GPU, and on a CPU with ``cpu_bf16`` where it multiplies bf16 natively."""
    import torch

    from qa.readers.neural import cpu_has_bf16

    cuda = opts.device == "cuda" or (opts.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    return device, cuda or (opts.cpu_bf16 and cpu_has_bf16())


def training_questions(train: list[Example], heldout: list[Example], cfg: TrainConfig,
                       opts: RunOptions) -> tuple[list[Example], list[Example], dict]:
    """The questions this run trains on and scores, and the written near misses it uses:
    ``opts.limit`` questions for a smoke run, or those with a near miss (``written_replay``)."""
    if opts.limit:
        train = random.Random(cfg.seed).sample(train, min(opts.limit, len(train)))
        heldout = heldout[: max(4, opts.limit // 4)]
    written = (load_near_misses(list(opts.near_misses), second_pass_only=opts.second_pass_only)
               if cfg.written_rate > 0 or opts.written_replay is not None else {})
    if opts.written_replay is not None:
        train = written_focus(train, written, opts.written_replay, cfg.seed)
    return train, heldout, written


def load_model(base: Path, init: Path | None, device):
    """The QA model in fp32 on ``device``: the base encoder with a fresh span head, or ``init``'s weights."""
    from safetensors.torch import load_file
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(str(base), local_files_only=True).float()
    if init:
        model.load_state_dict({k: v.float() for k, v in load_file(str(Path(init) / "model.safetensors")).items()})
    return model.to(device)


def train(cfg: TrainConfig, opts: RunOptions) -> int:
    """Train a reader with ``cfg``, score and calibrate it on the held-out slice, export it to
    ``opts.out`` and (``opts.agreement``, not for smoke runs) choose its ``agree_margin``.

    Returns:
        Exit code.
    """
    import numpy as np
    import torch

    from qa.readers.neural import ReaderConfig, load_tokenizer

    if cfg.distills and not opts.init:
        raise ValueError("--distill and --distill-confidence keep what the reader a run starts from does: give that "
                         "reader with --init")

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    opts.work.mkdir(parents=True, exist_ok=True)
    base = opts.base or base_model_dir()
    device, use_bf16 = pick_device(opts)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(cfg.seed)
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}"
          f"{' (bf16 autocast)' if use_bf16 else ''}", flush=True)
    tokenizer = load_tokenizer(base)

    t_load = time.perf_counter()
    contexts, train_all, heldout_all = load_data(opts.data_dir, DEFAULT_FILES, cfg)
    train_set, heldout, written = training_questions(train_all, heldout_all, cfg, opts)
    builder = FeatureBuilder(tokenizer, contexts, train_set, cfg, written)
    by_source = dict(collections.Counter(e.source for e in train_set))
    print(f"data: {len(train_set)} train questions {by_source}, {len(heldout)} held-out, {len(contexts)} contexts "
          f"({time.perf_counter() - t_load:.1f}s)", flush=True)

    first_epoch = builder.build(0)
    steps_per_epoch = -(-len(first_epoch) // cfg.batch_size)
    total_steps = max(1, int(round(steps_per_epoch * cfg.epochs)))
    if opts.max_steps:
        total_steps = min(total_steps, opts.max_steps) if cfg.epochs else opts.max_steps
    print(f"features/epoch {len(first_epoch)} ({sum(1 for f in first_epoch if f.start == 0)} no-answer), "
          f"steps/epoch {steps_per_epoch}, total steps {total_steps}", flush=True)

    model = load_model(base, opts.init, device)
    teacher = load_model(base, opts.init, device).eval().requires_grad_(False) if cfg.distills else None
    optimizer = make_optimizer(model, cfg)
    start = (resume(opts.work, model, optimizer, device, cfg, total_steps) if opts.resume else None) or LoopState(
        0, 0.0, SchedulePlan(int(cfg.warmup * total_steps), total_steps, total_steps))
    done = train_loop(model, optimizer, builder, first_epoch, tokenizer, cfg, opts, device, use_bf16, start,
                      teacher)
    if done.step < total_steps:
        print(f"stopped at step {done.step} (--stop-at); continue with --resume --work {opts.work}", flush=True)
        return 0
    print(f"training done: {done.step} steps, {done.train_seconds / 60:.1f} min", flush=True)

    model.eval()
    rcfg, res, neg_res, kept = calibrate(model, tokenizer, contexts, heldout, opts.eval_limit, cfg.seed, ReaderConfig())
    reader_json = {
        **asdict(rcfg),
        "base_model": BASE_MODEL_NAME,
        "training": {
            **asdict(cfg), "steps": done.step, "schedule": asdict(done.plan),
            "train_minutes": round(done.train_seconds / 60, 1),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "train_questions": len(train_set), "train_features_epoch0": len(first_epoch),
            "files": list(DEFAULT_FILES), "limit": opts.limit, "command": opts.command,
        },
        "heldout": heldout_record(res, neg_res, kept, rcfg.threshold),
    }
    if opts.init and (Path(opts.init) / "reader.json").is_file():
        # Fine-tuned from an exported reader: keep how that one was made.
        reader_json["training"]["init"] = json.loads((Path(opts.init) / "reader.json").read_text()).get("training")
    export(opts.out, model, base, reader_json)
    print(f"exported to {opts.out}", flush=True)
    if opts.limit or not opts.agreement:
        return 0  # smoke runs (and --no-agreement) stop here
    # Choose agree_margin on the whole held-out slice (reads the exported fp16 weights on the CPU).
    return tune_agreement(opts.out, contexts, heldout, 0)
