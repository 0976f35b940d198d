"""Ask questions of your own documents; get extractive answers with exact citations.

Example:
    >>> from qa import ask
    >>> answer = ask("who is Rob Strayer?")      # doctest: +SKIP
    >>> answer.text                              # doctest: +SKIP
    'State Department official'

Importing ``qa`` loads no model library: the embedding model and the neural reader load
(and import torch) when the first question needs them.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

from index import Index
from index.backends import is_milvus
from qa.conversation import Conversation
from qa.engine import DEFAULT_INDEX_DIR, Engine, QuestionError, answer_from_context, check_index_argument
from qa.settings import QASettings
from qa.types import Answer, Candidate, Citation, Passage

__all__ = [
    "Answer", "Candidate", "Citation", "Conversation", "DEFAULT_INDEX_DIR", "Engine", "Passage", "QASettings", "QuestionError",
    "answer_from_context", "ask", "default_engine",
]

_engines: dict[str, Engine] = {}
_engines_by_index: weakref.WeakKeyDictionary[Index, Engine] = weakref.WeakKeyDictionary()
_engines_lock = threading.Lock()


def default_engine(index: Index | str | Path | None = None) -> Engine:
    """A shared Engine per index (path or opened Index; the default index over seeds/ when None).

    Raises:
        TypeError: ``index`` is none of those; the message names it.
    """
    check_index_argument(index)
    with _engines_lock:
        if isinstance(index, Index):
            if index not in _engines_by_index:
                _engines_by_index[index] = Engine(index)
            return _engines_by_index[index]
        key = "" if index is None else str(index) if is_milvus(str(index)) else str(Path(index).resolve())
        if key not in _engines:
            _engines[key] = Engine(index)
        return _engines[key]


def ask(question: str, index: Index | str | Path | None = None, **overrides) -> Answer:
    """Answer ``question`` from the documents in ``index``.

    Args:
        question: the question.
        index: an index path or opened Index; None uses the default index over seeds/.
        **overrides: QASettings fields for this call (top_k, reader, min_score, ...).

    Returns:
        The Answer, with citations best first.

    Raises:
        QuestionError: the question is empty, too long or not text.
        TypeError, ValueError: an override or ``index`` of the wrong type or out of range;
            the message names the value and what to pass instead.
    """
    return default_engine(index).ask(question, **overrides)
