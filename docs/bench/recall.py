"""Retrieval alone: recall@5 of the engine's hybrid retrieval on a SQuAD open sample, per index.

    .venv/bin/python docs/bench/recall.py $DATA/squad/dev-v1.1.json eval-output/squad11 milvus:eval-output/squad11.db

Samples questions as ``qa.eval`` does (``--limit``, ``--seed``: the same questions as its
runs with those options), asks each index for the passages ``ask`` would read
(``Engine.retrieve``) and counts a hit when one of the top 5 overlaps the question's gold
paragraph. No reader runs, so a store can be compared on retrieval in minutes. Each index
must hold the test set's paragraphs under the names ``qa.eval`` gives them (its index cache,
or a copy of it made with ``python -m index copy``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", help="a SQuAD-format test set")
    p.add_argument("indexes", nargs="+", help="index locations: folders or Milvus addresses")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=5)
    args = p.parse_args(argv)

    from index import Index
    from qa import Engine
    from qa.eval.run import EvalConfig, gold_rank, prepare

    questions = prepare(args.dataset, EvalConfig(limit=args.limit, seed=args.seed)).questions
    for location in args.indexes:
        engine = Engine(Index.open(location))
        began, hits = time.perf_counter(), 0
        for q in questions:
            rank = gold_rank(engine.retrieve(q.question, top_k=args.k), q.source, (q.context_start, q.context_end))
            hits += rank is not None
        print(f"{location}: {len(questions)} questions, recall@{args.k} {100 * hits / len(questions):.2f} "
              f"({time.perf_counter() - began:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
