"""Rule-based extraction: pick the sentence that best supports an answer, then a short span in it.

This is the reader that needs no trained model (and the fallback when the neural
reader is not installed). Sentences are scored by how much of the question's
IDF-weighted terms they contain (and their neighbours), plus embedding similarity;
the short answer inside the best sentences comes from ``qa.readers.spans``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from index.text import terms
from qa.readers.sentences import split_sentences
from qa.readers.spans import extract_span, question_terms, question_type, question_words
from qa.types import Candidate, Passage


class SentenceReader:
    """Find the supporting sentence, then a short answer inside it, without a trained model.

    Args:
        embed: texts -> unit vectors (the index's embedder), or None to score by terms only.
        document_frequency: stemmed term -> number of chunks containing it, or None to
            use the passages themselves as the corpus.
        corpus_size: () -> number of chunks the frequencies count over, asked at every
            question (an index grows and shrinks while the reader lives).

    Example:
        >>> r = SentenceReader()
        >>> p = Passage(0, "a.txt", 0, 39, "Paris is the capital. It was founded.", 1.0)
        >>> r.extract("What is the capital?", [p])[0].sentence
        'Paris is the capital.'
    """

    name = "sentence"
    threshold = 0.5
    # Sentences of all passages compete for one shortlist and, without an index, the term
    # weights count over the passages read: a passage's candidates depend on the others.
    reads_passages_apart = False

    def __init__(self, embed: Callable[[list[str]], np.ndarray] | None = None,
                 document_frequency: Callable[[str], int] | None = None,
                 corpus_size: Callable[[], int] | None = None) -> None:
        self.embed = embed
        self.document_frequency = document_frequency
        self.corpus_size = corpus_size

    # ---- scoring sentences ---------------------------------------------------------------------

    def _weights(self, q_terms: list[str], passages: Sequence[Passage]) -> dict[str, float]:
        n = self.corpus_size() if self.corpus_size is not None else 0
        if self.document_frequency is not None and n > 0:
            df = {t: self.document_frequency(t) for t in q_terms}
        else:
            sets = [set(terms(p.text)) for p in passages]
            n = max(len(sets), 1)
            df = {t: sum(t in s for s in sets) for t in q_terms}
        return {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in q_terms}

    def extract(self, question: str, passages: Sequence[Passage], question_vector: np.ndarray | None = None) -> list[Candidate]:
        """Candidates for every well-supported sentence of ``passages``, best first.

        Args:
            question: the question.
            passages: retrieved passages.
            question_vector: the question's embedding when the caller has it already (the
                engine does, from retrieval); saves embedding it again.

        Returns:
            Up to 24 candidates (sentences with a short answer inside when one is found),
            scores in [0, 1]; [] only when the passages hold no sentence.
        """
        q_terms = question_terms(question)
        if not passages:
            return []
        weights = self._weights(q_terms, passages)
        total = sum(weights.values()) or 1.0
        rows = []  # (passage, s, e, coverage_sentence, coverage_context)
        for p in passages:
            spans = split_sentences(p.text)
            sent_terms = [set(terms(p.text[s:e])) for s, e in spans]
            for i, (s, e) in enumerate(spans):
                ctx = sent_terms[i] | (sent_terms[i - 1] if i else set()) | (sent_terms[i + 1] if i + 1 < len(spans) else set())
                cov_s = sum(w for t, w in weights.items() if t in sent_terms[i]) / total
                cov_c = sum(w for t, w in weights.items() if t in ctx) / total
                rows.append((p, s, e, cov_s, cov_c))
        if not rows:
            return []
        # Embedding similarity only for the sentences worth a closer look.
        rows.sort(key=lambda r: -(r[3] + 0.5 * r[4]))
        rows = rows[:24]
        cosines = np.zeros(len(rows))
        if self.embed is not None:
            vectors = self.embed([question] + [r[0].text[r[1]:r[2]] for r in rows]) if question_vector is None else \
                np.vstack([question_vector[None, :], self.embed([r[0].text[r[1]:r[2]] for r in rows])])
            cosines = vectors[1:] @ vectors[0]
        qtype = question_type(question)
        q_words = question_words(question)
        candidates = []
        for (p, s, e, cov_s, cov_c), cos in zip(rows, cosines):
            sentence = p.text[s:e]
            span, typed = extract_span(question, sentence, set(q_terms), q_words, qtype)
            sim = min(max((float(cos) - 0.1) / 0.6, 0.0), 1.0) if self.embed is not None else cov_s
            score = 0.45 * cov_s + 0.25 * cov_c + 0.30 * sim
            # A span of the type the question asks for is better evidence than a nearby phrase.
            score *= 1.0 if typed else (0.92 if span is not None else 0.85)
            score = min(max(score, 0.0), 1.0)
            a_start = a_end = None
            answer = ""
            if span is not None:
                a_start, a_end = p.start + s + span[0], p.start + s + span[1]
                answer = sentence[span[0]:span[1]]
            candidates.append(
                Candidate(passage=p, sentence_start=p.start + s, sentence_end=p.start + e, sentence=sentence,
                          answer_start=a_start, answer_end=a_end, answer=answer, score=score, reader=self.name)
            )
        candidates.sort(key=lambda c: (-c.score, -c.passage.score))
        return candidates
