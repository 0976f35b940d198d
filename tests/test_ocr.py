"""Scanned PDF pages: read with Tesseract where it is installed, named where it is not.

Each scan is made here: a sentence typeset with fpdf2, its page drawn to an image with
pypdfium2, and the image saved by Pillow as a PDF with no text layer, as a scanner would.
"""

from __future__ import annotations

import difflib
import io
import os
import time
from pathlib import Path

import pytest

from index import ocr
from index.loaders import UnreadableFile, load_document, load_document_with_notes
from tests.helpers import assert_citations_hold

KEEPER = "The lighthouse keeper is Marguerite Okafor."
SCAN_TEXT = KEEPER + " She lights the lamp at dusk and writes the weather in the log every evening."
FERRY = "The island ferry leaves at noon from the north pier."
MUSEUM = "The harbour museum opens at nine on weekdays."

needs_tesseract = pytest.mark.skipif(
    ocr.find_tesseract() is None,
    reason="tesseract is not installed (make test installs Debian's tesseract-ocr and tesseract-ocr-eng)",
)


def text_pdf(pages: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=14)
    for body in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, body)
    return bytes(pdf.output())


def scanned_pdf(pages: list[str], dpi: int = 200) -> bytes:
    """The pages typeset, drawn as images and saved as an image-only PDF."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(text_pdf(pages))
    images = [doc[i].render(scale=dpi / 72, grayscale=True).to_pil() for i in range(len(doc))]
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return out.getvalue()


def pdf_from_pages(*pdfs: bytes) -> bytes:
    """Every page of each PDF, in order, in one file."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for data in pdfs:
        for page in PdfReader(io.BytesIO(data)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def blank_page_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    return bytes(pdf.output())


def contains_roughly(text: str, sentence: str, at_least: float = 0.9) -> bool:
    """True when some stretch of ``text`` matches ``sentence`` with few OCR slips."""
    words, target = " ".join(text.split()), " ".join(sentence.split())
    n = len(target)
    best = max((difflib.SequenceMatcher(None, words[i:i + n], target).ratio()
                for i in range(max(1, len(words) - n + 1))), default=0.0)
    return best >= at_least


def page_texts(doc) -> list[str]:
    """Each page's text cut out of the document at its offsets (pages joined by a blank line)."""
    ends = [start - 2 for start in doc.pages[1:]] + [len(doc.text)]
    return [doc.text[start:end] for start, end in zip(doc.pages, ends)]


@pytest.fixture(scope="module")
def scan_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scans") / "keeper-scan.pdf"
    path.write_bytes(scanned_pdf([SCAN_TEXT]))
    return path


@pytest.fixture(scope="module")
def mixed_file(tmp_path_factory) -> Path:
    """Page 1 and 3 have a text layer; page 2 is a scan."""
    path = tmp_path_factory.mktemp("mixed") / "mixed.pdf"
    path.write_bytes(pdf_from_pages(text_pdf([FERRY]), scanned_pdf([SCAN_TEXT]), text_pdf([MUSEUM])))
    return path


def test_the_scan_has_no_text_layer(scan_file):
    from pypdf import PdfReader

    assert PdfReader(scan_file).pages[0].extract_text().strip() == ""


@needs_tesseract
def test_scanned_page_is_read_with_ocr(scan_file):
    doc, notes = load_document_with_notes(scan_file)
    assert doc.kind == "pdf"
    assert contains_roughly(doc.text, SCAN_TEXT)
    assert KEEPER in " ".join(doc.text.split())
    assert doc.pages == (0,)
    assert notes == ("page 1 read with OCR (no text layer)",)
    # The same file read again gives the same text, so stored offsets stay valid.
    assert load_document(scan_file).text == doc.text


@needs_tesseract
def test_pages_and_offsets_hold_around_an_ocr_page(mixed_file):
    doc, notes = load_document_with_notes(mixed_file)
    assert notes == ("page 2 read with OCR (no text layer)",)
    assert len(doc.pages) == 3
    pages = page_texts(doc)
    assert doc.text == "\n\n".join(pages), "the text is the pages' texts joined, offsets point into the OCR text"
    assert FERRY in pages[0] and MUSEUM in pages[2]
    assert contains_roughly(pages[1], SCAN_TEXT)
    okafor = doc.text.index("Okafor")
    assert doc.page_at(okafor) == 2
    assert doc.page_at(doc.text.index("museum")) == 3
    assert doc.page_at(doc.text.index("ferry")) == 1


@needs_tesseract
def test_ocr_words_point_into_the_document_text_with_boxes_on_the_page(mixed_file):
    doc = load_document(mixed_file)
    words = ocr.ocr_page_words(mixed_file.read_bytes(), 2)
    page_start = doc.pages[1]
    assert words
    for w in words:
        assert doc.text[page_start + w.start:page_start + w.end] == w.text
    okafor = next(w for w in words if w.text.startswith("Okafor"))
    left, top, right, bottom = okafor.bbox
    # fpdf2 sets the first line 10 mm (28 pt) from the top-left margin of an A4 page (595 x 842 pt).
    assert 0 < left < right < 595 and 20 < top < bottom < 80
    lamp = next(w for w in words if w.text == "lamp")
    assert lamp.bbox[1] > top, "a later line lies lower on the page"


@needs_tesseract
def test_answer_found_in_a_scanned_pdf(tmp_path, scan_file, embedder):
    from index import Index
    from qa import Engine

    index = Index.open(tmp_path / "index", create=True, embedder=embedder)
    report = index.add([scan_file], quiet=True)
    assert report.indexed == (str(scan_file),), report.skipped
    answer = Engine(index).ask("Who is the lighthouse keeper?")
    assert answer.found
    assert answer.text == "Marguerite Okafor"
    assert answer.citations[0].source == str(scan_file)
    assert answer.citations[0].page == 1
    assert_citations_hold(answer)


@needs_tesseract
def test_the_cited_scanned_page_is_shown_with_the_answer_boxed_over_its_words(tmp_path, scan_file, embedder):
    """The page view boxes a citation on a page without a text layer from the OCR words."""
    from index import Index
    from index.ocr import ocr_page
    from qa import Engine
    from ui.pdfpage import citation_page

    index = Index.open(tmp_path / "index", create=True, embedder=embedder)
    index.add([scan_file], quiet=True)
    answer = Engine(index).ask("Who is the lighthouse keeper?")
    shown = citation_page(scan_file, answer.citations[0])
    assert shown.located and shown.sentence_boxes and shown.answer_boxes
    words = ocr_page(scan_file.read_bytes(), 1).words
    name = [w for w in words if w.text.strip(".") in ("Marguerite", "Okafor")]
    box = shown.answer_boxes[0]
    left, top = min(w.bbox[0] for w in name) * shown.scale, min(w.bbox[1] for w in name) * shown.scale
    right = max(w.bbox[2] for w in name) * shown.scale
    assert abs(box.left - left) <= 4 and abs(box.top - top) <= 4 and abs(box.right - right) <= 4
    bare = citation_page(scan_file, answer.citations[0], boxes=False).image
    inside = (box.left + 2, box.top + 2)
    assert shown.image.getpixel(inside) != bare.getpixel(inside)  # drawn over the words


# ---- without Tesseract ------------------------------------------------------------------------

@pytest.fixture
def no_tesseract(monkeypatch):
    monkeypatch.setattr(ocr, "find_tesseract", lambda: None)


def test_scan_without_tesseract_is_refused_saying_what_to_install(scan_file, no_tesseract):
    with pytest.raises(UnreadableFile) as refused:
        load_document(scan_file)
    assert str(refused.value) == "no text layer: install tesseract-ocr to read scanned pages"


def test_scan_without_tesseract_is_reported_by_the_index(tmp_path, scan_file, embedder, no_tesseract):
    from index import Index

    index = Index.open(tmp_path / "index", create=True, embedder=embedder)
    report = index.add([scan_file], quiet=True)
    assert report.indexed == ()
    assert report.skipped == ((str(scan_file), "no text layer: install tesseract-ocr to read scanned pages"),)


def test_scanned_page_without_tesseract_is_named_and_the_text_pages_kept(mixed_file, no_tesseract):
    doc, notes = load_document_with_notes(mixed_file)
    assert notes == ("page 2 left out: no text layer: install tesseract-ocr to read scanned pages",)
    assert len(doc.pages) == 3, "the page left out keeps its place"
    pages = page_texts(doc)
    assert doc.text == "\n\n".join(pages)
    assert pages[1] == ""
    assert doc.page_at(doc.text.index("museum")) == 3


def test_blank_page_needs_no_ocr_and_no_note(tmp_path, no_tesseract):
    path = tmp_path / "with-blank.pdf"
    path.write_bytes(pdf_from_pages(text_pdf([FERRY]), blank_page_pdf(), text_pdf([MUSEUM])))
    doc, notes = load_document_with_notes(path)
    assert notes == ()
    assert doc.page_at(doc.text.index("museum")) == 3


# ---- time limits ------------------------------------------------------------------------------

@needs_tesseract
def test_page_over_the_ocr_time_limit_is_left_out_by_name(mixed_file):
    doc, notes = load_document_with_notes(mixed_file, ocr_page_time_limit=0.05)
    assert notes == ("page 2 left out: OCR took longer than 0.05 s",)
    assert FERRY in doc.text and "Okafor" not in doc.text


@needs_tesseract
def test_scan_over_the_ocr_time_limit_is_refused_saying_why(scan_file):
    with pytest.raises(UnreadableFile, match=r"^no extractable text \(page 1 left out: OCR took longer than 0.05 s\)$"):
        load_document_with_notes(scan_file, ocr_page_time_limit=0.05)


def _tesseract_children() -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if name == "tesseract" and int(rest[1]) == os.getpid():
            children.append(int(entry.name))
    return children


@needs_tesseract
def test_the_file_time_limit_holds_during_ocr(tmp_path):
    path = tmp_path / "long-scan.pdf"
    path.write_bytes(scanned_pdf([SCAN_TEXT] * 4))
    start = time.monotonic()
    with pytest.raises(UnreadableFile, match="took longer than 0.5 s"):
        load_document(path, time_limit=0.5)
    assert time.monotonic() - start < 0.5 + 2 + 1
    deadline = time.monotonic() + 3
    while _tesseract_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _tesseract_children() == [], "Tesseract is stopped with the file"
