"""Ingestion and the store: offsets, formats, bad files, incremental and atomic changes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from index import Index, IndexMismatch, IndexSettings, UnreadableFile, load_document
from index.chunking import chunk_document
from qa import Engine, QASettings
from tests.conftest import REPO_ROOT, SEED_FILE
from tests.helpers import assert_citations_hold


class CountingEmbedder:
    """The real embedder, counting what it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.name, self.dimension, self.texts = inner, inner.name, inner.dimension, []
        self.backend = inner.backend

    def encode(self, texts, show_progress=False):
        self.texts.extend(texts)
        return self.inner.encode(texts)


def make_pdf(path, pages):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for body in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, body)
    pdf.output(str(path))


def make_docx(path, paragraphs):
    import docx

    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    d.save(str(path))


def assert_chunks_hold(document, chunk_size=200, overlap=40):
    chunks = chunk_document(document, chunk_size, overlap)
    assert chunks
    for c in chunks:
        assert document.text[c.start:c.end] == c.text
        assert len(c.text) <= chunk_size
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    words = [i for i, ch in enumerate(document.text) if not ch.isspace()]
    assert set(words) <= covered, "every non-space character is in some chunk"
    return chunks


# ---- formats -------------------------------------------------------------------------------------

def test_seed_text_is_the_file_content():
    doc = load_document(SEED_FILE)
    assert doc.text == SEED_FILE.read_text(encoding="utf-8")
    assert_chunks_hold(doc, 800, 100)


def test_markdown_chunks_keep_offsets(tmp_path):
    md = tmp_path / "notes.md"
    md.write_text("# Release notes\n\n" + "\n\n".join(
        f"## Version {i}\n\n* Fixed bug number {i} in the parser.\n* Added option `--flag{i}`." for i in range(12)))
    doc = load_document(md)
    assert doc.kind == "md" and doc.text == md.read_text()
    assert_chunks_hold(doc)


def test_html_visible_text_with_offsets_back_to_source(tmp_path):
    page = tmp_path / "page.html"
    raw = ("<html><head><title>Harbour report</title><style>p {color: red}</style></head><body>"
           "<h1>Port of Leith</h1><p>The harbour master is <b>Ann Smith</b> &amp; her deputy.</p>"
           "<script>var secret = 'not text';</script><p>Ships arrive on Tuesdays.</p></body></html>")
    page.write_text(raw)
    doc = load_document(page)
    assert "Ann Smith" in doc.text and "Ships arrive on Tuesdays." in doc.text
    assert "secret" not in doc.text and "color" not in doc.text and "<b>" not in doc.text
    assert "& her deputy" in doc.text
    i = doc.text.index("Ann Smith")
    r = doc.raw_offset(i)
    assert raw[r:r + len("Ann Smith")] == "Ann Smith"
    assert_chunks_hold(doc, 60, 10)


def test_pdf_pages_and_offsets(tmp_path):
    pdf = tmp_path / "report.pdf"
    make_pdf(pdf, ["The lighthouse keeper is Morag Campbell. " * 8, "The island ferry leaves at noon. " * 8])
    doc = load_document(pdf)
    assert doc.kind == "pdf" and len(doc.pages) == 2
    assert doc.page_at(doc.text.index("Morag")) == 1
    assert doc.page_at(doc.text.index("ferry")) == 2
    chunks = assert_chunks_hold(doc)
    assert {c.page for c in chunks} == {1, 2}


def test_docx_text(tmp_path):
    path = tmp_path / "memo.docx"
    make_docx(path, ["Memo to staff.", "The canteen closes at three on Fridays."])
    doc = load_document(path)
    assert doc.text == "Memo to staff.\nThe canteen closes at three on Fridays."
    assert_chunks_hold(doc)


def test_other_encodings_are_decoded(tmp_path):
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("Café owner: José Núñez.".encode("utf-16"))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Señor Muñoz runs the café.".encode("latin-1"))
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"Line one.\r\nLine two.\r\n")
    assert load_document(utf16).text == "Café owner: José Núñez."
    assert load_document(latin1).text == "Señor Muñoz runs the café."
    assert load_document(crlf).text == open(crlf).read() == "Line one.\nLine two.\n"


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("junk.txt", bytes(range(256)) * 4, "binary"),
        ("empty.txt", b"", "empty"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "PDF"),
        ("broken.docx", b"PK not a zip", "Word"),
        ("image.png", b"\x89PNG\r\n", "unsupported file type"),
    ],
)
def test_unreadable_files_say_why(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableFile, match=reason):
        load_document(path)


def test_bad_files_are_skipped_and_named(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("The museum opens at nine.")
    (docs / "junk.txt").write_bytes(bytes(range(256)) * 8)
    (docs / "empty.md").write_text("")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    index = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    report = index.build(docs, quiet=True)
    assert [p.rsplit("/", 1)[1] for p in report.indexed] == ["good.txt"]
    skipped = {s.rsplit("/", 1)[1]: reason for s, reason in report.skipped}
    assert set(skipped) == {"junk.txt", "empty.md", "broken.pdf"}
    assert "binary" in skipped["junk.txt"] and "empty" in skipped["empty.md"]
    assert "1 indexed, 3 skipped" in report.summary()


# ---- the store ---------------------------------------------------------------------------------

def _corpus(folder):
    folder.mkdir()
    (folder / "a.txt").write_text("Alpha station is run by Commander Ruth Okafor. It orbits Mars.")
    (folder / "b.md").write_text("# Beta\n\nBeta station grows potatoes under red lamps.")
    (folder / "c.txt").write_text("Gamma station was closed in 2041 after a fire.")
    return folder


def _state(index):
    """The chunk ids of SQLite, and how many FAISS and BM25 hold (equal when the store is sound)."""
    ids = index.store.ids()
    assert ids["vectors"] == ids["terms"] == ids["catalog"]
    return ids["catalog"], len(ids["vectors"]), len(ids["terms"])


def test_incremental_build_embeds_only_changes(tmp_path, embedder):
    docs = _corpus(tmp_path / "docs")
    counting = CountingEmbedder(embedder)
    index = Index.open(tmp_path / "ix", create=True, embedder=counting)
    first = index.build(docs, quiet=True)
    assert len(first.indexed) == 3 and len(counting.texts) == 3

    counting.texts.clear()
    again = index.build(docs, quiet=True)
    assert again.indexed == () and len(again.unchanged) == 3 and counting.texts == []

    (docs / "b.md").write_text("# Beta\n\nBeta station now grows tomatoes.")
    changed = index.build(docs, quiet=True)
    assert [s.rsplit("/", 1)[1] for s in changed.indexed] == ["b.md"]
    assert counting.texts == ["# Beta\n\nBeta station now grows tomatoes."]
    assert len(changed.unchanged) == 2

    gamma = [c.id for c in index.chunks_of(str((docs / "c.txt").resolve()))]
    (docs / "c.txt").unlink()
    removed = index.build(docs, quiet=True)
    assert [s.rsplit("/", 1)[1] for s in removed.removed] == ["c.txt"]
    ids, n_vectors, n_terms = _state(index)
    assert not set(gamma) & ids                       # gone from SQLite
    assert n_vectors == n_terms == len(ids) == 2      # and from FAISS and BM25
    assert index.search_terms("Gamma fire 2041", 5) == []
    hits = [cid for cid, _ in index.search_dense(index.embed(["station closed after a fire"])[0], 10)]
    assert not set(gamma) & set(hits)

    reopened = Index.open(tmp_path / "ix", embedder=embedder)
    assert _state(reopened) == _state(index)
    engine = Engine(reopened, QASettings(reader="sentence"))
    answer = engine.ask("Who runs Alpha station?")
    assert "Ruth Okafor" in answer.text
    assert_citations_hold(answer)


def test_a_build_keeps_committed_vectors_on_disk_and_answers_as_an_index_opened_to_ask(tmp_path, embedder,
                                                                                     monkeypatch):
    """``python -m index build`` opens its index with ``load_parts=False``: while it commits and
    merges, no committed segment's vectors or postings stay in its memory (so a long build's
    memory does not grow with what it committed); a search reads them from disk and finds what
    an index opened for questions finds."""
    from index.backends import segments

    monkeypatch.setattr(segments, "MAX_SEGMENTS", 3)  # six one-file commits merge on the way
    docs = _corpus(tmp_path / "docs")
    (docs / "d.txt").write_text("Delta station studies the dust storms of the southern highlands.")
    (docs / "e.txt").write_text("Epsilon station trains new pilots for the supply shuttles.")
    (docs / "f.md").write_text("# Zeta\n\nZeta station keeps the seed vault and a small library.")
    settings = IndexSettings(batch_files=1)
    building = Index.open(tmp_path / "ix", settings, create=True, embedder=embedder, load_parts=False)
    assert len(building.build(docs, quiet=True).indexed) == 6
    held = building.store.segments()
    assert len(held) < 6 and not any(s["in_memory"] for s in held)
    resumed = Index.open(tmp_path / "ix", settings, embedder=embedder, load_parts=False)
    assert not any(s["in_memory"] for s in resumed.store.segments())
    assert len(resumed.build(docs, quiet=True).unchanged) == 6

    asking = Index.open(tmp_path / "ix", embedder=embedder)
    assert all(s["in_memory"] for s in asking.store.segments())
    question = embedder.encode(["station closed after a fire"])[0]
    assert building.search_dense(question, 6) == asking.search_dense(question, 6)
    assert building.search_terms("Gamma fire 2041", 6) == asking.search_terms("Gamma fire 2041", 6) != []
    assert all(s["in_memory"] for s in building.store.segments())  # read when first searched
    assert _state(building) == _state(asking)

    first = tmp_path / "ix" / "segments" / held[0]["name"] / "ids.npy"
    np.save(first, np.load(first)[:-1])  # one id fewer than vectors: found on opening, as when eager
    with pytest.raises(IndexMismatch, match="inconsistent"):
        Index.open(tmp_path / "ix", embedder=embedder, load_parts=False)


def test_add_and_remove_single_files(tmp_path, embedder):
    docs = _corpus(tmp_path / "docs")
    index = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    index.add([docs / "a.txt"], quiet=True)
    assert [d.source.rsplit("/", 1)[1] for d in index.documents()] == ["a.txt"]
    report = index.add([docs / "c.txt", docs / "missing.txt"], quiet=True)
    assert len(report.indexed) == 1 and report.skipped[0][1] == "file not found"
    report = index.remove([docs / "a.txt"])
    assert len(report.removed) == 1 and report.chunks_removed == 1
    assert [d.source.rsplit("/", 1)[1] for d in index.documents()] == ["c.txt"]
    assert _state(index)[1:] == (1, 1)


def test_store_from_another_model_is_refused(tmp_path, embedder):
    docs = _corpus(tmp_path / "docs")
    Index.open(tmp_path / "ix", create=True, embedder=embedder).build(docs, quiet=True)
    with pytest.raises(IndexMismatch, match="built with embedding model .* Rebuild it"):
        Index.open(tmp_path / "ix", IndexSettings(model_name="some/other-model"), embedder=embedder)
    generation = (tmp_path / "ix" / "CURRENT").read_text().strip()
    manifest_path = tmp_path / "ix" / generation / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 999
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="format version 999"):
        Index.open(tmp_path / "ix", embedder=embedder)


def test_failed_change_leaves_previous_store(tmp_path, embedder, monkeypatch):
    docs = _corpus(tmp_path / "docs")
    index = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    index.build(docs, quiet=True)
    before = _state(index)
    (docs / "d.txt").write_text("Delta station is new.")

    from index.terms import TermIndex

    def boom(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(TermIndex, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        index.build(docs, quiet=True)
    assert _state(index) == before  # in-memory state rolled back
    monkeypatch.undo()
    assert _state(Index.open(tmp_path / "ix", embedder=embedder)) == before


def test_killed_build_leaves_previous_store_loadable(tmp_path, embedder):
    docs = _corpus(tmp_path / "docs")
    index = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    index.build(docs, quiet=True)
    before = _state(index)
    (docs / "d.txt").write_text("Delta station is new.")
    (docs / "a.txt").unlink()
    # A separate process is killed (SIGKILL) after writing half of the new generation.
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from index import Index
        from index.vectors import FaissVectorStore
        def die(self, path):
            os.kill(os.getpid(), signal.SIGKILL)
        FaissVectorStore.save = die
        Index.open({str(tmp_path / "ix")!r}).build({str(docs)!r}, quiet=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -9
    reopened = Index.open(tmp_path / "ix", embedder=embedder)
    assert _state(reopened) == before
    assert len(reopened.documents()) == 3
    report = reopened.build(docs, quiet=True)  # and the next build recovers
    assert len(report.indexed) == 1 and len(report.removed) == 1
    assert not list((tmp_path / "ix").glob(".tmp-*"))


def test_no_pickle_files_in_a_store(tmp_path, embedder):
    docs = _corpus(tmp_path / "docs")
    Index.open(tmp_path / "ix", create=True, embedder=embedder).build(docs, quiet=True)
    for path in (tmp_path / "ix").rglob("*"):
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)
        assert path.suffix not in (".pkl", ".pickle")


def test_end_to_end_over_pdf_html_and_markdown(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "lighthouse.pdf", ["Harbour notes. " * 20, "The lighthouse keeper is Morag Campbell, a retired sailor."])
    (docs / "ferry.html").write_text("<html><body><p>The island ferry is captained by <i>Ian Reid</i>.</p></body></html>")
    (docs / "pier.md").write_text("# Pier\n\nThe pier was rebuilt in 1998 by the council.")
    engine = Engine(Index.open(tmp_path / "ix", create=True, embedder=embedder), QASettings(reader="sentence"))
    engine.index.build(docs, quiet=True)
    answer = engine.ask("Who is Morag Campbell?")
    assert answer.found and "sailor" in answer.text
    assert answer.citations[0].page == 2
    assert_citations_hold(answer)
    when = engine.ask("When was the pier rebuilt?")
    assert when.text == "1998"
    assert_citations_hold(when)


@pytest.mark.parametrize("damage, reason", [(b"", "empty"), (bytes(range(256)) * 8, "binary")])
def test_a_file_that_became_unreadable_leaves_the_index(tmp_path, embedder, damage, reason):
    docs = _corpus(tmp_path / "docs")
    index = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    index.build(docs, quiet=True)
    (docs / "a.txt").write_bytes(damage)
    report = index.build(docs, quiet=True)
    a = str(docs / "a.txt")
    assert report.removed == (a,) and reason in dict(report.skipped)[a]
    assert a not in {d.source for d in index.documents()}
    assert index.search_terms("Ruth Okafor", 5) == []          # its old text is no longer answered
    _state(index)


def test_a_moved_folder_leaves_its_old_paths_until_pruned(tmp_path, embedder):
    old = _corpus(tmp_path / "docs")
    index = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    index.build(old, quiet=True)
    new = tmp_path / "moved"
    old.rename(new)
    kept = index.build(new, quiet=True)
    assert len(kept.indexed) == 3 and kept.removed == () and len(index.documents()) == 6
    pruned = index.build(new, quiet=True, prune=True)
    assert sorted(pruned.removed) == sorted(str(old / n) for n in ("a.txt", "b.md", "c.txt"))
    assert sorted(d.source for d in index.documents()) == sorted(str(p) for p in new.iterdir())


def test_a_removed_symlink_to_a_file_outside_the_folder_leaves_the_index(tmp_path, embedder):
    docs = _corpus(tmp_path / "docs")
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("The observatory on Delta station is run by Dr Imre Kovacs.")
    (docs / "delta.txt").symlink_to(outside)
    index = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    first = index.build(docs, quiet=True)
    assert str(docs / "delta.txt") in first.indexed
    assert index.search_terms("Imre Kovacs", 5)
    (docs / "delta.txt").unlink()
    report = index.build(docs, quiet=True)
    assert report.removed == (str(docs / "delta.txt"),)
    assert index.search_terms("Imre Kovacs", 5) == []
