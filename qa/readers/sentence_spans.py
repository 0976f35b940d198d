"""Spans kept inside one sentence and balanced brackets: the mechanics of two of the answer
boundary rules (``qa.readers.boundaries``), and the sentence and best-span helpers the others use.

- ``one_sentence``: a span that runs over a sentence end becomes the model's best span inside
  one of the sentences it touches; initials ("George H.W. Bush") and a break before a digit
  ("ca. 2 million") do not end a sentence;
- ``whole_brackets``: a span with one unmatched bracket becomes the best scored of the part
  inside the brackets, the part outside them, and the span widened to the matching bracket.

Offsets are ``(start, end)`` into the passage text the model's windows were read over.
"""

from __future__ import annotations

import re
from typing import Sequence

from qa.readers.neural.decoding import WindowLogits, best_span, span_logit
from qa.readers.sentences import split_sentences, strip_span

_OPEN, _CLOSE = "([", ")]"
_INITIAL_RE = re.compile(r"(?:[A-Z]\.)*[A-Z]\.$")  # "H.W." or "F." before a sentence-like break


# ---- one sentence ---------------------------------------------------------------------------------

def _ends_sentence(text: str, a: int, b: int) -> bool:
    """Whether the break ``split_sentences`` found after ``text[a:b]`` ends a sentence: not after
    initials ("George H.W. Bush") nor before a digit ("ca. 2 million")."""
    after = text[b:b + 4].lstrip()[:1]
    return not _INITIAL_RE.search(text[max(a, b - 8):b]) and not after.isdigit()


def sentence_pieces(text: str, s: int, e: int) -> list[tuple[int, int]]:
    """``text[s:e]`` cut at the sentence ends inside it (see ``_ends_sentence``)."""
    cuts = []
    for a, b in split_sentences(text, s, e)[:-1]:
        if _ends_sentence(text, a, b):
            cuts.append(b)
    pieces, at = [], s
    for c in cuts:
        pieces.append(strip_span(text, at, c))
        at = c
    pieces.append(strip_span(text, at, e))
    return [p for p in pieces if p[1] > p[0]]


def sentences(text: str) -> list[tuple[int, int]]:
    """``split_sentences`` of ``text``, joined where a break does not end a sentence (``_ends_sentence``)."""
    out: list[tuple[int, int]] = []
    for a, b in split_sentences(text):
        if out and not _ends_sentence(text, *out[-1]):
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def best_span_within(windows: Sequence[WindowLogits], lo: int, hi: int, max_answer_tokens: int) -> tuple | None:
    """The model's best span whose tokens all lie in ``[lo, hi)``: ``(logit, start, end)``, or None."""
    best = None
    for w in windows:
        offsets = [o if o is not None and o[0] >= lo and o[1] <= hi else None for o in w.offsets]
        if not any(o is not None for o in offsets):
            continue
        found = best_span(WindowLogits(w.start, w.end, offsets), max_answer_tokens)
        if found[1] is not None and (best is None or found[0] > best[0]):
            best = found
    return best


def one_sentence(text: str, windows: Sequence[WindowLogits], s: int, e: int, max_answer_tokens: int) -> tuple[int, int]:
    """A span over a sentence end replaced by the model's best span inside one of those sentences."""
    pieces = sentence_pieces(text, s, e)
    if len(pieces) < 2:
        return s, e
    # Widen each piece to its whole sentence, so the span inside it may start or end beyond
    # where the model's span did.
    whole = [(a, b) for a, b in sentences(text) if a < e and b > s]
    found = [f for a, b in whole if (f := best_span_within(windows, a, b, max_answer_tokens)) is not None]
    if not found:
        return s, e
    _, bs, be = max(found, key=lambda f: f[0])
    if len(sentence_pieces(text, bs, be)) > 1:
        return s, e
    return bs, be


# ---- brackets -------------------------------------------------------------------------------------

def _unmatched(span: str) -> tuple[list[int], list[int]]:
    """Positions in ``span`` of unmatched opening and closing brackets."""
    opens, closes = [], []
    for i, ch in enumerate(span):
        if ch in _OPEN:
            opens.append(i)
        elif ch in _CLOSE:
            if opens and _OPEN.index(span[opens[-1]]) == _CLOSE.index(ch):
                opens.pop()
            else:
                closes.append(i)
    return opens, closes


def _matching(text: str, i: int, step: int, limit: int = 200) -> int | None:
    """Offset of the bracket matching ``text[i]``, searching forward (step 1) or back (step -1)."""
    pair = (_OPEN, _CLOSE) if step == 1 else (_CLOSE, _OPEN)
    kind = pair[0].index(text[i])
    depth, j = 0, i
    while 0 <= j < len(text) and abs(j - i) <= limit:
        if text[j] == pair[0][kind]:
            depth += 1
        elif text[j] == pair[1][kind]:
            depth -= 1
            if depth == 0:
                return j
        j += step
    return None


def whole_brackets(text: str, windows: Sequence[WindowLogits], s: int, e: int, max_answer_tokens: int) -> tuple[int, int]:
    """A span with one unmatched bracket replaced by the best scored balanced span around it."""
    opens, closes = _unmatched(text[s:e])
    if len(opens) + len(closes) != 1:
        return s, e
    options = []
    if opens:
        b = s + opens[0]
        options += [(b + 1, e), (s, b)]
        m = _matching(text, b, 1)
        if m is not None:
            options.append((s, m + 1))
    else:
        b = s + closes[0]
        options += [(s, b), (b + 1, e)]
        m = _matching(text, b, -1)
        if m is not None:
            options.append((m, e))
    scored = []
    for a, z in options:
        a, z = _trim_punctuation(text, *strip_span(text, a, z))
        if z > a and not any(_unmatched(text[a:z])):
            found = span_logit(windows, a, z, max_answer_tokens)
            if found is not None:
                scored.append((found[0], a, z))
    if not scored:
        return s, e
    _, a, z = max(scored)
    return a, z


def _trim_punctuation(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s] in ",;:.":
        s += 1
    while e > s and text[e - 1] in ",;:":
        e -= 1
    return strip_span(text, s, e)


def sentence_of(text: str, s: int, e: int) -> tuple[int, int]:
    """The sentence (``sentences``) that holds ``text[s:e]``, or the span itself when it spans several."""
    return next(((a, b) for a, b in sentences(text) if a <= s and e <= b), (s, e))
