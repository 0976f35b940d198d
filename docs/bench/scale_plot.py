"""How the folder store's costs grow with its size: a Markdown table and a PNG from ``scale.py`` runs.

    python docs/bench/scale_plot.py bench-output/scale-10k.json bench-output/scale-100k.json \
        bench-output/scale-1m.json --png docs/scale.png

Each JSON is what ``docs/bench/scale.py --out`` wrote. The table is printed in the layout of
``docs/BENCHMARKS.md``; the PNG has one panel per cost (updates, query latency, opening,
memory) against the number of chunks, both axes logarithmic.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = ("chunks", "add one file", "remove one file", "dense p50 / p95", "dense recall@10 vs exact",
           "BM25 p50 / p95", "open the store", "reader's peak memory", "on disk")


def row(r: dict) -> list[str]:
    return [f"{r['chunks']:,}", f"{r['add_file_s']['median']:.3f} s", f"{r['remove_file_s']['median']:.3f} s",
            f"{r['dense_ms']['p50']:.1f} / {r['dense_ms']['p95']:.1f} ms", f"{r['recall_at_10']:.3f}",
            f"{r['bm25_ms']['p50']:.1f} / {r['bm25_ms']['p95']:.1f} ms", f"{r['open_s']:.2f} s",
            f"{r['reader_peak_rss_mb']:,.0f} MB", f"{r['disk_mb']:,.0f} MB"]


def table(runs: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in runs]
    return "\n".join(lines)


def plot(runs: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["chunks"] for r in runs]
    panels = [
        ("one-file update (s)", [("add", [r["add_file_s"]["median"] for r in runs]),
                                 ("remove", [r["remove_file_s"]["median"] for r in runs])], [("target", 2.0)]),
        ("query p95 (ms)", [("dense", [r["dense_ms"]["p95"] for r in runs]),
                            ("BM25", [r["bm25_ms"]["p95"] for r in runs])], [("dense target", 10), ("BM25 target", 20)]),
        ("open the store (s)", [("open", [r["open_s"] for r in runs])], [("target", 3.0)]),
        ("memory (MB)", [("reader's peak", [r["reader_peak_rss_mb"] for r in runs]),
                         ("on disk", [r["disk_mb"] for r in runs])], [("reader's target", 3072)]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for ax, (title, series, targets) in zip(axes, panels):
        lines = [ax.plot(n, values, marker="o", label=label)[0] for label, values in series]
        for (label, value), line in zip(targets, lines if len(targets) > 1 else [None]):
            ax.axhline(value, color=line.get_color() if line else "grey", linestyle=":", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("chunks")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="JSON files written by scale.py --out")
    parser.add_argument("--png", type=Path, help="write the plot here")
    args = parser.parse_args(argv)
    runs = sorted((json.loads(p.read_text()) for p in args.runs), key=lambda r: r["chunks"])
    print(table(runs))
    if args.png:
        plot(runs, args.png)
        print(f"plot written to {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
