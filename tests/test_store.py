"""The folder store: killed rebuilds, check and repair, copies, resumed builds, old folders."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from index import Index, IndexSettings
from index.backends.folder import FolderStore
from tests.conftest import REPO_ROOT


class CountingEmbedder:
    """The real embedder, counting what it is asked to embed; ``fail_after`` calls it raises."""

    def __init__(self, inner, fail_after=None):
        self.inner, self.name, self.dimension, self.texts = inner, inner.name, inner.dimension, []
        self.backend = inner.backend
        self.fail_after, self.calls = fail_after, 0

    def encode(self, texts, show_progress=False):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("stopped")
        self.texts.extend(texts)
        return self.inner.encode(texts)


def _corpus(folder, n=4):
    folder.mkdir()
    for i in range(n):
        (folder / f"s{i}.txt").write_text(f"Station {i} is run by commander {i}. It grows crop number {i}.")
    return folder


def _hashes(location):
    return FolderStore.open(location).hashes()


def _killed(script, tmp_path):
    """Run ``script`` in a fresh process that SIGKILLs itself where the script says."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO_ROOT, capture_output=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]


KILL_POINTS = {
    # while the new index is being written beside the old one (its second commit there)
    "staging": ("from index.vectors import FaissVectorStore as C", "save", "len(calls) == 2"),
    # after the new generation moved beside the old one, before CURRENT switches to it
    "switch": ("from index.backends.folder import FolderStore as C", "_switch", "a[0].path.name == 'ix'"),
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_killed_rebuild_keeps_the_old_index_and_resumes(tmp_path, embedder, point):
    docs = _corpus(tmp_path / "docs")
    ix = tmp_path / "ix"
    Index.open(ix, create=True, embedder=embedder).build(docs, quiet=True)
    before = _hashes(ix)
    (docs / "s0.txt").write_text("Station zero was renamed Outpost Prime in 2050.")
    (docs / "new.txt").write_text("A new station opened on the far side of the moon.")
    head, name, when = KILL_POINTS[point]
    _killed(f"""
        import os, signal
        {head}
        from index.__main__ import main
        calls = []
        real = C.{name}
        def die(*a, **k):
            calls.append(1)
            if {when}:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*a, **k)
        C.{name} = die
        main(["build", {str(docs)!r}, "--rebuild", "--batch-files", "1", "--index", {str(ix)!r}, "--quiet"])
    """, tmp_path)
    reopened = Index.open(ix, embedder=embedder)
    assert reopened.store.hashes() == before            # the old index, whole
    assert reopened.search_terms("commander", 10)       # and searchable
    counting = CountingEmbedder(embedder)
    report = Index.open(ix, embedder=counting).build(docs, quiet=True, rebuild=True)
    assert len(report.indexed) == 5
    if point == "staging":  # the first file committed in the staging folder is not embedded again
        assert len(counting.texts) == 4
    after = _hashes(ix)
    assert sorted(after) == sorted(str(p) for p in docs.iterdir()) and after != before
    assert Index.open(ix, embedder=embedder).check() == []


def test_killed_build_resumes_without_embedding_committed_files(tmp_path, embedder):
    docs = _corpus(tmp_path / "docs", n=6)
    settings = IndexSettings(batch_files=2)
    stopped = CountingEmbedder(embedder, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        Index.open(tmp_path / "ix", settings, create=True, embedder=stopped).build(docs, quiet=True)
    assert len(_hashes(tmp_path / "ix")) == 4           # two batches of two were committed
    counting = CountingEmbedder(embedder)
    report = Index.open(tmp_path / "ix", settings, embedder=counting).build(docs, quiet=True)
    assert len(report.unchanged) == 4 and len(report.indexed) == 2
    assert len(counting.texts) == 2


OLD_SCHEMA = """
CREATE TABLE documents (source TEXT PRIMARY KEY, kind TEXT NOT NULL, sha256 TEXT NOT NULL, chars INTEGER NOT NULL,
                        pages TEXT NOT NULL, raw_segments TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE chunks (id INTEGER PRIMARY KEY, source TEXT NOT NULL REFERENCES documents(source) ON DELETE CASCADE,
                     start INTEGER NOT NULL, end INTEGER NOT NULL, page INTEGER, text TEXT NOT NULL);
"""


def _old_format_index(ix, docs, embedder, version):
    """An index as format versions 1 and 2 wrote it: one generation holding whole copies of a
    SQLite catalog, an ``IndexIDMap2`` over exact search, and a bm25s index."""
    import sqlite3

    import bm25s
    import faiss

    from index.embedding import DEFAULT_MODEL_NAME
    from index.hashing import sha256_file
    from index.text import terms

    generation = ix / "gen-000003"
    generation.mkdir(parents=True)
    conn = sqlite3.connect(generation / "catalog.sqlite")
    conn.executescript(OLD_SCHEMA)
    ids, texts = [], []
    for p in sorted(docs.iterdir()):
        text = p.read_text()
        conn.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (str(p), "txt", sha256_file(p), len(text), "[]", "[]", text))
        cur = conn.execute("INSERT INTO chunks (source, start, end, page, text) VALUES (?, ?, ?, ?, ?)",
                           (str(p), 0, len(text), None, text))
        ids.append(cur.lastrowid)
        texts.append(text)
    conn.commit()
    conn.close()
    vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(embedder.dimension))
    vectors.add_with_ids(embedder.encode(texts), np.asarray(ids, dtype=np.int64))
    faiss.write_index(vectors, str(generation / "vectors.faiss"))
    (generation / "terms").mkdir()
    (generation / "terms" / "ids.json").write_text(json.dumps(ids))
    bm25 = bm25s.BM25()
    bm25.index([terms(t) or [""] for t in texts], show_progress=False)
    bm25.save(str(generation / "terms"), allow_pickle=False)
    (generation / "manifest.json").write_text(json.dumps({
        "format_version": version, "model": DEFAULT_MODEL_NAME, "dimension": embedder.dimension,
        "chunk_size": 800, "chunk_overlap": 100}))
    (ix / "CURRENT").write_text("gen-000003\n")


@pytest.mark.parametrize("version", [1, 2])
def test_old_format_folders_are_read_and_converted_by_their_next_change(tmp_path, embedder, version):
    docs = _corpus(tmp_path / "docs")
    ix = tmp_path / "ix"
    _old_format_index(ix, docs, embedder, version)
    index = Index.open(ix, embedder=embedder)
    assert index.manifest["format_version"] == version and len(index.documents()) == 4
    hits = index.search_dense(embedder.encode(["who runs station 2?"])[0], 1)
    assert "Station 2" in index.chunks([hits[0][0]])[hits[0][0]].text
    assert "commander 3" in index.chunks([index.search_terms("commander 3", 1)[0][0]]).popitem()[1].text
    index.remove([docs / "s0.txt"])
    converted = Index.open(ix, embedder=embedder)
    assert converted.manifest["folder_format"] == 3 and not (ix / "gen-000003").exists()
    assert len(converted.documents()) == 3 and converted.check() == []
    counting = CountingEmbedder(embedder)
    report = Index.open(ix, embedder=counting).build(docs, quiet=True)      # nothing embedded again but s0
    assert len(report.unchanged) == 3 and len(report.indexed) == 1 and len(counting.texts) == 1


def test_copy_moves_documents_chunks_and_vectors_without_embedding(tmp_path, embedder):
    from index.copy import copy_index

    docs = _corpus(tmp_path / "docs")
    source = Index.open(tmp_path / "a", create=True, embedder=embedder)
    source.build(docs, quiet=True)
    report = copy_index(str(tmp_path / "a"), str(tmp_path / "b"))
    assert len(report.indexed) == 4
    copied = Index.open(tmp_path / "b", embedder=embedder)
    assert copied.documents() == source.documents()
    for info in source.documents():
        assert copied.document(info.source) == source.document(info.source)
        ids_a = [c.id for c in source.chunks_of(info.source)]
        ids_b = [c.id for c in copied.chunks_of(info.source)]
        assert np.array_equal(source.store.vectors(ids_a), copied.store.vectors(ids_b))
    query = embedder.encode(["who runs station 2?"])[0]
    top = lambda ix: ix.chunks([ix.search_dense(query, 1)[0][0]])  # noqa: E731
    assert [c.text for c in top(copied).values()] == [c.text for c in top(source).values()]
    assert copy_index(str(tmp_path / "a"), str(tmp_path / "b")).indexed == ()   # nothing changed: nothing copied
    other = tmp_path / "c"
    with FolderStore.open(other, create=True).writer({"model": "some/other-model", "dimension": 8}):
        pass
    from index import IndexMismatch
    with pytest.raises(IndexMismatch, match="other-model"):
        copy_index(str(tmp_path / "a"), str(other))


def _damage(ix, what):
    """Damage the live segment of ``ix`` the way a bug or a disk fault could."""
    from index.terms import TermIndex
    from index.vectors import FaissVectorStore

    segment = FolderStore.open(ix)._state.segments[0].segment
    ids, texts = segment.ids, [t for _, t in segment.catalog.texts()]
    vectors = segment.vectors.vectors(np.arange(len(ids)))
    if what == "orphan vector":
        ids, vectors, texts = np.append(ids, 999), np.vstack([vectors, vectors[:1]]), texts + ["no chunk has this"]
    elif what == "missing vector":
        ids, vectors, texts = ids[1:], vectors[1:], texts[1:]
    elif what == "stale terms":
        texts = ["words of another text"] + texts[1:]
    np.save(segment.path / "ids.npy", ids)
    FaissVectorStore.build(vectors).save(segment.path)
    terms = TermIndex.build(texts)
    if what == "wrong bm25 bounds":   # a bound below the truth: pruning would skip chunks of a top k
        terms.max_tfs[:] = 1
        terms.min_lengths[:] = terms.min_lengths.max() + 1
    terms.save(segment.path)


@pytest.mark.parametrize("what, fix", [
    ("orphan vector", "vector(s) belong to no chunk"),
    ("missing vector", "has chunks without vectors"),
    ("stale terms", "BM25 holds"),
    ("wrong bm25 bounds", "BM25 holds"),
])
def test_check_finds_and_repairs_without_embedding(tmp_path, embedder, what, fix):
    docs = _corpus(tmp_path / "docs")
    ix = tmp_path / "ix"
    Index.open(ix, create=True, embedder=embedder).build(docs, quiet=True)
    assert Index.open(ix, embedder=embedder).check() == []
    _damage(ix, what)
    (ix / ".tmp-gen-000099-1").mkdir()
    findings = Index.open(ix, embedder=embedder).check()
    assert any(fix in f for f in findings) and any(".tmp-gen-000099-1" in f for f in findings)
    repaired = Index.open(ix, embedder=embedder).check(repair=True)
    assert all(f.startswith("repaired:") for f in repaired)
    index = Index.open(ix, embedder=embedder)
    assert index.check() == []
    ids = index.store.ids()
    assert ids["catalog"] == ids["vectors"] == ids["terms"]
    counting = CountingEmbedder(embedder)
    report = Index.open(ix, embedder=counting).build(docs, quiet=True)   # the next build fills any gap
    assert len(report.indexed) == (1 if what == "missing vector" else 0)
    assert len(counting.texts) == len(report.indexed)


def test_check_repair_points_current_at_the_last_sound_generation(tmp_path, embedder):
    docs = _corpus(tmp_path / "docs")
    ix = tmp_path / "ix"
    index = Index.open(ix, create=True, embedder=embedder)
    index.build(docs, quiet=True)
    good = (ix / "CURRENT").read_text().strip()
    (ix / "gen-000099").mkdir()                    # a damaged newer generation, made live
    (ix / "gen-000099" / "manifest.json").write_text("{")
    (ix / "CURRENT").write_text("gen-000099\n")
    from index import IndexMismatch
    with pytest.raises(IndexMismatch, match="damaged .* check --repair"):
        Index.open(ix, embedder=embedder)
    cli = [sys.executable, "-m", "index", "check", "--index", str(ix)]
    found = subprocess.run(cli, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert found.returncode == 1 and "CURRENT names gen-000099, which cannot be read" in found.stdout
    fixed = subprocess.run(cli + ["--repair"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"the newest sound generation is {good}" in fixed.stdout
    assert len(Index.open(ix, embedder=embedder).documents()) == 4


@pytest.mark.parametrize("command", ["add", "remove"])
def test_add_or_remove_killed_while_committing_leaves_the_old_index(tmp_path, embedder, command):
    docs = _corpus(tmp_path / "docs")
    extra = tmp_path / "extra.txt"
    extra.write_text("The supply shuttle docks every ninth day.")
    ix = tmp_path / "ix"
    index = Index.open(ix, create=True, embedder=embedder)
    index.build(docs, quiet=True)
    target = extra if command == "add" else docs / "s1.txt"
    before = _hashes(ix)
    _killed(f"""
        import os, signal
        import index.backends.folder as folder
        from index.vectors import FaissVectorStore
        from index.__main__ import main
        die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        if {command!r} == "add":
            FaissVectorStore.save = die    # while the new segment is written
        else:
            folder.write_deletes = die     # while the deletion file is written
        main([{command!r}, {str(target)!r}, "--index", {str(ix)!r}, "--quiet"])
    """, tmp_path)
    assert _hashes(ix) == before and Index.open(ix, embedder=embedder).store.ids()["vectors"]
    again = getattr(Index.open(ix, embedder=embedder), command)([target])
    assert (again.indexed if command == "add" else again.removed) == (str(target),)
    assert Index.open(ix, embedder=embedder).check() == []   # the killed write's leftovers are gone
