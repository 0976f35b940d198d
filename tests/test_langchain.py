"""The engine inside LangChain chains: the retriever and the extractive-answer Runnable."""

from __future__ import annotations

import pytest
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough

from qa.langchain import DocumentRetriever, answer_runnable


@pytest.fixture(scope="module")
def engine(seed_index):
    from qa import Engine

    return Engine(seed_index)


def test_the_retriever_returns_passages_with_their_spans(engine, seed_index):
    docs = DocumentRetriever(engine=engine, top_k=3).invoke("who is Rob Strayer?")
    assert 1 <= len(docs) <= 3
    assert any("Rob Strayer" in d.page_content for d in docs[:2])
    for d in docs:
        meta = d.metadata
        text = seed_index.document(meta["source"]).text
        assert text[meta["start"]:meta["end"]] == d.page_content  # the span points into the document
        assert meta["score"] > 0 and meta["page"] is None


def test_both_run_inside_an_lcel_chain(engine):
    retriever = DocumentRetriever(engine=engine, top_k=2)
    chain = (
        RunnableParallel(passages=retriever, answer=answer_runnable(engine=engine), question=RunnablePassthrough())
        | RunnableLambda(lambda r: {"question": r["question"], "answer": r["answer"]["text"],
                                    "sources": sorted({d.metadata["source"] for d in r["passages"]})})
    )
    out = chain.invoke("who is Rob Strayer?")
    assert out["answer"] == "State Department official"
    assert out["sources"] and out["sources"][0].endswith("000_ffecf142e84792ea.txt")
    assert answer_runnable(engine=engine).invoke({"question": "who is Rob Strayer?"})["found"] is True


def test_bad_settings_fail_when_the_runnable_is_made(engine):
    with pytest.raises(TypeError, match="unknown setting"):
        answer_runnable(engine=engine, topk=3)
