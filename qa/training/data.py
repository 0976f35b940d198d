"""Training data: SQuAD-format files read into contexts and questions, the held-out slice, and
the no-answer readings (stretches without the answer, unanswerable twins) that calibration scores.

The held-out slice is chosen by ``qa.eval.datasets.is_heldout`` (a hash of the context), the
same rule the evaluation uses to keep to contexts the reader never trained on.
"""

from __future__ import annotations

import collections
import json
import random
from dataclasses import dataclass
from pathlib import Path

from qa.eval.datasets import is_heldout
from qa.eval.unanswerable import KINDS, NEAR_MISSES_TRAIN, perturb, pool_for
from qa.training.config import TrainConfig


@dataclass(frozen=True)
class Example:
    """One training question: its context (by index) and the chosen gold answer."""

    qid: str
    question: str
    context_id: int
    answer_start: int
    answer_text: str
    answers: tuple[str, ...]
    source: str


def _pick_answer(answers: list[dict]) -> dict:
    """The most frequent gold answer; ties go to the shorter (SQuAD-style short spans)."""
    counts = collections.Counter((a["text"], a["answer_start"]) for a in answers)
    (text, start), _ = min(counts.items(), key=lambda kv: (-kv[1], len(kv[0][0]), kv[0][1]))
    return {"text": text, "answer_start": start}


def load_data(data_dir: Path, files: tuple[str, ...], cfg: TrainConfig) -> tuple[list[str], list[Example], list[Example]]:
    """Read SQuAD-format files into contexts and train/held-out examples.

    Args:
        data_dir: folder with the JSON files.
        files: file names to read.
        cfg: seed, PolicyQA cap and held-out share.

    Returns:
        ``(contexts, train_examples, heldout_examples)``.

    Raises:
        FileNotFoundError: a data file is missing (says where the data is expected).
    """
    contexts: list[str] = []
    ctx_ids: dict[str, int] = {}
    train: list[Example] = []
    heldout: list[Example] = []
    rng = random.Random(cfg.seed)
    for name in files:
        path = Path(data_dir) / name
        if "squad/" in str(path).replace("\\", "/") and "qa-train" not in str(path):
            raise ValueError(f"refusing to train on {path}: squad/ is the test set")
        if not path.is_file():
            raise FileNotFoundError(f"training file {path} not found; pass --data-dir pointing at shared/data/qa-train")
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = []
        for article in data["data"]:
            for para in article["paragraphs"]:
                ctx = para["context"]
                for qa in para["qas"]:
                    answers = [a for a in qa.get("answers", []) if a.get("text")]
                    if qa.get("is_impossible") or not answers:
                        continue
                    a = _pick_answer(answers)
                    if ctx[a["answer_start"] : a["answer_start"] + len(a["text"])] != a["text"]:
                        continue
                    rows.append((ctx, qa, a, answers))
        if name.startswith("policyqa"):
            rng.shuffle(rows)
            rows = rows[: cfg.policy_limit // 2]
        for ctx, qa, a, answers in rows:
            if ctx not in ctx_ids:
                ctx_ids[ctx] = len(contexts)
                contexts.append(ctx)
            ex = Example(
                qid=str(qa["id"]),
                question=qa["question"].strip(),
                context_id=ctx_ids[ctx],
                answer_start=a["answer_start"],
                answer_text=a["text"],
                answers=tuple(x["text"] for x in answers),
                source=name.split(".json")[0],
            )
            (heldout if is_heldout(ctx, cfg.heldout_per_mille) else train).append(ex)
    return contexts, train, heldout


def written_focus(train: list[Example], written: dict[tuple[str, str], str], replay: float, seed: int) -> list[Example]:
    """The questions that have a written near miss, plus ``replay`` times as many others drawn
    at random (a short fine-tuning on the near misses that keeps rehearsing the rest).

    Raises:
        ValueError: no training question has a written near miss.
    """
    focus = [e for e in train if (e.source, e.qid) in written]
    if not focus:
        raise ValueError("no training question has a written near miss; check --near-misses "
                         f"(default {NEAR_MISSES_TRAIN}) and --data-dir")
    others = [e for e in train if (e.source, e.qid) not in written]
    k = min(len(others), int(round(replay * len(focus))))
    return focus + random.Random(seed).sample(others, k)


def negative_items(contexts: list[str], examples: list[Example], seed: int, limit: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """Held-out (question, text) pairs where the text is a stretch of the question's own
    context that does not contain any gold answer.

    Args:
        contexts: all contexts.
        examples: held-out examples.
        seed: sampling seed.
        limit: most pairs to return.

    Returns:
        ``(question, text_without_answer, gold_answers)`` triples.
    """
    rng = random.Random(seed)
    out = []
    for ex in examples:
        ctx = contexts[ex.context_id]
        a, b = ex.answer_start, ex.answer_start + len(ex.answer_text)
        pieces = [p for p in (ctx[:a], ctx[b:]) if len(p.split()) >= 25]
        if not pieces:
            continue
        piece = rng.choice(pieces)
        # Cut at sentence-ish boundaries away from the answer.
        if piece is pieces[0] and piece == ctx[:a]:
            cut = piece.rfind(". ")
            piece = piece[: cut + 1] if cut > 0 else piece
        else:
            cut = piece.find(". ")
            piece = piece[cut + 2 :] if 0 <= cut < len(piece) - 2 else piece
        if len(piece.split()) < 15 or any(g.lower() in piece.lower() for g in ex.answers):
            continue
        out.append((ex.question, piece, ex.answers))
    rng.shuffle(out)
    return out[:limit]


def perturbed_items(contexts: list[str], examples: list[Example], seed: int, limit: int,
                    kinds: tuple[str, ...] = KINDS) -> list[tuple[str, str, tuple[str, ...]]]:
    """Held-out unanswerable twins (``qa.eval.unanswerable.perturb``) with their own, unchanged context.

    Args:
        contexts: all contexts.
        examples: held-out examples.
        seed: seeds the rules' choices.
        limit: most pairs to return.
        kinds: the rules (``("swap_within",)``: only names and numbers of the same context).

    Returns:
        ``(twin_question, context, gold_answers_of_the_original)`` triples.
    """
    rng = random.Random(seed)
    pool = pool_for(kinds, (contexts[e.context_id] for e in examples))
    out = []
    for ex in examples:
        twin = perturb(ex.question, contexts[ex.context_id], pool, rng, kinds=kinds, answers=ex.answers)
        if twin is not None:
            out.append((twin.question, contexts[ex.context_id], ex.answers))
        if len(out) >= limit:
            break
    return out
