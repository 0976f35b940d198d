"""Agreement with the rule-based span finder: a span of the asked type wins when the model
scores it nearly as high as its own best (``ReaderConfig.agree_margin``)."""

from __future__ import annotations

from typing import Sequence

from qa.readers.neural.decoding import WindowLogits, span_logit
from qa.readers.sentences import split_sentences
from qa.readers.spans import extract_span, question_terms, question_type, question_words


def typed_alternative(question: str, text: str, start: int, end: int) -> tuple[int, int] | None:
    """The rule-based span finder's span of the asked type in the sentence holding ``text[start:end]``.

    Args:
        question: the question.
        text: the passage text.
        start: neural answer start in ``text``.
        end: neural answer end in ``text``.

    Returns:
        ``(start, end)`` in ``text`` of a typed span ("who is X?" -> title, "when" -> date,
        "how many" -> number, "who"/"where" -> a name), or None.
    """
    qtype = question_type(question)
    if qtype == "other":
        return None
    ss, se = sentence_around(text, start, end)
    span, typed = extract_span(question, text[ss:se], set(question_terms(question)), question_words(question), qtype)
    if span is None or not typed:
        return None
    return ss + span[0], ss + span[1]


def scored_typed_alternative(question: str, text: str, windows: Sequence[WindowLogits], start: int, end: int,
                             max_answer_tokens: int) -> tuple | None:
    """``typed_alternative`` of the span ``text[start:end]`` with the model's logit for it.

    Returns:
        ``(span_logit, start, end)`` of the typed span (token-aligned), or None when there is
        none, it is the same span, or no window holds it.
    """
    alt = typed_alternative(question, text, start, end)
    if alt is None or alt == (start, end):
        return None
    return span_logit(windows, alt[0], alt[1], max_answer_tokens)


def typed_span_wins(alt_logit: float, best_logit: float, agree_margin: float) -> bool:
    """Whether the typed span replaces the model's best (see ``ReaderConfig.agree_margin``)."""
    return agree_margin > 0 and alt_logit >= best_logit - agree_margin


def sentence_around(text: str, s: int, e: int) -> tuple[int, int]:
    """The sentence(s) of ``text`` covering ``[s, e)`` (offsets into ``text``)."""
    spans = split_sentences(text)
    hit = [(a, b) for a, b in spans if a < e and b > s]
    if not hit:
        return s, e
    return min(hit[0][0], s), max(hit[-1][1], e)
