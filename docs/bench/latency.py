"""Latency of ``ask()`` on the seed index: the whole call and the reader's share of it.

Times every question of ``tests/data/seed_questions.jsonl`` against the default index of
``seeds/`` (built on first use), once per setting per repetition, the settings interleaved so
that they see the same machine load, and prints a Markdown table with p50/p90 of the whole
``ask()`` and of the reader (the time inside ``extract``), how often the reader stopped after
the best-retrieved passage, and each p50 as a ratio of the first setting's:

    .venv/bin/python docs/bench/latency.py --early-exit 1.0 0.7 --repeat 5

Each ``--early-exit`` value is a ``QASettings.early_exit`` (1.0 reads every passage).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--early-exit", type=float, nargs="+", default=[1.0, 0.7])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--questions", type=Path, default=ROOT / "tests" / "data" / "seed_questions.jsonl")
    p.add_argument("--reader-precision", default="auto")
    p.add_argument("--reader-dir", default=None, help="a neural reader folder other than the shipped one")
    args = p.parse_args(argv)

    import torch

    from qa.engine import Engine, open_default_index
    from qa.eval.metrics import percentile  # as qa.eval's latency figures

    torch.set_num_threads(2)
    questions = [json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line.strip()]
    engine = Engine(open_default_index())
    reader = engine.reader("neural", args.reader_precision, args.reader_dir)
    spent: list[float] = []  # reader seconds of the current ask, one entry per extract call
    extract = reader.extract

    def timed_extract(question, passages, **options):
        t0 = time.perf_counter()
        try:
            return extract(question, passages, **options)
        finally:
            spent.append(time.perf_counter() - t0)

    reader.extract = timed_extract  # the engine calls reader.extract on this very object
    settings = {"reader": "neural", "reader_precision": args.reader_precision, "reader_dir": args.reader_dir}
    engine.ask(questions[0], **settings)  # warm up
    rows = {e: {"ask": [], "reader": [], "exits": 0} for e in args.early_exit}
    for _ in range(args.repeat):
        for e in args.early_exit:
            for q in questions:
                spent.clear()
                t0 = time.perf_counter()
                engine.ask(q, **settings, early_exit=e)
                rows[e]["ask"].append(1000 * (time.perf_counter() - t0))
                rows[e]["reader"].append(1000 * sum(spent))
                rows[e]["exits"] += len(spent) == 1 and e < 1.0
    n = len(questions) * args.repeat
    base = rows[args.early_exit[0]]
    print(f"{len(questions)} questions x {args.repeat}, reader {reader.precision}, torch threads {torch.get_num_threads()}")
    print("| early_exit | ask() p50 / p90 | reader p50 / p90 | stopped after 1 passage | ask p50 ratio | reader p50 ratio |")
    print("|---|---|---|---|---|---|")
    for e, r in rows.items():
        print(f"| {e:g} | {percentile(r['ask'], 50):.0f} / {percentile(r['ask'], 90):.0f} ms "
              f"| {percentile(r['reader'], 50):.0f} / {percentile(r['reader'], 90):.0f} ms "
              f"| {100 * r['exits'] / n:.0f}% "
              f"| {percentile(r['ask'], 50) / percentile(base['ask'], 50):.2f} "
              f"| {percentile(r['reader'], 50) / percentile(base['reader'], 50):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
