"""The Milvus store against the folder index: same retrieval, and copies without embedding again."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pymilvus")

from index import Index, IndexSettings  # noqa: E402
from index.backends import StoreMismatch, StoreNotFound, open_store  # noqa: E402
from index.copy import copy_index  # noqa: E402
from index.loaders import load_document  # noqa: E402
from qa.retrieval import retrieve  # noqa: E402
from index.types import Chunk  # noqa: E402
from tests.conftest import REPO_ROOT, SEED_FILE  # noqa: E402
from tests.test_milvus import PAGED, SHORT, fill, manifest  # noqa: E402

QUESTIONS = [json.loads(line)["question"] for line in (REPO_ROOT / "tests/data/seed_questions.jsonl").read_text().splitlines()[:8]]
QUESTIONS += ["Who trains falcons?", "Why do sea otters hold hands?"]


@pytest.fixture(scope="module")
def folder_index(tmp_path_factory, embedder):
    """The folder index over the seed article and the two hand-made documents, small chunks."""
    index = Index.open(tmp_path_factory.mktemp("folder") / "index", create=True, embedder=embedder,
                       settings=IndexSettings(chunk_size=200, chunk_overlap=20, show_progress=False))
    index.add_documents([load_document(str(SEED_FILE)), PAGED, SHORT])
    return index


@pytest.fixture(scope="module")
def milvus_twin(tmp_path_factory, folder_index, embedder):
    """A Milvus Lite store holding exactly the folder index's documents and chunks."""
    store = open_store(f"milvus:{tmp_path_factory.mktemp('milvus') / 'twin.db'}", create=True)
    corpus = []
    for info in folder_index.documents():
        chunks = folder_index.chunks_of(info.source)
        corpus.append((folder_index.document(info.source), chunks, embedder.encode([c.text for c in chunks])))
    fill(store, embedder, corpus)
    yield store
    store.close()


def spans(hits, chunks) -> list[tuple[str, int]]:
    return [(chunks[i].source, chunks[i].start) for i, _ in hits]


@pytest.mark.parametrize("question", QUESTIONS)
def test_same_retrieval_as_the_folder_index(question, folder_index, milvus_twin, embedder):
    vector = embedder.encode([question])[0]
    folder_dense, milvus_dense = folder_index.search_dense(vector, 5), milvus_twin.search_dense(vector, 5)
    folder_terms, milvus_terms = folder_index.search_terms(question, 5), milvus_twin.search_terms(question, 5)
    f_chunks = folder_index.chunks([i for i, _ in folder_dense + folder_terms])
    m_chunks = milvus_twin.chunks([i for i, _ in milvus_dense + milvus_terms])
    assert spans(milvus_dense, m_chunks) == spans(folder_dense, f_chunks)
    np.testing.assert_allclose([s for _, s in milvus_dense], [s for _, s in folder_dense], atol=1e-4)
    assert spans(milvus_terms, m_chunks) == spans(folder_terms, f_chunks)
    np.testing.assert_allclose([s for _, s in milvus_terms], [s for _, s in folder_terms], rtol=1e-3)
    folder = retrieve(folder_index, question, top_k=3, question_vector=vector)
    milvus = retrieve(milvus_twin, question, top_k=3, question_vector=vector)
    assert [(p.source, p.start, p.end) for p in milvus] == [(p.source, p.start, p.end) for p in folder]


def test_same_document_frequencies_as_the_folder_index(folder_index, milvus_twin):
    for term in ("huawei", "china", "hacker", "falcon", "otter", "strayer"):
        assert milvus_twin.document_frequency(term) == folder_index.document_frequency(term), term


def test_copy_between_milvus_stores_keeps_vectors_and_skips_unchanged(tmp_path, milvus_twin, embedder):
    dst = f"milvus:{tmp_path / 'copy.db'}"
    report = copy_index(milvus_twin.location, dst, batch_documents=2)
    assert sorted(report.indexed) == sorted(milvus_twin.hashes()) and report.chunks_added == milvus_twin.count()
    copied = open_store(dst)
    try:
        assert copied.hashes() == milvus_twin.hashes() and copied.manifest()["model"] == embedder.name
        for info in milvus_twin.documents():
            assert copied.document(info.source) == milvus_twin.document(info.source)
            a, b = milvus_twin.chunks_of(info.source), copied.chunks_of(info.source)
            assert [(c.start, c.end, c.text, c.page) for c in a] == [(c.start, c.end, c.text, c.page) for c in b]
            np.testing.assert_array_equal(copied.vectors([c.id for c in b]), milvus_twin.vectors([c.id for c in a]))
    finally:
        copied.close()
    again = copy_index(milvus_twin.location, dst)
    assert again.indexed == () and len(again.unchanged) == len(milvus_twin.hashes())


def test_copy_refuses_another_model_and_a_missing_source(tmp_path, milvus_twin, embedder):
    other = open_store(f"milvus:{tmp_path / 'other.db'}", create=True)
    with other.writer(manifest(embedder, model="intfloat/e5-small-v2")) as w:
        w.add(SHORT, [Chunk(0, SHORT.source, 0, len(SHORT.text), SHORT.text)], embedder.encode([SHORT.text]))
    location = other.location
    other.close()
    with pytest.raises(StoreMismatch, match="e5-small-v2"):
        copy_index(milvus_twin.location, location)
    with pytest.raises(StoreNotFound):
        copy_index(f"milvus:{tmp_path / 'absent.db'}", f"milvus:{tmp_path / 'new.db'}")


def test_copy_folder_to_milvus_and_back(tmp_path, milvus_twin):
    folder_store = pytest.importorskip("index.backends.folder", reason="the folder store is not in this tree")
    assert folder_store.FolderStore
    folder = tmp_path / "folder-index"
    copy_index(milvus_twin.location, str(folder))
    back = f"milvus:{tmp_path / 'back.db'}"
    copy_index(str(folder), back)
    src, dst, mid = milvus_twin, open_store(back), open_store(str(folder))
    try:
        assert dst.hashes() == mid.hashes() == src.hashes()
        for info in src.documents():
            ids = [c.id for c in src.chunks_of(info.source)]
            np.testing.assert_array_equal(mid.vectors([c.id for c in mid.chunks_of(info.source)]), src.vectors(ids))
            np.testing.assert_array_equal(dst.vectors([c.id for c in dst.chunks_of(info.source)]), src.vectors(ids))
            assert dst.document(info.source) == src.document(info.source)
    finally:
        dst.close()
        mid.close()
