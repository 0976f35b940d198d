"""Sentence boundaries with character offsets, for citing exactly the supporting sentence."""

from __future__ import annotations

import re

# Words that end in a period without ending a sentence.
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt ft vs etc inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec
    no gen col lt sgt capt gov sen rep rev fig approx dept est e.g i.e u.s u.k u.n a.m p.m""".split()
)

# A candidate end: terminal punctuation, optional closing quotes/brackets, then white space.
_END_RE = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n\s*\n|\n")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of the sentences in ``text[start:end]``, as offsets into ``text``.

    Each span is trimmed of surrounding white space; line breaks end a sentence too
    (headings, list items). Abbreviations such as "U.S." or "Dr." do not.

    >>> t = "Dr. Smith met U.S. officials. They agreed! Done"
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['Dr. Smith met U.S. officials.', 'They agreed!', 'Done']
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for m in _END_RE.finditer(text, start, end):
        stop = m.end()
        if m.group(0)[0] in ".":
            word = re.search(r"([\w.]+)\.$", text[cursor : m.start() + 1])
            following = text[stop : stop + 3].lstrip()
            if word and word.group(1).lower().rstrip(".") in _ABBREVIATIONS and not following[:1].isupper():
                continue
            if word and word.group(1).lower() in _ABBREVIATIONS and len(word.group(1)) <= 4 and word.group(1).lower() in ("mr", "mrs", "ms", "dr", "prof", "st", "gen", "sen", "rep", "gov", "lt", "col", "capt", "sgt", "rev", "mt"):
                continue
            if following[:1].islower():
                continue
        _append(text, spans, cursor, stop)
        cursor = stop
    _append(text, spans, cursor, end)
    return spans


def _append(text: str, spans: list[tuple[int, int]], s: int, e: int) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        spans.append((s, e))
