"""The engine: a question in, an extractive answer with exact citations out.

retrieve (hybrid) -> read (extract candidates) -> decide (answer or abstain) -> cite.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from index import DEFAULT_DOCUMENTS_DIR, DEFAULT_INDEX_DIR, Index, IndexNotFound, IndexSettings
from index.types import DocumentInfo, IndexReport
from qa.decision import DECIDER_FILE, Decider, decision_features
from qa.readers import neural
from qa.readers.base import Reader
from qa.readers.sentence import SentenceReader
from qa.retrieval import retrieve
from qa.settings import QASettings
from qa.types import Answer, Candidate, Citation, Passage


class QuestionError(ValueError):
    """A question the engine cannot take; the message says how to fix it."""


def check_question(question: object, max_chars: int) -> str:
    """``question`` stripped, or a QuestionError that says what is wrong and how to fix it."""
    if not isinstance(question, str):
        raise QuestionError(f"question must be a string, got {type(question).__name__}")
    q = question.strip()
    if not q:
        raise QuestionError("question is empty; type a question such as 'who is Rob Strayer?'")
    if len(q) > max_chars:
        raise QuestionError(
            f"question is {len(q)} characters long; the limit is {max_chars}. Ask a shorter question "
            "(or raise QASettings.max_question_chars)"
        )
    surrogate = next((i for i, ch in enumerate(q) if "\ud800" <= ch <= "\udfff"), None)
    if surrogate is not None:
        raise QuestionError(
            f"question has an invalid character at position {surrogate + 1} (U+{ord(q[surrogate]):04X}, half of a "
            "UTF-16 surrogate pair, not a character); type the question again as plain text"
        )
    return q


def check_index_argument(index: object) -> None:
    """Refuse an ``index`` argument that is neither an Index, a path nor None, naming it."""
    if index is not None and not isinstance(index, (Index, str, os.PathLike)):
        raise TypeError(
            f"index must be an opened Index, an index folder (str or Path), or None for the default index. "
            f"Currently, index is {index!r} (a {type(index).__name__})"
        )


def neural_reader_available(path: str | Path | None = None) -> bool:
    """Whether the neural reader's files are installed in ``path`` (default: the shipped ones).

    A folder found complete is remembered, so its files are not looked up again at every
    question; an incomplete one is looked at again next time (a reader may be installed
    while the process runs).
    """
    folder = Path(path).resolve() if path is not None else neural.MODEL_DIR
    if folder in _complete_reader_folders:
        return True
    if neural.is_available(folder):
        _complete_reader_folders.add(folder)
        return True
    return False


_complete_reader_folders: set[Path] = set()


def resolve_reader_name(name: str, path: str | Path | None = None) -> str:
    """``name`` with "auto" resolved: "neural" when its files are installed (in ``path``,
    default the shipped ones), else "sentence". A ``path`` named explicitly must hold a reader:
    falling back to the rule-based reader there would hide a mistyped folder."""
    if name != "auto":
        return name
    if neural_reader_available(path):
        return "neural"
    if path is not None:
        raise FileNotFoundError(f"no neural reader in {path} (model.safetensors, reader.json and the tokenizer "
                                "files): give the --out folder of python -m qa.train_reader, or leave reader_dir "
                                "unset for the shipped reader")
    return "sentence"


def context_reader(name: str, settings: QASettings, embed: Callable | None = None) -> Reader:
    """A reader for one given text, no index behind it (``answer_from_context``, closed-book
    evaluation): the neural one as ``settings`` say, or the sentence reader with ``embed``
    (default: the shared embedding model's ``encode``)."""
    if resolve_reader_name(name, settings.reader_dir) == "neural":
        return neural.NeuralReader.load(settings.reader_dir, precision=settings.reader_precision,
                                         backend=settings.reader_backend, boundaries=settings.answer_boundaries)
    if embed is None:
        from index.embedding import shared_embedder

        embed = shared_embedder().encode
    return SentenceReader(embed=embed)


class Engine:
    """Answers questions over one index.

    Args:
        index: an opened ``Index``, or the path of one. None opens the default index over
            ``seeds/`` (``.index/default`` in the repository), building it on first use.
        settings: answering settings; per-call overrides go to ``ask``.

    Example:
        >>> engine = Engine()                                   # doctest: +SKIP
        >>> engine.ask("who is Rob Strayer?").text              # doctest: +SKIP
        'State Department official'
    """

    def __init__(self, index: Index | str | Path | None = None, settings: QASettings | None = None) -> None:
        check_index_argument(index)
        self.settings = settings or QASettings()
        if isinstance(index, Index):
            self.index = index
        elif index is None:
            self.index = open_default_index()
        else:
            self.index = Index.open(index)
        self._readers: dict[str, Reader] = {}
        self._lock = threading.Lock()
        self._deciders: dict[str | None, Decider | None] = {}

    # ---- readers -------------------------------------------------------------------------------

    def reader(self, name: str, precision: str | None = None, path: str | Path | None = None,
               backend: str | None = None) -> Reader:
        """The reader called ``name`` ("sentence", "neural" or "auto"); ``precision``, ``path``
        and ``backend`` are the neural reader's (``QASettings.reader_precision``/``reader_dir``/
        ``reader_backend``; None: this engine's settings)."""
        precision = precision or self.settings.reader_precision
        path = path or self.settings.reader_dir
        backend = backend or self.settings.reader_backend
        name = resolve_reader_name(name, path)
        boundaries = self.settings.answer_boundaries
        key = f"neural-{backend}-{precision}-{path}-{boundaries}" if name == "neural" else name
        with self._lock:
            if key not in self._readers:
                if name == "neural":
                    self._readers[key] = neural.NeuralReader.load(path, precision=precision, backend=backend,
                                                                  boundaries=boundaries)
                else:
                    self._readers[key] = SentenceReader(
                        embed=self.index.embed,
                        document_frequency=self.index.document_frequency,
                        corpus_size=self.index.count,
                    )
            return self._readers[key]

    # ---- answering -----------------------------------------------------------------------------

    def ask(self, question: str, **overrides) -> Answer:
        """Answer ``question`` from the index.

        Args:
            question: the question, at most ``max_question_chars`` characters.
            **overrides: any ``QASettings`` field for this call only (``top_k=3``, ``reader="sentence"``...).

        Returns:
            An Answer; ``found`` is False (and ``text`` "") when the documents do not answer it.

        Raises:
            QuestionError: the question is empty, not a string or too long.
        """
        settings = self.settings.with_overrides(**overrides)
        q = check_question(question, settings.max_question_chars)
        began = time.perf_counter()
        self.index.refresh()
        if self.index.count() == 0:
            return Answer(question=q, text="", found=False, score=0.0, citations=(), reader=settings.reader,
                          elapsed_ms=(time.perf_counter() - began) * 1000)
        vector = self.index.embed([q])[0]
        passages = retrieve(self.index, q, settings.top_k, settings.retrieve_k, settings.rrf_k, question_vector=vector)
        reader = self.reader(settings.reader, settings.reader_precision, settings.reader_dir, settings.reader_backend)
        candidates = read_passages(reader, q, passages, settings.early_exit, question_vector=vector)
        if not candidates and passages:
            # Nothing the reader would answer with: still cite the closest sentences.
            closest = self.reader("sentence").extract(q, passages, question_vector=vector)
            candidates = [replace(c, score=0.0, answer_start=None, answer_end=None, answer="") for c in closest]
        candidates = fuse(candidates, settings.fusion_weight)
        confidence = None
        evidence: dict[str, float] = {}
        if reader.name == "neural" and candidates and candidates[0].score > 0:
            decider = self.decider(settings.decider_file) if settings.decider == "auto" else None
            # The features that embed the answer's sentence cost a call of the embedder: computed
            # when the decision weighs them, or when none decides (observations to fit one on).
            embedded = decider is None or decider.embeds
            evidence = decision_features(q, candidates, self.idf, self.index.embed if embedded else None, vector)
            if decider is not None:
                confidence = (decider.probability(evidence), decider.threshold)
        answer = decide(q, candidates, settings, reader, began, page_at=self.index.page_at, passages=passages,
                        confidence=confidence)
        return replace(answer, evidence=evidence) if evidence else answer

    def retrieve(self, question: str, top_k: int | None = None, **overrides) -> list[Passage]:
        """The passages hybrid retrieval gives for ``question``, best first (what ``ask`` reads)."""
        settings = self.settings.with_overrides(top_k=top_k, **overrides)
        q = check_question(question, settings.max_question_chars)
        self.index.refresh()
        return retrieve(self.index, q, settings.top_k, settings.retrieve_k, settings.rrf_k)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stemmed term over the index's chunks (BM25's form)."""
        n, df = self.index.count(), self.index.document_frequency(term)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def default_threshold(self, reader: str | None = None, **overrides) -> float:
        """The score at or above which ``ask`` answers when ``min_score`` is not given: the
        decision model's threshold where it decides (the neural reader with ``decider="auto"``),
        else the reader's own."""
        settings = self.settings.with_overrides(reader=reader, **overrides)
        chosen = self.reader(settings.reader, settings.reader_precision, settings.reader_dir, settings.reader_backend)
        decider = (self.decider(settings.decider_file) if settings.decider == "auto" and chosen.name == "neural"
                   else None)
        return decider.threshold if decider is not None else chosen.threshold

    def decider(self, path: str | os.PathLike | None = None) -> Decider | None:
        """The answer-or-abstain model in ``path`` (``QASettings.decider_file``), loaded once; with
        no path the shipped one (``qa/models/decider.json``), None when absent.

        Raises:
            ValueError: ``path`` cannot be read as a decision model; the message says how to make one.
        """
        key = None if path is None else str(Path(path).resolve())
        with self._lock:
            if key not in self._deciders:
                if key is None:
                    self._deciders[key] = Decider.load() if DECIDER_FILE.exists() else None
                else:
                    self._deciders[key] = Decider.load(key)
            return self._deciders[key]

    def ask_many(self, questions: Iterable[str], **overrides) -> list[Answer]:
        """``ask`` for each question, in order."""
        return [self.ask(q, **overrides) for q in questions]

    # ---- documents -----------------------------------------------------------------------------

    def add_files(self, paths: Iterable[str | Path], quiet: bool = True) -> IndexReport:
        """Index (or re-index) the given files; unreadable ones are reported in the result."""
        return self.index.add(paths, quiet=quiet)

    def remove_documents(self, sources: Iterable[str]) -> IndexReport:
        """Drop documents from the index by their source name (as listed by ``documents``)."""
        return self.index.remove(sources)

    def documents(self) -> list[DocumentInfo]:
        """Every indexed document with its chunk count."""
        return self.index.documents()

    def document_text(self, source: str) -> str | None:
        """The indexed text of ``source``: what citation offsets point into."""
        doc = self.index.document(source)
        return doc.text if doc else None


def read_passages(reader: Reader, question: str, passages: Sequence[Passage], early_exit: float,
                  question_vector: np.ndarray | None = None) -> list[Candidate]:
    """The reader's candidates from ``passages`` (best-retrieved first).

    A reader that reads passages apart (``Reader.reads_passages_apart``) reads the first
    passage alone and stops there when its best candidate scores at least ``early_exit``
    (``QASettings.early_exit``; 1.0 reads them all in one pass). Other readers read them
    all together. ``question_vector`` is passed on to the reader.
    """
    if not reader.reads_passages_apart or early_exit >= 1.0 or len(passages) < 2:
        return reader.extract(question, passages, question_vector=question_vector)
    first = reader.extract(question, passages[:1], question_vector=question_vector)
    if first and first[0].score >= early_exit:
        return first
    return first + reader.extract(question, passages[1:], question_vector=question_vector)


def fuse(candidates: Sequence[Candidate], reader_weight: float) -> list[Candidate]:
    """Rank candidates by ``(1 - w) * retrieval + w * reader`` (BERTserini's linear fusion).

    The retrieval score is the passage's fused rank score relative to the best passage,
    so both terms lie in [0, 1]. Ties keep the reader's order.
    """
    if not candidates:
        return []
    top = max(c.passage.score for c in candidates) or 1.0
    return sorted(candidates, key=lambda c: -((1 - reader_weight) * c.passage.score / top + reader_weight * c.score))


def decide(question: str, candidates: Sequence[Candidate], settings: QASettings, reader: Reader, began: float,
           page_at: Callable[[str, int], int | None] | None = None, passages: Sequence[Passage] = (),
           confidence: tuple[float, float] | None = None) -> Answer:
    """Turn ranked candidates into an Answer: answer or abstain, and cite.

    The answer's score is the best candidate's, or ``confidence[0]`` (the decision model's
    probability) when given. The threshold is ``settings.min_score``, else ``confidence[1]``
    (the decision model's) or the reader's own.
    ``page_at(source, offset)`` gives the page of a cited sentence (PDFs); without it the
    passage's first page is used. ``passages`` (what the reader was given) go into the Answer.
    """
    best = candidates[0] if candidates else None
    score = confidence[0] if confidence is not None else (best.score if best else 0.0)
    default = confidence[1] if confidence is not None else reader.threshold
    threshold = settings.min_score if settings.min_score is not None else default
    found = best is not None and best.score > 0 and score >= threshold
    text = ""
    if found:
        text = best.answer if best.answer_start is not None else best.sentence
    withheld = best.answer if best is not None and not found and best.answer_start is not None else ""
    citations: list[Citation] = []
    seen: set[tuple[str, int, int]] = set()
    for c in candidates:
        key = (c.passage.source, c.sentence_start, c.sentence_end)
        if key in seen:
            continue
        seen.add(key)
        same_answer = found and c.answer_start is not None and c.answer == text
        citations.append(
            Citation(
                source=c.passage.source, start=c.sentence_start, end=c.sentence_end, quote=c.sentence,
                page=page_at(c.passage.source, c.sentence_start) if page_at else c.passage.page,
                answer_start=c.answer_start if same_answer else None,
                answer_end=c.answer_end if same_answer else None, score=round(c.score, 4),
                context_start=c.passage.start, context_end=c.passage.end, context=c.passage.text,
            )
        )
        if len(citations) >= settings.top_k:
            break
    return Answer(
        question=question, text=text, found=found, score=round(score, 4), withheld=withheld,
        citations=tuple(citations), reader=reader.name, elapsed_ms=round((time.perf_counter() - began) * 1000, 2),
        passages=tuple(passages),
    )


def open_default_index(documents: str | Path = DEFAULT_DOCUMENTS_DIR, path: str | Path = DEFAULT_INDEX_DIR) -> Index:
    """The default index over ``seeds/``, built the first time it is needed."""
    try:
        return Index.open(path)
    except IndexNotFound:
        index = Index.open(path, IndexSettings(show_progress=False), create=True)
        index.build(documents, quiet=True)
        return index


def answer_from_context(question: str, context: str, source: str = "context", reader: Reader | str = "sentence",
                        settings: QASettings | None = None) -> Answer:
    """Answer ``question`` from one given text, without retrieval (closed-book evaluation).

    Citation offsets point into ``context``.
    """
    settings = settings or QASettings()
    q = check_question(question, settings.max_question_chars)
    began = time.perf_counter()
    passage = Passage(chunk_id=-1, source=source, start=0, end=len(context), text=context, score=1.0)
    if isinstance(reader, str):
        reader = context_reader(reader, settings)
    candidates = reader.extract(q, [passage])
    return decide(q, candidates, settings, reader, began, passages=[passage])
