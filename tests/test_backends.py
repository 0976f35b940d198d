"""The engine's behaviours on every store: a folder, Milvus Lite, and a Milvus server.

The server is Milvus Lite's own gRPC server on a loopback port (``milvus_server`` in
conftest), or the Milvus that ``MILVUS_URI`` names. The same tests run on every backend
(parametrised): the seed answer with a citation that
holds, abstention, incremental builds, removal, and a store built with another model refused.
"""

from __future__ import annotations

import shutil

import pytest

from index import Index, IndexMismatch, IndexSettings
from qa import Engine, QASettings
from tests.conftest import SEED_FILE, SEEDS

BACKENDS = ("folder", "milvus", "milvus-server")


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param.startswith("milvus"):
        pytest.importorskip("milvus_lite", reason="Milvus Lite is in requirements.txt; pip install -r requirements.txt")
    return request.param


@pytest.fixture
def open_at(backend, tmp_path, request):
    """Opens the test's index on ``backend`` (a fresh collection on the session's Milvus server)."""
    if backend == "folder":
        return lambda **kw: Index.open(tmp_path / "index", **kw)
    if backend == "milvus":
        return lambda **kw: Index.open(f"milvus:{tmp_path / 'index.db'}", **kw)
    server = request.getfixturevalue("milvus_server")
    collection = "t_" + tmp_path.name.replace("-", "_")[-40:]
    return lambda **kw: Index.open(server, collection=collection, lease_settle=0.2, **kw)


@pytest.fixture
def built(open_at, tmp_path, embedder):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    index = open_at(create=True, embedder=embedder)
    report = index.build(docs, quiet=True)
    assert len(report.indexed) == 1
    yield index, docs
    index.close()


def test_the_seed_answer_and_its_citation_hold(built):
    index, docs = built
    answer = Engine(index).ask("who is Rob Strayer?")
    assert answer.found and answer.text == "State Department official"
    c = answer.citations[0]
    text = index.document(c.source).text
    assert text[c.start:c.end] == c.quote and text[c.answer_start:c.answer_end] == answer.text
    assert text == (docs / SEED_FILE.name).read_text(encoding="utf-8")
    assert (c.start, c.end) == (1828, 1990)


def test_an_unanswered_question_abstains(built):
    index, _ = built
    answer = Engine(index, QASettings(reader="sentence")).ask("What is the boiling point of liquid nitrogen?")
    assert not answer.found and answer.text == ""


def test_builds_are_incremental_and_removal_drops_a_document(built):
    index, docs = built
    (docs / "lighthouse.txt").write_text("The lighthouse keeper of Port Ellen is Marguerite Okafor.\n", encoding="utf-8")
    report = index.build(docs, quiet=True)
    assert [s.rsplit("/", 1)[-1] for s in report.indexed] == ["lighthouse.txt"]
    assert [s.rsplit("/", 1)[-1] for s in report.unchanged] == [SEED_FILE.name]
    assert Engine(index).ask("Who is the lighthouse keeper of Port Ellen?").text == "Marguerite Okafor"
    removed = index.remove([docs / "lighthouse.txt"])
    assert len(removed.removed) == 1 and len(index.documents()) == 1
    assert not any("Okafor" in index.chunks([cid])[cid].text for cid, _ in index.search_terms("Okafor lighthouse", 5))


def test_a_store_built_with_another_model_is_refused(built, open_at, embedder):
    index, _ = built
    index.close()
    with pytest.raises(IndexMismatch, match="(?i)rebuild"):
        open_at(settings=IndexSettings(model_name="another/model"), embedder=embedder)
