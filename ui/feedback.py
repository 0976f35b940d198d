"""Thumbs up/down on answers, kept as a test set the evaluation tool reads.

Each rating appends one JSON line::

    {"question": "who is Rob Strayer?", "answers": ["State Department official"],
     "source": "/path/to/cited/file.txt", "context": "...the cited passage...",
     "prediction": "State Department official", "rating": "up", "timestamp": "2026-..."}

``answers`` are the gold answers: the given answer on thumbs-up, the correction on
thumbs-down, ``[]`` when the user says the documents do not answer the question.
``qa.eval.datasets.load_jsonl`` reads the file as it is.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from qa import Answer, Citation

RATINGS = ("up", "down")


class FeedbackError(ValueError):
    """Feedback that cannot become a test-set record; the message says what to add."""


@dataclass(frozen=True)
class FeedbackRecord:
    question: str
    answers: tuple[str, ...]
    source: str
    context: str
    prediction: str
    rating: str
    timestamp: str

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answers": list(self.answers),
            "source": self.source,
            "context": self.context,
            "prediction": self.prediction,
            "rating": self.rating,
            "timestamp": self.timestamp,
        }


def make_record(answer: Answer, rating: str, correction: str = "", not_answerable: bool = False,
                citation: Citation | None = None, now: datetime | None = None) -> FeedbackRecord:
    """The test-set record for a rating of ``answer``.

    Args:
        answer: the rated answer.
        rating: "up" (the answer is right) or "down" (it is wrong).
        correction: the right answer, on thumbs-down.
        not_answerable: the user says the documents do not answer the question.
        citation: the passage the record points at (default: the answer's first citation).
        now: the timestamp (default: the current UTC time).

    Raises:
        FeedbackError: the rating is unknown, the answer cites no passage, or a thumbs-down
            gives neither a correction nor "not answerable" (there would be no gold answer).
    """
    if rating not in RATINGS:
        raise FeedbackError(f"rating must be one of {RATINGS}, got {rating!r}")
    citation = citation or (answer.citations[0] if answer.citations else None)
    if citation is None:
        raise FeedbackError("this answer cites no passage, so it cannot become a test question; add documents first")
    correction = correction.strip()
    if not_answerable:
        answers: tuple[str, ...] = ()
    elif rating == "up":
        answers = (answer.text,) if answer.found else ()
    elif correction:
        answers = (correction,)
    else:
        raise FeedbackError(
            "a thumbs-down needs the right answer: type it as the correction, or tick "
            "\"The documents don't answer this\", then rate again"
        )
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    return FeedbackRecord(
        question=answer.question, answers=answers, source=citation.source, context=citation.context,
        prediction=answer.text, rating=rating, timestamp=stamp,
    )


class FeedbackLog:
    """An append-only JSONL file of feedback records, safe to share between threads.

    Example:
        >>> log = FeedbackLog(".data/feedback.jsonl")                  # doctest: +SKIP
        >>> log.append(make_record(answer, "up"))                      # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: FeedbackRecord) -> Path:
        """Append ``record`` as one line; returns the file's path."""
        line = json.dumps(record.to_dict(), ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
        return self.path

    def records(self) -> list[dict]:
        """Every record written so far (for tests and review)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
