"""Checks shared by the tests: the citation invariant."""

from __future__ import annotations

from index import load_document
from qa.types import Answer


def assert_citations_hold(answer: Answer, texts: dict[str, str] | None = None) -> None:
    """Every citation quotes its document verbatim at its offsets; so does the answer span."""
    texts = texts if texts is not None else {}
    for c in answer.citations:
        if c.source not in texts:
            texts[c.source] = load_document(c.source).text
        text = texts[c.source]
        assert text[c.start:c.end] == c.quote, (c.source, c.start, c.end)
        assert text[c.context_start:c.context_end] == c.context
        assert c.context_start <= c.start < c.end <= c.context_end
        if c.answer_start is not None:
            assert text[c.answer_start:c.answer_end] == answer.text
            assert c.start <= c.answer_start < c.answer_end <= c.end
    if answer.found:
        assert answer.text
        assert answer.citations
    else:
        assert answer.text == ""
