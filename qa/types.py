"""Data types that flow out of answering: passages, candidate spans, citations, answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its retrieval evidence.

    ``text == document.text[start:end]`` for the document named by ``source``.
    Ranks are 1-based; None means the retriever did not return the chunk.
    """

    chunk_id: int
    source: str
    start: int
    end: int
    text: str
    score: float
    page: int | None = None
    dense_rank: int | None = None
    term_rank: int | None = None
    dense_score: float | None = None


@dataclass(frozen=True)
class Candidate:
    """A possible answer found by a reader inside one passage.

    Offsets are into the document's text. ``answer_start``/``answer_end`` are None
    when the reader found a supporting sentence but no short span inside it.
    """

    passage: Passage
    sentence_start: int
    sentence_end: int
    sentence: str
    answer_start: int | None
    answer_end: int | None
    answer: str
    score: float  # in [0, 1]: how strongly this sentence answers the question
    reader: str = ""


@dataclass(frozen=True)
class Citation:
    """Where an answer comes from, checkable in one glance.

    Invariants, tested on every answer:
        load_document(c.source).text[c.start:c.end] == c.quote
        load_document(c.source).text[c.answer_start:c.answer_end] == answer.text  (when not None)
        load_document(c.source).text[c.context_start:c.context_end] == c.context
    """

    source: str
    start: int
    end: int
    quote: str
    page: int | None = None
    answer_start: int | None = None
    answer_end: int | None = None
    score: float = 0.0
    context_start: int = 0
    context_end: int = 0
    context: str = ""  # the retrieved passage around the quote

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Citation:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class Answer:
    """The reply to one question.

    Example:
        >>> from qa import ask
        >>> a = ask("who is Rob Strayer?")        # doctest: +SKIP
        >>> a.text, a.found, a.citations[0].quote  # doctest: +SKIP
        ('State Department official', True, '“We’re raising it ... Studies.')

    ``text`` is a verbatim span of a cited document, or "" when ``found`` is False.
    ``citations`` are best first and kept even when nothing was found: then they are
    the closest passages, not support for an answer.
    ``withheld`` is, when ``found`` is False, the span the reader scored best below the
    threshold ("" when there was none): never an answer, but what a follow-up's "he" or "it"
    most likely means (``qa.Conversation`` reads it).
    ``passages`` are what retrieval gave the reader, best first (with early exit the
    reader may have stopped after the first): evaluation scores retrieval from them
    without searching again. ``to_dict`` leaves them out (the citations hold what a
    user checks), so ``from_dict`` gives an Answer with ``passages=()``.
    """

    question: str
    text: str
    found: bool
    score: float
    citations: tuple[Citation, ...] = ()
    reader: str = ""
    elapsed_ms: float = 0.0
    understood_as: str = ""  # the self-contained question a follow-up was rewritten to ("" when unchanged)
    evidence: dict[str, float] = field(default_factory=dict, repr=False)  # what the decision weighed (qa.decision)
    withheld: str = ""  # found is False: the best span read, below the threshold
    passages: tuple[Passage, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict:
        """The answer as JSON-ready data, without ``passages``."""
        return {
            "question": self.question,
            "understood_as": self.understood_as,
            "evidence": dict(self.evidence),
            "text": self.text,
            "found": self.found,
            "withheld": self.withheld,
            "score": self.score,
            "citations": [c.to_dict() for c in self.citations],
            "reader": self.reader,
            "elapsed_ms": self.elapsed_ms,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Answer:
        return cls(
            question=d["question"],
            text=d["text"],
            found=d["found"],
            score=d["score"],
            citations=tuple(Citation.from_dict(c) for c in d.get("citations", ())),
            reader=d.get("reader", ""),
            elapsed_ms=d.get("elapsed_ms", 0.0),
            understood_as=d.get("understood_as", ""),
            evidence=dict(d.get("evidence", {})),
            withheld=d.get("withheld", ""),
        )
