"""Training features: token windows with their answer positions, shuffled into length-grouped
batches and padded by the tokenizer."""

from __future__ import annotations

import random
from typing import NamedTuple

from qa.eval.unanswerable import name_pool, perturb
from qa.training.config import TrainConfig
from qa.training.data import Example


class Feature(NamedTuple):
    """One training window: ``[CLS] question [SEP] context piece [SEP]``.

    ``question_end`` is the number of tokens up to and including the first [SEP] (where the
    context's token type starts); ``start``/``end`` are the answer's first and last token,
    both 0 ([CLS]) for a window that does not answer the question.
    """

    input_ids: list[int]
    question_end: int
    start: int
    end: int


class FeatureBuilder:
    """Turns examples into token windows (one positive, sometimes no-answer ones too).

    Each question gets one window that holds its answer, placed at random within the context
    (a new placement each epoch), so the reader sees its answer at every position of a window.
    That is not the fixed, overlapping windows the reader reads at run time
    (``qa.readers.neural.encode_windows``, consecutive windows sharing ``stride`` tokens): those
    would put most answers at the same few offsets of a window, and train on many windows
    without the answer.

    Example:
        >>> feats = FeatureBuilder(tokenizer, contexts, train, TrainConfig()).build(epoch=0)   # doctest: +SKIP
        >>> feats[0].start > 0                                                                 # doctest: +SKIP
        True
    """

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

    def build(self, epoch: int) -> list[Feature]:
        """Windows for one epoch.

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
            feats.append(Feature(prefix + ids[ws:we] + [sep_id], len(prefix), len(prefix) + ts - ws, len(prefix) + te - ws))
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
                feats.append(Feature(t_prefix + ids[ws:ws + t_room] + [sep_id], len(t_prefix), 0, 0))
            if self.cfg.other_neg_rate > 0 and rng.random() < self.cfg.other_neg_rate:
                other = rng.choice(self.used)
                if other != ex.context_id:
                    o_ids = self.ctx_tokens[other][0]
                    a = rng.randint(0, max(0, len(o_ids) - room))
                    feats.append(Feature(prefix + o_ids[a:a + room] + [sep_id], len(prefix), 0, 0))
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
                feats.append(Feature(prefix + ids[a:b] + [sep_id], len(prefix), 0, 0))
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


def collate(feats: list[Feature], idx: list[int], tokenizer):
    """Pad a batch into tensors with the tokenizer (``tokenizer.pad``: right padding with its pad
    token, attention mask 1 on the real tokens, token type 1 from the context on).

    Args:
        feats: all features.
        idx: the batch's indices.
        tokenizer: the fast tokenizer the features were made with.

    Returns:
        ``(input_ids, attention_mask, token_type_ids, start_positions, end_positions)``.
    """
    import torch

    rows = [feats[i] for i in idx]
    batch = tokenizer.pad(
        [{"input_ids": f.input_ids, "token_type_ids": [0] * f.question_end + [1] * (len(f.input_ids) - f.question_end)}
         for f in rows],
        padding="longest", return_attention_mask=True, return_tensors="pt",
    )
    starts = torch.tensor([f.start for f in rows])
    ends = torch.tensor([f.end for f in rows])
    return batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], starts, ends
