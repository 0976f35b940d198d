"""Word tokens with offsets, stemmed terms and stop words: shared by BM25 and answer scoring."""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself yourselves
    s t don shall may might must also whose""".split()
)

_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    return _stemmer.stemWord(w)


def words(text: str) -> list[tuple[str, int, int]]:
    """Every word in ``text`` with its character span."""
    return [(m.group(0), m.start(), m.end()) for m in WORD_RE.finditer(text)]


def terms(text: str) -> list[str]:
    """Stemmed content terms of ``text`` (stop words dropped), in order."""
    return [stem(w) for w, _, _ in words(text) if w.lower() not in STOPWORDS]
