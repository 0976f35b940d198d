"""Text or noise: decoding a text file's bytes, and the rule that refuses noise as "not text".

``decode_text`` picks the encoding; ``text_problem`` says whether decoded characters are text
at all. Both rules are written beside their constants, with the reasoning behind the numbers.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter


class NotText(ValueError):
    """Bytes or characters that are not text; the message says why and what to do."""


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# The rule for "not text", from what real text is made of. Text in any language (accented
# European text, Cyrillic, Greek, Arabic, Hebrew, Devanagari, CJK, emoji) is letters, marks,
# digits, punctuation, symbols and spaces: assigned characters outside the categories below.
# A real file has a few of them at most (a terminal colour code, a bullet from a PDF icon font,
# a form feed is allowed outright). Random bytes decoded as Latin-1 are about 23-25% C0/C1
# controls; random code points are mostly unassigned or private use. A tenth of the
# non-space characters sits far from both.
NOISE_CATEGORIES = frozenset({"Cc", "Co", "Cn", "Cs"})  # control, private use, unassigned, surrogate
MAX_NOISE_SHARE = 0.10
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")
_SPACE = frozenset(" \t\n\r\f\v\x85\xa0\u2028\u2029\u3000")

# Latin-1 / Windows-1252 is only a guess for bytes that are not UTF-8, and it is right for
# Western European text, where the non-ASCII letters are accents inside mostly-ASCII words:
# French, Spanish, Portuguese and German sentences have 8-13% non-ASCII characters, Icelandic,
# the densest, about a quarter; they come one or two in a row ("é", "ção", "öß", "óð"). Random
# bytes are half non-ASCII; junk high bytes, and text in another single-byte code page
# (Cyrillic, Greek), decode to long runs of non-ASCII symbols. The guess is taken as wrong, and
# the file refused as "not text" instead of being indexed as noise, when any of these holds:
# runs of 3 or more non-ASCII characters cover more than a fifth of the non-space text;
# non-ASCII characters are more than 40% of it; there is no ASCII letter at all.
MAX_SINGLE_BYTE_NON_ASCII_SHARE = 0.40
MAX_SINGLE_BYTE_RUN_SHARE = 0.20
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f\s]{3,}")
_ASCII_LETTER = re.compile(r"[A-Za-z]")

# Mostly UTF-8 with a few broken sequences (a file cut in the middle of a character, one stray
# byte): read as UTF-8 with U+FFFD for the broken bytes when they are at most 1 in 200
# characters (or 2 in a short file) and valid multi-byte characters outnumber them ten to one.
_MAX_BROKEN_UTF8_SHARE = 1 / 200


# Characters counted per call: counting holds Python's interpreter lock for the whole call,
# and a 20 MB text counted at once held every other thread (a page's questions) for ~0.8 s.
_COUNT_SLICE = 1 << 20


def noise_share(text: str) -> float:
    """The share of non-space characters in ``text`` that no text is made of (see ``NOISE_CATEGORIES``)."""
    counts: Counter[str] = Counter()
    for start in range(0, len(text), _COUNT_SLICE):
        counts.update(text[start:start + _COUNT_SLICE])
    non_space = sum(n for ch, n in counts.items() if ch not in _SPACE)
    if not non_space:
        return 0.0
    return sum(n for ch, n in counts.items() if _is_noise(ch)) / non_space


def text_problem(text: str) -> str | None:
    """Why ``text`` is noise rather than text (``MAX_NOISE_SHARE`` rule), or None when it is text."""
    share = noise_share(text)
    if share > MAX_NOISE_SHARE:
        return (f"not text: {share:.0%} of its characters are control, private-use or unassigned "
                "characters (a binary file under a text name?)")
    return None


def _is_noise(ch: str) -> bool:
    if ch == "\ufffd":
        return True
    return unicodedata.category(ch) in NOISE_CATEGORIES and ch not in _ALLOWED_CONTROLS


def decode_text(data: bytes) -> str:
    """Decode bytes the way a person's text file is meant.

    In order: a byte-order mark (UTF-8/16/32); UTF-16 without one (NULs at every other byte);
    UTF-8; UTF-8 with a few broken sequences; Windows-1252, then Latin-1, when the result
    looks like Western European text. Newlines are translated as Python's text mode does
    (``\\r\\n`` and ``\\r`` become ``\\n``), so offsets agree with ``open(path, encoding=...).read()``.

    Raises:
        NotText: binary content, invalid text after a byte-order mark, or bytes that
            are neither UTF-8 nor Western European text.
    """
    text = None
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError as e:
                raise NotText(f"not valid {enc.upper().replace('-SIG', '')} text although it starts with "
                                     f"that byte-order mark ({e.reason} at byte {e.start})") from None
            break
    if text is None and b"\x00" in data:
        text = _utf16_without_bom(data)
        if text is None:
            raise NotText("binary content, not text (NUL bytes and no UTF-16/32 byte-order mark; "
                          "if it is text, save it as UTF-8)")
    if text is None:
        text = _utf8_or_single_byte(data)
    problem = text_problem(text)
    if problem:
        raise NotText(problem)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text saved without a byte-order mark, told by the NUL high bytes of its ASCII
    characters: at least 1% of one byte column is NUL, four times as many as in the other.
    That byte order is taken when its text passes the noise rule. Binary data has NULs in
    both columns, or decodes to controls, lone surrogates or unassigned characters."""
    if len(data) % 2:
        return None
    half = len(data) // 2
    even_nuls, odd_nuls = data[0::2].count(0), data[1::2].count(0)
    for nuls, others, enc in ((odd_nuls, even_nuls, "utf-16-le"), (even_nuls, odd_nuls, "utf-16-be")):
        if nuls >= max(1, 0.01 * half) and nuls >= 4 * others:
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                return None
            return text if noise_share(text) <= MAX_NOISE_SHARE else None
    return None


def _utf8_or_single_byte(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    broken = text.count("\ufffd")
    multibyte = _count_non_ascii(text) - broken
    if broken <= max(2, _MAX_BROKEN_UTF8_SHARE * len(text)) and multibyte >= 10 * broken:
        return text
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:  # five byte values are undefined in Windows-1252
        text = data.decode("latin-1")
    non_space = len("".join(text.split()))
    in_runs = sum(len(m.group(0)) for m in _NON_ASCII_RUN.finditer(text))
    non_ascii = _count_non_ascii(text) - text.count("\xa0") - text.count("\x85")  # less non-ASCII spaces
    if (in_runs > MAX_SINGLE_BYTE_RUN_SHARE * non_space or non_ascii > MAX_SINGLE_BYTE_NON_ASCII_SHARE * non_space
            or not _ASCII_LETTER.search(text)):
        raise NotText("not text: neither UTF-8 nor Western European (Latin-1) text, it decodes to symbols "
                      "rather than words; if it is text, save it as UTF-8")
    return text


def _count_non_ascii(text: str) -> int:
    return len(text) - len(text.encode("ascii", "ignore"))
