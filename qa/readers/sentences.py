"""Sentence boundaries with character offsets, for citing exactly the supporting sentence."""

from __future__ import annotations

import re

# Titles never end a sentence ("Dr. Smith"). Any other period does unless the next word
# starts in lower case, which keeps "U.S. officials" whole but splits "in the U.S. He".
_TITLES = frozenset("mr mrs ms dr prof st mt gen col lt sgt capt gov sen rep rev".split())

# A candidate end: terminal punctuation, optional closing quotes/brackets, then white space; or a line break.
_END_RE = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n\s*\n|\n")

# A single line break inside a paragraph is often only where a PDF or a hard-wrapped text file
# broke a long line, and the sentence goes on. It is taken as a wrap when the line before it is
# as long as wrapped prose is (a shorter line is a heading, a list item or an address line; a
# much longer one is a whole paragraph on one line) and the next line does not start a list
# item; after a list item, only a line that is indented or starts in lower case goes on with it.
WRAPPED_LINE_CHARS = (40, 160)
_LIST_ITEM_RE = re.compile(r"[ \t]*(?:[-*•▪◦‣]|\(?\d{1,3}[.)]|\(?[a-zA-Z][.)])[ \t]")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of the sentences in ``text[start:end]``, as offsets into ``text``.

    Each span is trimmed of surrounding white space; line breaks end a sentence too
    (headings, list items), except where a long line was only wrapped (see
    ``WRAPPED_LINE_CHARS``). Abbreviations such as "U.S." or "Dr." do not.

    >>> t = "Dr. Smith met U.S. officials. They agreed! Done"
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['Dr. Smith met U.S. officials.', 'They agreed!', 'Done']
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for m in _END_RE.finditer(text, start, end):
        stop = m.end()
        if m.group(0) == "\n" and _is_wrap(text, max(start, text.rfind("\n", start, m.start()) + 1), m.start(), stop, end):
            continue
        if m.group(0).startswith("."):
            word = re.search(r"([\w.]+)\.$", text[cursor : m.start() + 1])
            abbreviation = word.group(1).lower() if word else ""
            next_is_lower = text[stop:stop + 3].lstrip()[:1].islower()
            if abbreviation in _TITLES or next_is_lower:
                continue
        _append(text, spans, cursor, stop)
        cursor = stop
    _append(text, spans, cursor, end)
    return spans


def _is_wrap(text: str, line_start: int, line_end: int, next_start: int, end: int) -> bool:
    """Whether the line break after ``text[line_start:line_end]`` only wraps a sentence."""
    line = text[line_start:line_end].strip()
    low, high = WRAPPED_LINE_CHARS
    if not low <= len(line) <= high or line[-1] in ".!?…:;":
        return False
    if _LIST_ITEM_RE.match(text, next_start, end):
        return False
    if _LIST_ITEM_RE.match(text, line_start, line_end):  # a list item goes on only indented or in lower case
        follow = text[next_start:next_start + 1]
        return follow[:1] in (" ", "\t") or follow.islower()
    return True


def strip_span(text: str, s: int, e: int) -> tuple[int, int]:
    """``(s, e)`` narrowed so ``text[s:e]`` has no white space at either end."""
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _append(text: str, spans: list[tuple[int, int]], s: int, e: int) -> None:
    s, e = strip_span(text, s, e)
    if e > s:
        spans.append((s, e))
