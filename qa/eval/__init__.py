"""Measure the engine against test sets, the way published QA results are measured.

QA sets (SQuAD v1.1/2.0 JSON, JSONL) in two modes: "open" indexes every context and
answers from retrieval, as a user would; "closed" gives the reader only the gold context.
BEIR sets measure retrieval alone (dense, BM25 and hybrid side by side).

Example:
    >>> from qa.eval.run import evaluate
    >>> from qa.eval.report import format_table, write_report
    >>> report = evaluate("tests/data/seed_questions.jsonl", mode="closed")   # doctest: +SKIP
    >>> print(format_table(report))                                            # doctest: +SKIP
    >>> write_report(report, "eval-output/seed-closed")                        # doctest: +SKIP

Command line: ``python -m qa.eval --help``.

The package itself imports only the light parts (test sets, metrics, the threshold
search), so the reader's training uses the same metrics without loading the index;
``qa.eval.run`` (the engine over a test set) and ``qa.eval.report`` are imported by name.
"""

from __future__ import annotations

from qa.eval.datasets import (
    BeirSet, DatasetError, EvalQuestion, EvalSet, add_unanswerable, is_heldout, load_beir, load_dataset, load_jsonl,
    load_squad, sample,
)
from qa.eval.metrics import best_threshold, exact_match, f1_score, normalize_answer

__all__ = [
    "BeirSet", "DatasetError", "EvalQuestion", "EvalSet", "add_unanswerable", "best_threshold", "exact_match", "f1_score",
    "is_heldout", "load_beir", "load_dataset", "load_jsonl", "load_squad", "normalize_answer", "sample",
]
