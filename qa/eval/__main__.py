"""python -m qa.eval: score the engine on a test set (see qa.eval for the library calls)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qa.eval.datasets import UNANSWERABLE_KINDS
from qa.settings import PRECISIONS

EPILOG = """examples:
  python -m qa.eval /work/shared/data/squad/dev-v1.1.json --limit 500 --seed 0
  python -m qa.eval /work/shared/data/squad/dev-v1.1.json --closed
  python -m qa.eval /work/shared/data/qa-train/new_wiki_v1.0.json --closed --add-unanswerable 0.5 --limit 1000
  python -m qa.eval /work/shared/data/squad/dev-v2.0.json --min-score 0.42
  python -m qa.eval tests/data/seed_questions.jsonl
  python -m qa.eval longdocs-heldout        # long documents built from qa-train (qa.eval.longdocs)
  python -m qa.eval shortdocs-check         # single paragraphs built from qa-train (qa.eval.shortdocs)
  python -m qa.eval boundaries-check --closed   # answer boundaries, each question with its paragraph (qa.eval.boundaries)
  python -m qa.eval longdocs-heldout --decider-file my-decider.json   # another answer-or-abstain model
  python -m qa.eval --conversations tests/data/conversations.jsonl   # follow-up questions (qa.eval.conversations)
  python -m qa.eval --beir /work/shared/data/beir-scifact
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qa.eval", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", nargs="?", help="SQuAD .json or .jsonl test set, or a named set: "
                   "longdocs-tune, longdocs-heldout, longdocs-all, shortdocs-fit, shortdocs-check, shortdocs-all, "
                   "boundaries-tune, boundaries-check, boundaries-all")
    p.add_argument("--beir", metavar="DIR", help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv): retrieval only")
    p.add_argument("--conversations", metavar="FILE", help="a conversation set (JSONL): rewrite accuracy and answer "
                   "EM/F1 per turn (python -m qa.eval.conversations --help for its own options)")
    p.add_argument("--closed", action="store_true", help="give the reader only the gold context (default: open, from retrieval)")
    p.add_argument("--reader", choices=("sentence", "neural", "auto"), default="auto", help="reader (default auto)")
    p.add_argument("--min-score", type=float, default=None,
                   help="abstention threshold for the headline figures (default: the reader's own, as the engine uses)")
    p.add_argument("--top-k", type=int, default=None, help="passages read per question (default: the engine's)")
    p.add_argument("--fusion-weight", type=float, default=None,
                   help="weight of the reader's score against retrieval when ranking passages' answers "
                        "(default: the engine's, QASettings.fusion_weight)")
    p.add_argument("--early-exit", type=float, default=None,
                   help="answer from the best-retrieved passage alone when the neural reader scores it at least this "
                        "(1.0 reads every passage; default: the engine's, QASettings.early_exit)")
    p.add_argument("--decider", choices=("auto", "off"), default="auto",
                   help="open mode: the answer-or-abstain model weighs every passage read (auto, the default) "
                        "or the reader's score alone decides (off)")
    p.add_argument("--decider-file", metavar="FILE",
                   help="open mode: the answer-or-abstain model to use instead of the shipped qa/models/decider.json "
                        "(one written by python -m qa.training.decision --out FILE)")
    p.add_argument("--reader-precision", choices=PRECISIONS, default="auto",
                   help="the neural reader's arithmetic (default auto: fp32 on ONNX Runtime; on torch, bf16 where the CPU "
                        "has it natively, else fp32)")
    p.add_argument("--reader-dir", metavar="DIR", help="neural reader weights to use (from `python -m qa.train_reader "
                   "--out DIR`; default: the shipped qa/models/reader)")
    p.add_argument("--no-boundaries", action="store_true",
                   help="keep the neural reader's own best spans, without the boundary corrections "
                        "(QASettings.answer_boundaries; qa.readers.boundaries)")
    p.add_argument("--embedder", choices=("auto", "onnx", "onnx-int8", "torch"), default="auto",
                   help="how the embedding model runs, for the test set's index and the questions (default auto: "
                        "what a new index chooses, onnx-int8 where ONNX Runtime runs; an index cache keeps the vectors "
                        "it was built with)")
    p.add_argument("--limit", type=int, default=None, help="evaluate a random sample of N questions (queries for --beir)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample and --add-unanswerable (default 0)")
    p.add_argument("--add-unanswerable", type=float, default=0.0, metavar="FRACTION",
                   help="hold out this share of contexts and make their questions unanswerable (to choose a threshold)")
    p.add_argument("--unanswerable-kind", choices=UNANSWERABLE_KINDS, default="other-article",
                   help="with --add-unanswerable: pair with another article's context (default), or use the question's "
                        "SQuAD 2.0-like unanswerable twin over its own context (qa.eval.unanswerable; twin-within: "
                        "only twins that swap a name or number for another one of the same context; written: the near misses "
                        "written for qa-train/new_wiki's held-out contexts, qa/eval/data/)")
    p.add_argument("--heldout-only", type=int, default=None, metavar="PER_MILLE",
                   help="keep only contexts the neural reader's training held out (qa.eval.datasets.is_heldout; training uses 50)")
    p.add_argument("--index", metavar="DIR", help="answer from this existing index instead of indexing the test set")
    p.add_argument("--index-cache", metavar="DIR", help="where to keep the test set's index between runs "
                   "(default eval-output/index-cache/<set>-<hash>)")
    p.add_argument("--out", metavar="DIR", help="report folder (default eval-output/<run name>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


# Options of a question-set run that mean nothing for a conversation set, which is asked open,
# every turn in order: (attribute, the value that means "not given", the option's name).
_NOT_FOR_CONVERSATIONS = (("closed", False, "--closed"), ("limit", None, "--limit"), ("seed", 0, "--seed"),
                          ("add_unanswerable", 0.0, "--add-unanswerable"),
                          ("unanswerable_kind", "other-article", "--unanswerable-kind"),
                          ("heldout_only", None, "--heldout-only"), ("no_plots", False, "--no-plots"))


def _conversations(args: argparse.Namespace) -> int:
    """``--conversations FILE``: the engine options given are forwarded to
    ``python -m qa.eval.conversations``; the report goes to ``--out DIR``/report.json."""
    from qa.eval import conversations

    given = [name for attr, unset, name in _NOT_FOR_CONVERSATIONS if getattr(args, attr) != unset]
    if given:
        verb = "does" if len(given) == 1 else "do"
        print(f"error: {', '.join(given)} {verb} not apply to --conversations (every turn is asked open, in order); "
              "leave it out", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("eval-output") / f"conversations-{Path(args.conversations).stem}"
    forwarded = [args.conversations, "--reader", args.reader, "--out", str(out / "report.json")]
    for option, value in (("--index", args.index), ("--index-cache", args.index_cache),
                          ("--reader-precision", args.reader_precision), ("--reader-dir", args.reader_dir),
                          ("--decider", args.decider), ("--decider-file", args.decider_file),
                          ("--embedder", args.embedder), ("--min-score", args.min_score), ("--top-k", args.top_k),
                          ("--fusion-weight", args.fusion_weight), ("--early-exit", args.early_exit)):
        if value is not None:
            forwarded += [option, str(value)]
    forwarded += (["--no-boundaries"] if args.no_boundaries else []) + (["--quiet"] if args.quiet else [])
    return conversations.main(forwarded)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if sum(map(bool, (args.dataset, args.beir, args.conversations))) != 1:
        print("error: give one of a test set file, --beir DIR or --conversations FILE; see --help", file=sys.stderr)
        return 2
    if args.conversations:
        return _conversations(args)
    from index.store import IndexStoreError
    from qa.eval.datasets import DatasetError
    from qa.eval.report import format_table, write_report
    from qa.eval.beir import evaluate_beir
    from qa.eval.run import EvalConfig, evaluate

    try:
        config = EvalConfig(
            mode="closed" if args.closed else "open", reader=args.reader, min_score=args.min_score, top_k=args.top_k,
            fusion_weight=args.fusion_weight, early_exit=args.early_exit, decider=args.decider,
            decider_file=args.decider_file, reader_precision=args.reader_precision,
            reader_dir=args.reader_dir, answer_boundaries=not args.no_boundaries, limit=args.limit, seed=args.seed, index=args.index, index_cache=args.index_cache,
            add_unanswerable=args.add_unanswerable, unanswerable_kind=args.unanswerable_kind, heldout_per_mille=args.heldout_only,
            progress=not args.quiet,
        )
        embedder = None
        if args.embedder != "auto":
            from index.embedding import Embedder

            embedder = Embedder(backend=args.embedder)
        report = evaluate_beir(args.beir, config, embedder) if args.beir else evaluate(args.dataset, config, embedder)
    except (DatasetError, ValueError, FileNotFoundError, IndexStoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("eval-output") / report.name
    written = write_report(report, out, plots=not args.no_plots)
    print(format_table(report))
    print(f"\nreport: {out}/ ({', '.join(p.name for p in written)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
