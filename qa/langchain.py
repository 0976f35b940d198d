"""LangChain adapters: this engine's retriever and its extractive answers inside your own chains.

Example:
    >>> from qa.langchain import DocumentRetriever, answer_runnable          # doctest: +SKIP
    >>> retriever = DocumentRetriever.from_index(".index/default", top_k=3)  # doctest: +SKIP
    >>> docs = retriever.invoke("who is Rob Strayer?")                       # doctest: +SKIP
    >>> docs[0].metadata["source"], docs[0].metadata["start"]                # doctest: +SKIP
    >>> chain = answer_runnable(".index/default") | (lambda a: a["text"])   # doctest: +SKIP
    >>> chain.invoke("who is Rob Strayer?")                                  # doctest: +SKIP
    'State Department official'
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict, Field

from qa.settings import QASettings


def _engine(index: Any = None, engine: Any = None):
    if engine is not None:
        return engine
    from qa import default_engine

    return default_engine(index)


class DocumentRetriever(BaseRetriever):
    """Hybrid (dense + BM25) retrieval over an index, as LangChain ``Document``s.

    Each document's ``page_content`` is the passage text; ``metadata`` holds ``source``,
    ``page`` (PDFs, else None), ``start``/``end`` (the passage's character span in the
    source document's text), ``score`` (fused rank score), ``dense_score``, ``dense_rank``,
    ``term_rank`` and ``chunk_id``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Any = Field(description="a qa.Engine")
    top_k: int = Field(default=5, gt=0, description="passages returned per query")

    @classmethod
    def from_index(cls, index: Any = None, top_k: int = 5) -> DocumentRetriever:
        """A retriever over ``index`` (a location or opened Index; None: the default index over seeds/)."""
        return cls(engine=_engine(index), top_k=top_k)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        passages = self.engine.retrieve(query, top_k=self.top_k)
        return [
            Document(
                page_content=p.text,
                metadata={"source": p.source, "page": p.page, "start": p.start, "end": p.end, "score": p.score,
                          "dense_score": p.dense_score, "dense_rank": p.dense_rank, "term_rank": p.term_rank,
                          "chunk_id": p.chunk_id},
            )
            for p in passages
        ]


def answer_runnable(index: Any = None, engine: Any = None, **overrides) -> Runnable:
    """A Runnable from a question (or ``{"question": ...}``) to ``Answer.to_dict()``.

    Args:
        index: an index location or opened Index (None: the default index over seeds/).
        engine: an Engine to use instead.
        **overrides: ``QASettings`` fields for every call (``top_k=3``, ``min_score=0.5``...).
    """
    QASettings().with_overrides(**overrides)  # unknown or invalid settings fail here, not at the first call
    eng = _engine(index, engine)

    def answer(question: str | dict) -> dict:
        text = question.get("question") if isinstance(question, dict) else question
        return eng.ask(text, **overrides).to_dict()

    return RunnableLambda(answer, name="extractive_answer")
