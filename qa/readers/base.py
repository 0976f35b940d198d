"""The reader interface: a question and retrieved passages in, scored answer candidates out.

Every reader (the rule-based ``SentenceReader`` in ``qa.extract``, the trained neural
reader) implements ``Reader``; the engine only calls ``extract``.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from qa.types import Candidate, Passage


class Reader(Protocol):
    name: str
    threshold: float  # default score at or above which the best candidate counts as an answer

    def extract(self, question: str, passages: Sequence[Passage]) -> list[Candidate]:
        """Candidates found in ``passages``, best first, each with a score in [0, 1].

        A candidate's offsets point into the passage's document (``passage.start`` is
        where ``passage.text`` begins). Return [] when nothing in the passages answers.
        """
        ...
