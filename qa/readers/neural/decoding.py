"""Reading windows and decoding spans: model logits in, best character spans out.

Shared by inference (``NeuralReader``) and training (held-out scoring, agreement tuning).
The model is either an ``OnnxReaderModel`` (numpy throughout) or a torch model (torch is
imported only to run it); everything after the logits is numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qa.readers.neural.files import ReaderConfig
from qa.readers.neural.runtime import OnnxReaderModel, torch_logits
from qa.readers.neural.windows import encode_windows


@dataclass(frozen=True)
class WindowLogits:
    """Start/end logits of one window over a context, with each token's character offsets
    into that context (None for question, special and padding tokens)."""

    start: np.ndarray  # float32 (tokens,)
    end: np.ndarray  # float32 (tokens,)
    offsets: list

    @property
    def null_logit(self) -> float:
        """Start + end logit of [CLS]: the window's evidence for "no answer here"."""
        return float(self.start[0] + self.end[0])


def best_span(window: WindowLogits, max_answer_tokens: int) -> tuple:
    """The best legal span of one window.

    Args:
        window: the window's logits and offsets.
        max_answer_tokens: longest span allowed.

    Returns:
        ``(span_logit, char_start, char_end)``; ``(-inf, None, None)`` when the window
        has no context token.
    """
    offs = window.offsets
    idx = [i for i, o in enumerate(offs) if o is not None]
    if not idx:
        return float("-inf"), None, None
    lo, hi = idx[0], idx[-1] + 1  # context tokens are contiguous
    s = np.asarray(window.start[lo:hi], dtype=np.float32)
    e = np.asarray(window.end[lo:hi], dtype=np.float32)
    n = hi - lo
    ends_after = np.arange(n)[None, :] - np.arange(n)[:, None]  # j - i
    band = (ends_after >= 0) & (ends_after < max_answer_tokens)
    scores = np.where(band, s[:, None] + e[None, :], np.float32(-np.inf))
    flat = int(np.argmax(scores))
    i, j = divmod(flat, n)
    return float(scores[i, j]), offs[lo + i][0], offs[lo + j][1]


def span_logit(windows: Sequence[WindowLogits], char_start: int, char_end: int, max_answer_tokens: int) -> tuple | None:
    """The reader's logit for a given character span (its best over the windows that hold it).

    Args:
        windows: one context's windows.
        char_start: span start in the context.
        char_end: span end in the context.
        max_answer_tokens: longest span allowed.

    Returns:
        ``(span_logit, token_aligned_start, token_aligned_end)``, or None when no window
        holds the whole span within ``max_answer_tokens`` word pieces.
    """
    best = None
    for w in windows:
        idx = [i for i, o in enumerate(w.offsets) if o is not None]
        if not idx or w.offsets[idx[0]][0] > char_start or w.offsets[idx[-1]][1] < char_end:
            continue
        i = next((k for k in idx if w.offsets[k][1] > char_start), None)
        j = next((k for k in reversed(idx) if w.offsets[k][0] < char_end), None)
        if i is None or j is None or j < i or j - i + 1 > max_answer_tokens:
            continue
        val = float(w.start[i] + w.end[j])
        if best is None or val > best[0]:
            best = (val, w.offsets[i][0], w.offsets[j][1])
    return best


def read_windows(model, tokenizer, question: str, contexts: Sequence[str], cfg: ReaderConfig,
                 batch_size: int | None = None, bf16: bool = False) -> list[list[WindowLogits]]:
    """Run the model over every window of every context.

    Args:
        model: an ``OnnxReaderModel``, or a torch question-answering model returning
            ``start_logits``/``end_logits``.
        tokenizer: a ``WordPieceTokenizer`` or transformers' fast tokenizer (the same windows).
        question: the question.
        contexts: passage texts.
        cfg: window settings.
        batch_size: windows per forward pass, each batch padded to its longest window; None:
            ``default_batch_size(model)``. The logits of a window's own tokens are the same
            whatever the batch (the attention mask hides the padding).
        bf16: compute the torch model's matrix products in bfloat16 (``torch.autocast``);
            worth it only where the CPU multiplies bf16 natively (see ``cpu_has_bf16``).

    Returns:
        Per context, its windows' logits (float32 numpy arrays, as long as the window or its
        batch's longest window).
    """
    out_windows: list[list[WindowLogits]] = [[] for _ in contexts]
    if not contexts:
        return out_windows
    if bf16 and isinstance(model, OnnxReaderModel):
        raise ValueError("bf16 needs the torch model; the ONNX reader computes in fp32 or int8")
    batch_size = batch_size or default_batch_size(model)
    enc = encode_windows(tokenizer, question, contexts, cfg)
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    masks = np.asarray(enc["attention_mask"], dtype=np.int64)
    types = np.asarray(enc["token_type_ids"], dtype=np.int64)
    slices = [slice(b, b + batch_size) for b in range(0, len(ids), batch_size)]
    widths = [int(masks[sl].sum(1).max()) for sl in slices]  # each batch padded to its own longest window
    batches = [(ids[sl, :w], masks[sl, :w], types[sl, :w]) for sl, w in zip(slices, widths)]
    if isinstance(model, OnnxReaderModel):
        logits = model.map(batches)  # side by side where there are several
    else:
        run = torch_logits(model, bf16)
        logits = [run(*b) for b in batches]
    for sl, width, (starts, ends) in zip(slices, widths, logits):
        b = sl.start
        for k, offs in enumerate(enc["offsets"][sl]):
            offs = offs + [None] * (width - len(offs)) if len(offs) < width else offs[:width]
            out_windows[enc["context_index"][b + k]].append(WindowLogits(starts[k], ends[k], offs))
    return out_windows


def default_batch_size(model) -> int:
    """Windows per forward pass that read fastest on ``model``'s runtime: 1 on ONNX Runtime
    (each window at its own length: a padded batch of a question's windows took longer than the
    same windows one by one, a little on an idle CPU and much more when other work shares the
    cores; ``docs/bench/latency.py --batch-size``), 16 on torch."""
    return 1 if isinstance(model, OnnxReaderModel) else 16


def best_of_windows(windows: Sequence[WindowLogits], max_answer_tokens: int) -> tuple:
    """A context's best span over its windows, as ``(span_logit, null_logit, char_start, char_end)``.

    The best span over the windows is kept; the null logit is the smallest over the windows
    (the window that best sees the answer decides).
    """
    result: tuple = (float("-inf"), 0.0, None, None)
    null = float("inf")
    for w in windows:
        null = min(null, w.null_logit)
        logit, s, e = best_span(w, max_answer_tokens)
        if logit > result[0] or result[2] is None:
            result = (logit, 0.0, s, e)
    return (result[0], null if math.isfinite(null) else 0.0, result[2], result[3])


def read_contexts(model, tokenizer, question: str, contexts: Sequence[str], cfg: ReaderConfig,
                  batch_size: int | None = None, bf16: bool = False) -> list[tuple]:
    """Best span per context, as ``(span_logit, null_logit, char_start, char_end)``.

    Args:
        model: a question-answering model returning ``start_logits``/``end_logits``.
        tokenizer: its fast tokenizer.
        question: the question.
        contexts: passage texts.
        cfg: window and span settings.
        batch_size: as in ``read_windows``.
        bf16: as in ``read_windows``.

    Returns:
        One tuple per context; char offsets are into that context (None if it was empty).
    """
    windows = read_windows(model, tokenizer, question, contexts, cfg, batch_size, bf16)
    return [best_of_windows(w, cfg.max_answer_tokens) for w in windows]
