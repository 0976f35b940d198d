"""The Milvus store on Milvus Lite (a folder under tmp): every Store method on known data.

Vectors are the real all-MiniLM-L6-v2 embeddings of the chunks; the documents are the
seed article and two small hand-made ones whose terms are known.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("pymilvus")

from index.backends import StoreMismatch, StoreNotFound, open_store  # noqa: E402
from index.backends.base import FORMAT_VERSION  # noqa: E402
from index.backends.milvus import MilvusStore, milvus_options_from  # noqa: E402
from index.chunking import chunk_document  # noqa: E402
from index.loaders import load_document  # noqa: E402
from index.text import terms  # noqa: E402
from index.types import Document  # noqa: E402
from tests.conftest import REPO_ROOT, SEED_FILE  # noqa: E402

FAST_LEASE = {"lease_ttl": 3.0}
# Non-ASCII text, quotes and a backslash in the source name, pages and raw segments: all must survive a round trip.
PAGED = Document(source='/docs/r\u00e9sum\u00e9 "final"\\v2.pdf',
                 text="Zo\u00eb Quist trains falcons in \u00c5lesund.\nShe won the 2019 falconry prize.\n" * 3,
                 sha256="a" * 64, kind="pdf", pages=(0, 75), raw_segments=((0, 10, 20), (30, 70, 5)))
SHORT = Document(source="/docs/otters.txt", text="Sea otters hold hands while sleeping so they do not drift apart.",
                 sha256="b" * 64, kind="txt")


def manifest(embedder, model: str | None = None) -> dict:
    return {"format_version": FORMAT_VERSION, "model": model or embedder.name, "dimension": embedder.dimension,
            "chunk_size": 200, "chunk_overlap": 20}


@pytest.fixture(scope="module")
def corpus(embedder):
    """(document, chunks, vectors) for the seed article and the two hand-made documents."""
    out = []
    for doc in (load_document(str(SEED_FILE)), PAGED, SHORT):
        chunks = chunk_document(doc, 200, 20)
        out.append((doc, chunks, embedder.encode([c.text for c in chunks])))
    return out


def fill(store, embedder, corpus) -> dict[str, list[int]]:
    ids = {}
    with store.writer(manifest(embedder)) as w:
        for doc, chunks, vectors in corpus:
            ids[doc.source] = w.add(doc, chunks, vectors)
    return ids


@pytest.fixture
def location(tmp_path):
    return f"milvus:{tmp_path / 'index.db'}"


def test_missing_store_is_not_found_and_empty_store_reads_empty(location, embedder):
    with pytest.raises(StoreNotFound, match="python -m index build"):
        open_store(location)
    store = open_store(location, create=True)
    try:
        assert store.manifest() is None and store.count() == 0 and store.documents() == []
        assert store.search_dense(np.ones(embedder.dimension, dtype=np.float32), 5) == []
        assert store.search_terms("otters", 5) == [] and store.document("x") is None and store.chunks_of("x") == []
    finally:
        store.close()


def test_every_read_method_on_known_documents(location, embedder, corpus):
    store = open_store(location, create=True)
    try:
        ids = fill(store, embedder, corpus)
        all_ids = [i for v in ids.values() for i in v]
        assert len(set(all_ids)) == len(all_ids) == store.count() == sum(len(c) for _, c, _ in corpus)
        assert store.manifest()["model"] == embedder.name
        assert store.hashes() == {d.source: d.sha256 for d, _, _ in corpus}
        assert [d.source for d in store.documents()] == sorted(d.source for d, _, _ in corpus)
        info = {d.source: d for d in store.documents()}[PAGED.source]
        assert (info.kind, info.chars, info.chunks) == ("pdf", len(PAGED.text), len(ids[PAGED.source]))
        for doc, chunks, vectors in corpus:
            assert store.document(doc.source) == doc
            stored = store.chunks_of(doc.source)
            assert [c.id for c in stored] == ids[doc.source]
            assert [(c.start, c.end, c.text, c.page) for c in stored] == [(c.start, c.end, c.text, c.page) for c in chunks]
            assert all(doc.text[c.start:c.end] == c.text for c in stored)
            np.testing.assert_array_equal(store.vectors(ids[doc.source][::-1]), vectors[::-1])
        assert store.chunks_of(PAGED.source)[-1].page == 2
        picked = store.chunks([ids[SHORT.source][0], ids[PAGED.source][1], 10**12])
        assert sorted(picked) == sorted([ids[SHORT.source][0], ids[PAGED.source][1]])
        with pytest.raises(KeyError):
            store.vectors([10**12])

        # A chunk's own vector finds it first, with cosine 1.
        seed_doc, seed_chunks, seed_vectors = corpus[0]
        (best, score), *_ = store.search_dense(seed_vectors[2], 3)
        assert best == ids[seed_doc.source][2] and score == pytest.approx(1.0, abs=1e-4)
        question = embedder.encode(["Why do sea otters hold hands?"])[0]
        assert store.search_dense(question, 1)[0][0] == ids[SHORT.source][0]

        # BM25 on the project's stemmed terms: positive scores, best first, only chunks holding a term.
        hits = store.search_terms("Which falconry prize did she win?", 10)
        assert hits and all(s > 0 for _, s in hits) and [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        texts = store.chunks([i for i, _ in hits])
        assert all({"falconri", "prize", "win", "won"} & set(terms(texts[i].text)) for i, _ in hits)
        assert store.search_terms("the of and", 5) == []
        assert store.search_terms("otters sleeping", 5)[0][0] == ids[SHORT.source][0]

        every = [c for d, _, _ in corpus for c in store.chunks_of(d.source)]
        for term in ("strayer", "falcon", "otter", "prize", "zzzunseen"):
            assert store.document_frequency(term) == sum(term in terms(c.text) for c in every), term
    finally:
        store.close()


def test_remove_reopen_and_refresh(location, embedder, corpus):
    store = open_store(location, create=True)
    other = None
    try:
        ids = fill(store, embedder, corpus)
        before = store.count()
        other = open_store(location)
        assert other.count() == before
        with store.writer(manifest(embedder)) as w:
            assert w.remove(SHORT.source) == len(ids[SHORT.source])
            assert w.remove("/never/indexed") == 0
            assert SHORT.source not in w.hashes()
        assert store.count() == before - len(ids[SHORT.source]) and SHORT.source not in store.hashes()
        assert store.document(SHORT.source) is None and store.chunks(ids[SHORT.source]) == {}
        assert all(i not in ids[SHORT.source] for i, _ in store.search_terms("sea otters", 10))
        assert store.document_frequency("otter") == 0
        assert other.refresh() is True and SHORT.source not in other.hashes()
        assert other.refresh() is False
    finally:
        store.close()
        if other is not None:
            other.close()
    reopened = open_store(location)
    try:
        assert reopened.hashes() == {d.source: d.sha256 for d, _, _ in corpus if d is not SHORT}
        assert reopened.document(PAGED.source) == PAGED
        with reopened.writer(manifest(embedder)) as w:     # ids stay unique after a reopen
            new = w.add(*corpus[2])
        assert not set(new) & {i for v in ids.values() for i in v}
    finally:
        reopened.close()


def test_changes_are_invisible_until_commit_and_an_error_rolls_back(location, embedder, corpus):
    store = open_store(location, create=True)
    reader = open_store(location)
    try:
        fill(store, embedder, corpus[:1])
        with pytest.raises(RuntimeError, match="boom"):
            with store.writer(manifest(embedder)) as w:
                w.add(*corpus[1])
                w.remove(corpus[0][0].source)
                reader.refresh()
                assert set(reader.hashes()) == {corpus[0][0].source}   # neither change shows yet
                assert reader.search_terms("falconry prize", 5) == []
                raise RuntimeError("boom")
        store.refresh()
        assert set(store.hashes()) == {corpus[0][0].source} and store.count() == len(corpus[0][1])
        assert store.document_frequency("falconri") == 0
    finally:
        reader.close()
        store.close()


KILLED_WRITER = """
import json, os, sys, numpy as np
from index.backends import open_store
from index.types import Chunk, Document
spec = json.load(open(sys.argv[1]))
store = open_store(spec["location"], lease_ttl=3.0)
w = store.writer(spec["manifest"]).__enter__()
w.remove(spec["remove"])
doc = Document.from_dict(spec["document"])
w.add(doc, [Chunk.from_dict(c) for c in spec["chunks"]], np.load(spec["vectors"]))
os._exit(9)   # killed before the commit
"""


def test_a_killed_writer_leaves_nothing_visible_and_the_next_writer_cleans_up(location, tmp_path, embedder, corpus):
    store = open_store(location, create=True)
    fill(store, embedder, corpus[:2])
    store.close()
    doc, chunks, vectors = corpus[2]
    np.save(tmp_path / "v.npy", vectors)
    spec = {"location": location, "manifest": manifest(embedder), "remove": corpus[0][0].source,
            "document": doc.to_dict(), "chunks": [c.to_dict() for c in chunks], "vectors": str(tmp_path / "v.npy")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    run = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path / "spec.json")], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 9, run.stderr[-2000:]
    store = open_store(location, lease_wait=30.0)
    try:
        expected = {d.source for d, _, _ in corpus[:2]}
        assert set(store.hashes()) == expected and store.search_terms("sea otters", 5) == []
        with store.writer(manifest(embedder)) as w:        # waits out the dead lease, then cleans up
            assert set(w.hashes()) == expected
        raw = store._client.query(store._chunks_name, filter="", output_fields=["count(*)"])
        assert raw[0]["count(*)"] == store.count() == sum(len(c) for _, c, _ in corpus[:2])
    finally:
        store.close()


def test_another_model_is_refused_with_a_rebuild_hint(location, embedder, corpus):
    store = open_store(location, create=True)
    try:
        fill(store, embedder, corpus[:1])
        with pytest.raises(StoreMismatch, match="Rebuild"):
            with store.writer(manifest(embedder, model="intfloat/e5-small-v2")):
                pass
        assert store.manifest()["model"] == embedder.name and len(store.hashes()) == 1
    finally:
        store.close()


def test_two_writer_threads_lose_no_document(location, embedder, corpus):
    doc, chunks, vectors = corpus[2]
    docs = [Document(source=f"/docs/t{i}.txt", text=doc.text, sha256=f"{i:064d}", kind="txt") for i in range(8)]
    open_store(location, create=True).close()
    errors: list[BaseException] = []

    def write(mine: list[Document]) -> None:
        store = open_store(location, **FAST_LEASE)
        try:
            for d in mine:
                with store.writer(manifest(embedder)) as w:
                    if d.source not in w.hashes():
                        w.add(d, [c.__class__(0, d.source, c.start, c.end, c.text, c.page) for c in chunks], vectors)
        except BaseException as e:
            errors.append(e)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(docs[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = open_store(location)
    try:
        assert set(store.hashes()) == {d.source for d in docs}
        assert store.count() == len(docs) * len(chunks)
        assert len({c.id for d in docs for c in store.chunks_of(d.source)}) == store.count()
    finally:
        store.close()


def test_a_second_process_gets_a_clear_busy_message(location, embedder):
    store = open_store(location, create=True)
    try:
        code = ("from index.backends import open_store, StoreBusy\n"
                f"try:\n    open_store({location!r})\nexcept StoreBusy as e:\n    print('BUSY', e)\n")
        run = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert "BUSY" in run.stdout and "one process" in run.stdout, run.stdout + run.stderr[-2000:]
    finally:
        store.close()
    reopened = open_store(location)   # free again once closed
    reopened.close()


def test_options_come_from_arguments_and_environment(tmp_path):
    class Args:
        collection = "team_docs"
        milvus_token_file = None

    assert milvus_options_from(Args(), env={"MILVUS_TOKEN": "root:Milvus"}) == {"collection": "team_docs", "token": "root:Milvus"}
    (tmp_path / "token").write_text("secret-key\n")
    Args.milvus_token_file = str(tmp_path / "token")
    assert milvus_options_from(Args(), env={"MILVUS_TOKEN": "ignored"})["token"] == "secret-key"
    assert milvus_options_from(None, env={}) == {}
    with pytest.raises(ValueError, match="collection"):
        MilvusStore.open(f"milvus:{tmp_path / 'x.db'}", create=True, collection="bad-name")


def test_collections_keep_indexes_apart(location, embedder, corpus):
    first = open_store(location, create=True, collection="first")
    second = open_store(location, create=True, collection="second")
    try:
        fill(first, embedder, corpus[:1])
        assert second.count() == 0 and second.hashes() == {}
    finally:
        first.close()
        second.close()


def test_a_server(milvus_server, embedder, corpus):
    location = milvus_server
    collection = f"test_{os.getpid()}"
    store = open_store(location, create=True, collection=collection, token=os.environ.get("MILVUS_TOKEN"))
    try:
        ids = fill(store, embedder, corpus)
        assert store.document(PAGED.source) == PAGED
        assert store.search_terms("otters sleeping", 3)[0][0] == ids[SHORT.source][0]
        assert store.document_frequency("otter") == 1
        with store.writer(manifest(embedder)) as w:
            w.remove(SHORT.source)
        assert SHORT.source not in store.hashes()
    finally:
        for suffix in ("chunks", "docs", "df", "meta"):
            store._client.drop_collection(f"{collection}_{suffix}")
        store.close()


def test_a_removal_longer_than_one_row_can_list_is_one_commit(location, embedder, monkeypatch):
    import index.backends.milvus as milvus_module

    monkeypatch.setattr(milvus_module, "HIDDEN_PER_ROW", 2)  # 5 removals then need 3 rows of their own
    vector = embedder.encode(["a note"])
    notes = [Document(source=f"/notes/{n}.txt", text=f"Note {n} is about otter number {n}.", kind="txt",
                      sha256=f"{n:064d}") for n in range(7)]
    store = open_store(location, create=True)
    try:
        with store.writer(manifest(embedder)) as w:
            for doc in notes:
                w.add(doc, chunk_document(doc, 200, 20), vector)
        upserted = []
        upsert = store._client.upsert
        monkeypatch.setattr(store._client, "upsert", lambda name, rows: (upserted.extend(
            (r["key"], json.loads(r["value"])) for r in rows if name == store._meta_name and r["key"] != "lease"),
            upsert(name, rows))[1])
        with store.writer(manifest(embedder)) as w:
            for doc in notes[:5]:
                w.remove(doc.source)
        # One commit: three rows list the five documents, then the state row names the rows.
        assert [k for k, _ in upserted[:4]] == [f"hidden-{upserted[3][1]['generation']}-{n}" for n in range(3)] + ["state"]
        assert upserted[3][1]["hidden_rows"] == [k for k, _ in upserted[:3]]
        assert len({d for _, ids in upserted[:3] for d in ids}) == 5
        assert set(store.hashes()) == {d.source for d in notes[5:]}
        assert store.count() == 2
        keys = store._client.query(store._meta_name, filter='key like "hidden-%"', output_fields=["key"])
        assert keys == []  # the rows that listed them are gone with them
    finally:
        store.close()
    reopened = open_store(location)
    try:
        assert set(reopened.hashes()) == {d.source for d in notes[5:]}
    finally:
        reopened.close()
