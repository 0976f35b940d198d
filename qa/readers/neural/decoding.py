"""Reading windows and decoding spans: model logits in, best character spans out.

Shared by inference (``NeuralReader``) and training (held-out scoring, agreement tuning).
torch is imported by the functions that run the model, so importing this module is light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from qa.readers.neural.files import ReaderConfig
from qa.readers.neural.windows import encode_windows


@dataclass(frozen=True)
class WindowLogits:
    """Start/end logits of one window over a context, with each token's character offsets
    into that context (None for question, special and padding tokens)."""

    start: object  # torch.Tensor (tokens,)
    end: object  # torch.Tensor (tokens,)
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
    import torch

    offs = window.offsets
    idx = [i for i, o in enumerate(offs) if o is not None]
    if not idx:
        return float("-inf"), None, None
    lo, hi = idx[0], idx[-1] + 1  # context tokens are contiguous
    s = window.start[lo:hi]
    e = window.end[lo:hi]
    n = hi - lo
    band = torch.ones(n, n, dtype=torch.bool).triu().tril(max_answer_tokens - 1)
    scores = (s[:, None] + e[None, :]).masked_fill(~band, float("-inf"))
    flat = int(torch.argmax(scores))
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


def read_windows(model, tokenizer, question: str, contexts: Sequence[str], cfg: ReaderConfig, batch_size: int = 16,
                 bf16: bool = False) -> list[list[WindowLogits]]:
    """Run the model over every window of every context.

    Args:
        model: a question-answering model returning ``start_logits``/``end_logits``.
        tokenizer: its fast tokenizer.
        question: the question.
        contexts: passage texts.
        cfg: window settings.
        batch_size: windows per forward pass.
        bf16: compute the matrix products in bfloat16 (``torch.autocast``); worth it only
            where the CPU multiplies bf16 natively (see ``cpu_has_bf16``).

    Returns:
        Per context, its windows' logits (on the CPU, float32).
    """
    import torch

    out_windows: list[list[WindowLogits]] = [[] for _ in contexts]
    if not contexts:
        return out_windows
    enc = encode_windows(tokenizer, question, contexts, cfg)
    n = len(enc["input_ids"])
    device = next(model.parameters()).device
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for b in range(0, n, batch_size):
            sl = slice(b, b + batch_size)
            mask = torch.tensor(enc["attention_mask"][sl])
            width = int(mask.sum(1).max())
            out = model(
                input_ids=torch.tensor(enc["input_ids"][sl])[:, :width].to(device),
                attention_mask=mask[:, :width].to(device),
                token_type_ids=torch.tensor(enc["token_type_ids"][sl])[:, :width].to(device),
            )
            starts, ends = out.start_logits.float().cpu(), out.end_logits.float().cpu()
            for k, offs in enumerate(enc["offsets"][sl]):
                offs = offs + [None] * (width - len(offs)) if len(offs) < width else offs[:width]
                out_windows[enc["context_index"][b + k]].append(WindowLogits(starts[k], ends[k], offs))
    return out_windows


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


def read_contexts(model, tokenizer, question: str, contexts: Sequence[str], cfg: ReaderConfig, batch_size: int = 16,
                  bf16: bool = False) -> list[tuple]:
    """Best span per context, as ``(span_logit, null_logit, char_start, char_end)``.

    Args:
        model: a question-answering model returning ``start_logits``/``end_logits``.
        tokenizer: its fast tokenizer.
        question: the question.
        contexts: passage texts.
        cfg: window and span settings.
        batch_size: windows per forward pass.
        bf16: as in ``read_windows``.

    Returns:
        One tuple per context; char offsets are into that context (None if it was empty).
    """
    windows = read_windows(model, tokenizer, question, contexts, cfg, batch_size, bf16)
    return [best_of_windows(w, cfg.max_answer_tokens) for w in windows]
