"""Measure the engine against test sets, the way published QA results are measured.

QA sets (SQuAD v1.1/2.0 JSON, JSONL) in two modes: "open" indexes every context and
answers from retrieval, as a user would; "closed" gives the reader only the gold context.
BEIR sets measure retrieval alone (dense, BM25 and hybrid side by side).

Example:
    >>> from qa.eval import evaluate, write_report, format_table
    >>> report = evaluate("tests/data/seed_questions.jsonl", mode="closed")   # doctest: +SKIP
    >>> print(format_table(report))                                            # doctest: +SKIP
    >>> write_report(report, "eval-output/seed-closed")                        # doctest: +SKIP

Command line: ``python -m qa.eval --help``.
"""

from __future__ import annotations

from qa.eval.datasets import (
    BeirSet, DatasetError, EvalQuestion, EvalSet, add_unanswerable, load_beir, load_dataset, load_jsonl, load_squad, sample,
)
from qa.eval.metrics import exact_match, f1_score, normalize_answer
from qa.eval.report import format_table, write_report
from qa.eval.run import BeirReport, EvalConfig, EvalReport, QuestionResult, evaluate, evaluate_beir

__all__ = [
    "BeirReport", "BeirSet", "DatasetError", "EvalConfig", "EvalQuestion", "EvalReport", "EvalSet", "QuestionResult",
    "add_unanswerable", "evaluate", "evaluate_beir", "exact_match", "f1_score", "format_table", "load_beir",
    "load_dataset", "load_jsonl", "load_squad", "normalize_answer", "sample", "write_report",
]
