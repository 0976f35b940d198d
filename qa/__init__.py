"""Ask questions of your own documents; get extractive answers with exact citations.

Example:
    >>> from qa import ask
    >>> answer = ask("who is Rob Strayer?")      # doctest: +SKIP
    >>> answer.text                              # doctest: +SKIP
    'State Department official'
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from qa.settings import QASettings
from qa.types import Answer, Candidate, Citation, Passage

if TYPE_CHECKING:
    from index import Index
    from qa.engine import DEFAULT_INDEX_DIR, Engine, QuestionError, answer_from_context

# The engine (and with it FAISS, bm25s and the embedder) is imported on first use, so
# `qa.neural` and `python -m qa.train_reader` run where only torch and transformers are.
_ENGINE_NAMES = ("DEFAULT_INDEX_DIR", "Engine", "QuestionError", "answer_from_context")


def __getattr__(name: str):
    if name in _ENGINE_NAMES:
        from qa import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")


__all__ = [
    "Answer", "Candidate", "Citation", "DEFAULT_INDEX_DIR", "Engine", "Passage", "QASettings", "QuestionError",
    "answer_from_context", "ask", "default_engine",
]

_engines: dict[str, Engine] = {}
_engines_by_index: weakref.WeakKeyDictionary[Index, Engine] = weakref.WeakKeyDictionary()
_engines_lock = threading.Lock()


def default_engine(index: Index | str | Path | None = None) -> Engine:
    """A shared Engine per index (path or opened Index; the default index over seeds/ when None)."""
    from index import Index
    from qa.engine import Engine

    with _engines_lock:
        if isinstance(index, Index):
            if index not in _engines_by_index:
                _engines_by_index[index] = Engine(index)
            return _engines_by_index[index]
        key = str(Path(index).resolve()) if index is not None else ""
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
    """
    return default_engine(index).ask(question, **overrides)
