"""Present an evaluation: a terminal table, report.json, a CSV of every question, PNG plots."""

from __future__ import annotations

import csv
import json
import platform
from dataclasses import asdict
from pathlib import Path

from qa.eval.beir import BeirReport
from qa.eval.run import EvalReport

# (figure key, label) in table order; keys missing from a report are skipped.
QA_ROWS = (
    ("questions", "questions"),
    ("answerable", "  answerable"),
    ("unanswerable", "  unanswerable"),
    ("threshold", "abstention threshold (min_score)"),
    ("exact_match", "EM"),
    ("f1", "F1"),
    ("has_ans_exact_match", "HasAns EM"),
    ("has_ans_f1", "HasAns F1"),
    ("no_ans_accuracy", "NoAns accuracy"),
    ("answered", "answered %"),
    ("always_answer_exact_match", "EM, never abstaining"),
    ("always_answer_f1", "F1, never abstaining"),
    ("best_exact_match", "best EM"),
    ("best_exact_match_threshold", "  at threshold"),
    ("best_f1", "best F1"),
    ("best_f1_threshold", "  at threshold"),
    ("engine_default_threshold", "reader's own threshold"),
    ("engine_default_exact_match", "  EM at it"),
    ("engine_default_f1", "  F1 at it"),
    ("sentence_accuracy", "sentence accuracy"),
    ("citation_accuracy", "citation accuracy"),
    ("recall@1", "recall@1 (passages read)"),
    ("recall@3", "recall@3 (passages read)"),
    ("recall@5", "recall@5 (passages read)"),
    ("recall@10", "recall@10 (passages read)"),
    ("recall@20", "recall@20 (passages read)"),
    ("mrr@1", "MRR@1"),
    ("mrr@3", "MRR@3"),
    ("mrr@5", "MRR@5"),
    ("mrr@10", "MRR@10"),
    ("mrr@20", "MRR@20"),
    ("latency_p50_ms", "latency p50 (ms)"),
    ("latency_p95_ms", "latency p95 (ms)"),
    ("questions_per_second", "questions / second"),
    ("setup_seconds", "setup (index/reader load, s)"),
)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def format_table(report: EvalReport | BeirReport) -> str:
    """The report's figures as a plain-text table."""
    if isinstance(report, BeirReport):
        methods = ("dense", "bm25", "hybrid")
        cols = ("ndcg@10", "recall@10", "recall@100", "latency_p50_ms", "latency_p95_ms")
        lines = [f"{report.name}: {report.figures['queries']} queries, {report.figures['documents']} documents "
                 f"({report.figures['chunks']} chunks)", f"{'method':<8}" + "".join(f"{c:>16}" for c in cols)]
        for m in methods:
            lines.append(f"{m:<8}" + "".join(f"{_fmt(report.figures[m][c]):>16}" for c in cols))
        return "\n".join(lines)
    width = max(len(label) for _, label in QA_ROWS)
    lines = [f"{report.name} ({report.mode} mode, reader {report.reader or '?'})"]
    lines += [f"{label:<{width}}  {_fmt(report.figures[key])}" for key, label in QA_ROWS
              if key in report.figures and report.figures[key] is not None]
    for s in report.figures.get("skipped", []):
        lines.append(f"skipped {s['id']}: {s['reason']}")
    return "\n".join(lines)


def machine() -> dict:
    """What the run ran on, for the report."""
    import os

    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}


def write_report(report: EvalReport | BeirReport, out_dir: str | Path, plots: bool = True) -> list[Path]:
    """Write report.json, questions.csv (queries.csv for BEIR) and the plots under ``out_dir``.

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    data = report.to_dict()
    data["machine"] = machine()
    (out / "report.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(out / "report.json")
    if isinstance(report, BeirReport):
        written.append(_write_rows(out / "queries.csv", list(report.per_query)))
        if plots:
            written += _beir_plots(report, out)
        return written
    rows = []
    for r in report.results:
        d = asdict(r)
        d["answers"] = " | ".join(r.answers)
        rows.append(d)
    written.append(_write_rows(out / "questions.csv", rows))
    if plots:
        written += _qa_plots(report, out)
    return written


def _write_rows(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _qa_plots(report: EvalReport, out: Path) -> list[Path]:
    plt = _pyplot()
    paths = []
    t = [row["threshold"] for row in report.curve]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(t, [row["f1"] for row in report.curve], label="F1 (all)")
    ax.plot(t, [row["exact_match"] for row in report.curve], label="EM (all)")
    if report.figures.get("unanswerable"):
        ax.plot(t, [row["has_ans_f1"] for row in report.curve], label="HasAns F1", linestyle="--")
        ax.plot(t, [row["no_ans_accuracy"] for row in report.curve], label="NoAns accuracy", linestyle="--")
    ax.plot(t, [row["answered"] for row in report.curve], label="answered %", color="grey", linestyle=":")
    ax.axvline(report.figures["threshold"], color="black", linewidth=0.8, label=f"min_score {report.figures['threshold']:g}")
    ax.set_xlabel("abstention threshold (answer when score >= threshold)")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title(f"{report.name}: F1 vs abstention threshold", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "f1_vs_threshold.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    lat = [r.latency_ms for r in report.results]
    ax.hist(lat, bins=40, color="tab:blue")
    ax.axvline(report.figures["latency_p50_ms"], color="black", label=f"p50 {report.figures['latency_p50_ms']} ms")
    ax.axvline(report.figures["latency_p95_ms"], color="red", label=f"p95 {report.figures['latency_p95_ms']} ms")
    ax.set_xlabel("latency per question (ms)")
    ax.set_ylabel("questions")
    ax.set_title(f"{report.name}: latency", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "latency.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def _beir_plots(report: BeirReport, out: Path) -> list[Path]:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    methods = ("dense", "bm25", "hybrid")
    ax.bar(methods, [report.figures[m]["ndcg@10"] or 0 for m in methods], color=["tab:blue", "tab:orange", "tab:green"])
    ax.set_ylabel("nDCG@10")
    ax.set_ylim(0, 1)
    ax.set_title(f"{report.name}: nDCG@10")
    fig.tight_layout()
    path = out / "ndcg.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
