"""The reader interface: a question and retrieved passages in, scored answer candidates out.

Every reader (the rule-based ``qa.readers.sentence.SentenceReader``, the trained
``qa.readers.neural.NeuralReader``) implements ``Reader``; the engine knows readers only
through it.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from qa.types import Candidate, Passage


class Reader(Protocol):
    """What the engine needs of a reader.

    Attributes:
        name: the reader's name, recorded in every answer ("sentence", "neural").
        threshold: default score at or above which the best candidate counts as an answer.
        reads_passages_apart: True when a passage's candidates do not depend on the other
            passages read with it. Only then may the engine read the best-retrieved passage
            alone first and stop there (``QASettings.early_exit``).
    """

    name: str
    threshold: float
    reads_passages_apart: bool

    def extract(self, question: str, passages: Sequence[Passage],
                question_vector: np.ndarray | None = None) -> list[Candidate]:
        """Candidates found in ``passages``, best first, each with a score in [0, 1].

        ``question_vector`` is the question's embedding from retrieval (unit length, the
        index's model); a reader that compares embeddings uses it instead of embedding the
        question again, others ignore it. A candidate's offsets point into the passage's
        document (``passage.start`` is where ``passage.text`` begins). Return [] when
        nothing in the passages answers.
        """
        ...
