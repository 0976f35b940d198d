"""Latency of ``ask()`` on a warm engine: the whole call and the reader's share of it.

Times every question of a test set (default ``tests/data/seed_questions.jsonl`` against the
default index of ``seeds/``, built on first use), once per setting per repetition, each
question asked under every setting in turn so that the settings see the same machine load, and prints a Markdown table with p50/p90
of the whole ``ask()`` and of the reader (the time inside ``extract``), the windows the reader
ran per question, the reader's matrix-product work per question (``window_flops``), its mean
time per window and the rate of its matrix products, how often it stopped after the best-retrieved
passage, and each p50 as a ratio of the first setting's; then, for the fp32 reader, the rate
of a large float32 matrix product on the same cores and what the median question's reader work
needs at that rate (the operation count is the same at int8, but not comparable with it):

    .venv/bin/python docs/bench/latency.py --early-exit 1.0 0.7 --repeat 5

A setting is an ``--early-exit`` value (``QASettings.early_exit``; 1.0 reads every passage)
and a ``--batch-size`` value (windows per forward pass of the reader; ``default`` is the
reader's own, one window per pass on ONNX Runtime). Any test set ``qa.eval`` reads works with
``--questions``; its documents are indexed as ``qa.eval`` does it (the same index cache, so an
index built by an open ``qa.eval`` run is reused), or ``--index`` names an index to ask:

    .venv/bin/python docs/bench/latency.py --questions $DATA/squad/dev-v1.1.json --limit 200 --seed 0

Run it with nothing else busy on the machine: the figures are wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SEED_QUESTIONS = ROOT / "tests" / "data" / "seed_questions.jsonl"


def batch_size(value: str) -> int | None:
    """``--batch-size`` values: a positive integer, or ``default`` (None: the reader's own)."""
    if value == "default":
        return None
    if not value.isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"batch size must be a positive integer or 'default', got {value!r}")
    return int(value)


def window_flops(tokens: int, config: dict) -> float:
    """Floating-point operations of the reader's matrix products over one window of ``tokens``
    tokens (a multiply-add counts 2): per layer the four attention projections, the two
    feed-forward ones and the attention scores and mix, then the span head."""
    h, f, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    per_layer = 2 * tokens * (4 * h * h + 2 * h * f) + 2 * 2 * tokens * tokens * h
    return layers * per_layer + 2 * tokens * h * 2


def matmul_rate(size: int = 2048, repeat: int = 5) -> float:
    """GFLOP/s of a large float32 matrix product on this machine (numpy's BLAS on every core
    it uses): about as fast as these cores multiply fp32 matrices."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best / 1e9


# Where a warm ask spends its time: (module, function, label), timed where the engine and the
# reader look them up; a label starting with two spaces is part of the stage above it.
STAGES = (
    ("qa.engine", "retrieve", "retrieval (dense, BM25, fusion, catalog)"),
    ("qa.engine", "read_passages", "reader (all of it)"),
    ("qa.readers.neural.decoding", "encode_windows", "  tokenising the windows"),
    ("qa.readers.neural.reader", "best_of_windows", "  best span of each window"),
    ("qa.readers.neural.reader", "scored_typed_alternative", "  typed span of the rule-based finder"),
    ("qa.readers.neural.reader", "correct_span", "  answer boundaries"),
    ("qa.readers.neural.reader", "sentence_around", "  the answer's sentence"),
    ("qa.engine", "fuse", "fusing reader and retrieval scores"),
    ("qa.engine", "decision_features", "decision features"),
    ("qa.engine", "decide", "answer and citations"),
)


def timed(owner, name: str, label: str, spent: dict[str, float]) -> None:
    """Replace ``owner.name`` with a function that adds its wall time to ``spent[label]``."""
    inner = getattr(owner, name)

    def run(*a, **k):
        t0 = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - t0

    setattr(owner, name, run)


def open_index(questions: Path, index: str | None, eval_set):
    """The index to ask: ``index`` when given, the default seed index for the seed questions,
    else ``qa.eval``'s cached open-mode index of the set's documents."""
    from index import Index
    from qa.engine import open_default_index
    from qa.eval.run import default_index_cache, sync_index

    if index is not None:
        return Index.open(index)
    if questions.resolve() == SEED_QUESTIONS.resolve():
        return open_default_index()
    cache = default_index_cache(eval_set.documents, eval_set.name, out_root=ROOT / "eval-output")
    return sync_index(cache, eval_set.documents, eval_set.kinds, progress=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--early-exit", type=float, nargs="+", default=[1.0, 0.7])
    p.add_argument("--batch-size", type=batch_size, nargs="+", default=[None],
                   help="reader windows per forward pass, one value per setting ('default': the reader's own)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--questions", type=Path, default=SEED_QUESTIONS,
                   help="a test set qa.eval reads (.jsonl or SQuAD .json)")
    p.add_argument("--limit", type=int, default=None, help="a sample of this many questions (as qa.eval --limit)")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed (as qa.eval --seed)")
    p.add_argument("--index", default=None, help="the index to ask (default: see the module docstring)")
    p.add_argument("--reader-precision", default="auto")
    p.add_argument("--reader-dir", default=None, help="a neural reader folder other than the shipped one")
    p.add_argument("--split", action="store_true",
                   help="then ask every question once more at the last setting, timing each stage of ask()")
    args = p.parse_args(argv)

    import numpy as np

    from index.embedding import usable_cpus
    from qa.engine import Engine
    from qa.eval.datasets import load_dataset, sample
    from qa.eval.metrics import percentile  # as qa.eval's latency figures

    eval_set = sample(load_dataset(args.questions), args.limit, args.seed)
    questions = [q.question for q in eval_set.questions]
    index = open_index(args.questions, args.index, eval_set)
    engine = Engine(index)
    reader = engine.reader("neural", args.reader_precision, args.reader_dir)
    spent: list[float] = []  # reader seconds of the current ask, one entry per extract call
    windows: list[int] = []  # windows run by the reader in the current ask
    flops: list[float] = []  # the reader's matrix-product operations in the current ask
    model_seconds: list[float] = []  # the reader's ONNX Runtime runs
    model_config = json.loads((reader.path / "config.json").read_text())
    extract = reader.extract

    def timed_extract(question, passages, **options):
        t0 = time.perf_counter()
        try:
            return extract(question, passages, **options)
        finally:
            spent.append(time.perf_counter() - t0)

    def counted_run(session, input_ids, attention_mask, token_type_ids):
        """One ONNX Runtime run of the reader, counting its windows and their work."""
        windows.append(len(input_ids))
        flops.extend(window_flops(int(n), model_config) for n in np.asarray(attention_mask).sum(1))
        return run(session, input_ids, attention_mask, token_type_ids)

    def timed_map(batches):
        """The reader's model calls of one read, timed as a whole (windows may run side by side)."""
        t0 = time.perf_counter()
        try:
            return model_map(batches)
        finally:
            model_seconds.append(time.perf_counter() - t0)

    reader.extract = timed_extract  # the engine calls reader.extract on this very object
    if reader.backend == "onnx":
        run, model_map = reader.model._run, reader.model.map
        reader.model._run, reader.model.map = counted_run, timed_map  # on this very object
    settings = {"reader": "neural", "reader_precision": args.reader_precision, "reader_dir": args.reader_dir}
    index.embed(["warm up"])
    engine.ask(questions[0], **settings)  # warm up
    keys = [(e, b) for e in args.early_exit for b in args.batch_size]
    rows = {k: {"ask": [], "reader": [], "windows": [], "flops": [], "exits": 0} for k in keys}
    for _ in range(args.repeat):
        for q in questions:
            for e, b in keys:
                reader.batch_size = b
                spent.clear()
                windows.clear()
                flops.clear()
                t0 = time.perf_counter()
                engine.ask(q, **settings, early_exit=e)
                rows[e, b]["ask"].append(1000 * (time.perf_counter() - t0))
                rows[e, b]["reader"].append(1000 * sum(spent))
                rows[e, b]["windows"].append(sum(windows))
                rows[e, b]["flops"].append(sum(flops))
                rows[e, b]["exits"] += len(spent) == 1 and e < 1.0
    n = len(questions) * args.repeat
    base = rows[keys[0]]
    print(f"{len(questions)} questions x {args.repeat}, {index.count()} chunks, "
          f"reader {reader.backend} {reader.precision}, {usable_cpus()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print("| early_exit | batch | ask() p50 / p90 | reader p50 / p90 | windows per question (mean) "
          "| reader GFLOP per question p50 | reader ms per window | reader GFLOP/s | stopped after 1 passage "
          "| ask p50 ratio | reader p50 ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (e, b), r in rows.items():
        counted = work = per_window = rate = "-"
        if reader.backend == "onnx":
            counted = f"{sum(r['windows']) / len(r['windows']):.2f}"
            work = f"{percentile(r['flops'], 50) / 1e9:.1f}"
            per_window = f"{sum(r['reader']) / sum(r['windows']):.1f}"
            rate = f"{sum(r['flops']) / sum(r['reader']) / 1e6:.0f}"
        print(f"| {e:g} | {b or 'default'} "
              f"| {percentile(r['ask'], 50):.0f} / {percentile(r['ask'], 90):.0f} ms "
              f"| {percentile(r['reader'], 50):.0f} / {percentile(r['reader'], 90):.0f} ms "
              f"| {counted} | {work} | {per_window} | {rate} | {100 * r['exits'] / n:.0f}% "
              f"| {percentile(r['ask'], 50) / percentile(base['ask'], 50):.2f} "
              f"| {percentile(r['reader'], 50) / percentile(base['reader'], 50):.2f} |")
    if reader.backend == "onnx" and reader.precision == "fp32":
        peak = matmul_rate()
        work = percentile(rows[keys[-1]]["flops"], 50)
        print(f"a 2048x2048 float32 matrix product runs at {peak:.0f} GFLOP/s here: the median question's "
              f"{work / 1e9:.1f} GFLOP (last setting) need {work / peak / 1e6:.0f} ms at that rate")
    if args.split:
        split(engine, questions, {**settings, "early_exit": keys[-1][0]}, model_seconds)
    return 0


def split(engine, questions: list[str], settings: dict, model_seconds: list[float]) -> None:
    """Ask every question once, timing each of ``STAGES``, the query embedding and the reader's
    model runs, and print the mean milliseconds per question of each."""
    import importlib

    spent: dict[str, float] = {}
    for module, name, label in STAGES:
        timed(importlib.import_module(module), name, label, spent)
    timed(engine.index, "embed", "query embedding", spent)
    model_seconds.clear()
    total = 0.0
    for q in questions:
        t0 = time.perf_counter()
        answer = engine.ask(q, **settings)
        total += time.perf_counter() - t0
        t0 = time.perf_counter()
        answer.to_dict()
        spent["to_dict (after ask)"] = spent.get("to_dict (after ask)", 0.0) + time.perf_counter() - t0
    spent["  the model (ONNX Runtime runs)"] = sum(model_seconds)
    top = sum(v for k, v in spent.items() if not k.startswith(" ") and k != "to_dict (after ask)")
    spent["everything else in ask()"] = total - top
    n = len(questions)
    print(f"\n| stage of ask() (early_exit {settings['early_exit']:g}) | ms per question (mean) |\n|---|---|")
    print(f"| **ask()** | **{1000 * total / n:.1f}** |")
    order = ["query embedding"] + [label for _, _, label in STAGES[:2]] + ["  the model (ONNX Runtime runs)"] + \
        [label for _, _, label in STAGES[2:]] + ["everything else in ask()", "to_dict (after ask)"]
    for label in order:
        shown = label.replace("  ", "&nbsp;&nbsp;", 1) if label.startswith("  ") else label
        print(f"| {shown} | {1000 * spent.get(label, 0.0) / n:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
