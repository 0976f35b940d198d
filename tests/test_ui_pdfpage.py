"""The cited PDF page in the Sources panel: rendered, with the sentence and the answer boxed.

A two-page PDF made here holds a known sentence on page 2; the engine answers a question
about it, and the boxes are checked against pdfium's own character boxes of the answer's
words and against the pixels of the page rendered without boxes. The browser test uploads
the PDF, asks, and reads the page image as the browser shows it (screenshots go to
test-output/).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa import Answer, Citation
from tests.ui_helpers import REPO_ROOT, launch_test_app
from ui.handlers import PageHandlers
from ui.pdfpage import NOT_LOCATED, PAGE_SCALE, PageError, citation_page, find_quote, line_boxes
from ui.screenshot import CHROMIUM, CHROMIUM_ARGS, ask_in_page
from ui.settings import UISettings

OUTPUT = REPO_ROOT / "test-output"
PDF_NAME = "island_notes.pdf"
QUESTION = "Who is the lighthouse keeper?"
SENTENCE = "The lighthouse keeper is Marguerite Okafor."
ANSWER = "Marguerite Okafor"
PAGE_ONE = ("Harbour notes for the island of Tarsel. The ferry to the mainland leaves every hour in summer "
            "and twice a day in winter.")
# The sentence starts a paragraph, so the whole of it is on one line; the next one wraps.
PAGE_TWO = ("The island has one road, a school and a white tower on the northern cliff.",
            SENTENCE + " She has kept the lamp burning for twenty-two years, through storms and long winters "
            "that close the harbour for weeks.")
# Broken by hand at a hyphen, as typeset text is: the index reads "fog-\nhorn".
HYPHENATED = "The old fog-\nhorn on the pier was silenced by Tomasz Brennan in 1987."
HYPHENATED_QUOTE_START = "The old fog"
TXT_NAME = "harbour.txt"
TXT_TEXT = "The harbour master is Tobias Lindqvist. He keeps the tide tables.\n"


def make_pdf(path: Path) -> Path:
    """Two A4 pages of Helvetica: the known sentence and a hyphenated line break on page 2."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, PAGE_ONE, new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    for paragraph in PAGE_TWO:
        pdf.multi_cell(0, 8, paragraph, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.multi_cell(0, 8, HYPHENATED, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def pdfium_box(path: Path, page: int, words: str) -> tuple[float, float, float, float]:
    """The union of pdfium's tight character boxes of ``words`` on ``page`` (PDF points,
    origin bottom-left), found with pdfium's own search, and the page height."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        p = pdf[page - 1]
        textpage = p.get_textpage()
        found = textpage.search(words, match_case=True).get_next()
        assert found, f"{words!r} is not in the text layer of page {page}"
        first, count = found
        boxes = [textpage.get_charbox(i) for i in range(first, first + count) if not words[i - first].isspace()]
        height = p.get_height()
    finally:
        pdf.close()
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes),
            height)


def expected_pixels(path: Path, page: int, words: str, scale: float = PAGE_SCALE) -> tuple[float, ...]:
    """Where ``words`` lie on the rendered image: left, top, right, bottom in pixels."""
    left, bottom, right, top, height = pdfium_box(path, page, words)
    return left * scale, (height - top) * scale, right * scale, (height - bottom) * scale


def assert_box_over(box, expected: tuple[float, ...], tolerance: float = 4.0) -> None:
    got = (box.left, box.top, box.right, box.bottom)
    assert all(abs(g - e) <= tolerance for g, e in zip(got, expected)), f"box {got} is not over the words at {expected}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    docs = tmp_path_factory.mktemp("pdfpage") / "docs"
    docs.mkdir()
    make_pdf(docs / PDF_NAME)
    (docs / TXT_NAME).write_text(TXT_TEXT, encoding="utf-8")
    return docs


@pytest.fixture(scope="module")
def engine(corpus, embedder):
    from index import Index
    from qa import Engine, QASettings

    index = Index.open(corpus.parent / "index", create=True, embedder=embedder)
    index.build(corpus, quiet=True)
    return Engine(index, QASettings(reader="sentence"))  # as the page tests: this checks what is shown


@pytest.fixture(scope="module")
def keeper(engine) -> tuple[Answer, Citation]:
    answer = engine.ask(QUESTION)
    assert answer.found and answer.text == ANSWER, answer
    cited = next(c for c in answer.citations if c.answer_start is not None)
    return answer, cited


def test_the_answer_and_its_sentence_are_boxed_over_their_words(corpus, keeper):
    _, c = keeper
    pdf = corpus / PDF_NAME
    assert Path(c.source) == pdf.resolve() and c.page == 2 and c.quote == SENTENCE

    shown = citation_page(c.source, c)
    bare = citation_page(c.source, c, boxes=False)
    assert shown.located and (shown.page, shown.pages) == (2, 2)
    assert shown.image.size == bare.image.size == (math.ceil(595.28 * PAGE_SCALE), math.ceil(841.89 * PAGE_SCALE))

    # One line box each, over the words pdfium itself finds on the page.
    (answer_box,) = shown.answer_boxes
    (sentence_box,) = shown.sentence_boxes
    assert_box_over(answer_box, expected_pixels(pdf, 2, ANSWER))
    assert_box_over(sentence_box, expected_pixels(pdf, 2, SENTENCE))

    # The drawn page differs from the bare one inside the boxes, and nowhere far from them.
    drawn, plain = np.asarray(shown.image).astype(int), np.asarray(bare.image).astype(int)
    inside = (slice(answer_box.top, answer_box.bottom), slice(answer_box.left, answer_box.right))
    changed = np.abs(drawn[inside] - plain[inside]).sum(axis=2) > 30
    assert changed.mean() > 0.9, "the answer's box is not drawn over its words"
    far = np.ones(drawn.shape[:2], dtype=bool)
    s = sentence_box
    far[max(0, s.top - 6):s.bottom + 6, max(0, s.left - 6):s.right + 6] = False
    assert np.array_equal(drawn[far], plain[far]), "something was drawn away from the cited sentence"
    # The answer's outline is red just outside its box; the sentence's fill is yellow.
    middle = (answer_box.top + answer_box.bottom) // 2
    r, g, b = drawn[middle, answer_box.left - 2]
    assert r > 180 and g < 90 and b < 90, f"no red outline left of the answer: {(r, g, b)}"
    r, g, b = drawn[sentence_box.top + 1, sentence_box.left + 1]
    assert r > 230 and g > 200 and b < 200, f"the sentence is not filled yellow: {(r, g, b)}"


def test_a_sentence_broken_across_lines_at_a_hyphen_is_found(corpus, engine):
    pdf = corpus / PDF_NAME
    text = engine.document_text(str(pdf.resolve()))
    start = text.index(HYPHENATED_QUOTE_START)
    end = text.index("1987.", start) + len("1987.")
    quote = text[start:end]
    assert "fog-\nhorn" in quote  # the index's text keeps the typeset break
    a = quote.index("Tomasz Brennan")
    c = Citation(source=str(pdf), start=start, end=end, quote=quote, page=2, answer_start=start + a,
                 answer_end=start + a + len("Tomasz Brennan"))
    shown = citation_page(pdf, c)
    assert shown.located and len(shown.sentence_boxes) == 2  # one box per line
    first, second = shown.sentence_boxes
    # pdfium keeps the line-end hyphen as a marker char (no "-"): search the words, the box also covers the hyphen.
    left, top, right, bottom = expected_pixels(pdf, 2, "The old fog")
    assert_box_over(replace(first, right=right), (left, top, right, bottom))
    assert right < first.right <= right + 12
    assert second.top >= first.bottom - 2 * 2  # the second line lies below the first
    (answer_box,) = shown.answer_boxes
    assert_box_over(answer_box, expected_pixels(pdf, 2, "Tomasz Brennan"))


def test_search_ignores_layout_but_not_words():
    page = "x “The light-\r\nhouse keeper is  Marguerite\r\nOkafor.” y"
    quote = "“The lighthouse keeper is Marguerite Okafor.”"
    a = quote.index("Marguerite")
    sentence, answer = find_quote(page, quote, (a, a + len("Marguerite Okafor")))
    assert page[sentence[0]:sentence[1] + 1] == page[2:-2]  # the quote marks and the full stop included
    assert page[answer[0]:answer[1] + 1] == "Marguerite\r\nOkafor"
    assert find_quote(page, "The lighthouse keeper is Marguerite Okonkwo.") == (None, None)
    # A sentence that runs on to the next page: the part that ends this page is found.
    sentence, _ = find_quote("Intro. The keeper wrote that the", "The keeper wrote that the storm broke the glass.")
    assert sentence == (7, 31)


def test_character_boxes_merge_into_one_box_per_line():
    line_one = [(10, 700, 16, 710), (17, 698, 22, 712), (23, 700, 30, 708)]
    line_two = [(10, 680, 15, 690), (16, 680, 21, 691)]
    assert line_boxes(line_one + line_two) == [(10, 698, 30, 712), (10, 680, 21, 691)]


def test_a_sentence_missing_from_the_page_leaves_it_bare(corpus, keeper):
    _, c = keeper
    elsewhere = replace(c, page=1)  # page 1 does not hold the sentence
    shown = citation_page(c.source, elsewhere)
    assert not shown.located and shown.sentence_boxes == () and shown.answer_boxes == ()
    bare = citation_page(c.source, elsewhere, boxes=False)
    assert np.array_equal(np.asarray(shown.image), np.asarray(bare.image))


def test_a_page_beyond_the_file_is_refused_with_a_reason(keeper, tmp_path):
    _, c = keeper
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really a PDF")
    with pytest.raises(PageError, match=r"^the PDF could not be opened \(PdfiumError\); re-index the file$"):
        citation_page(broken, c)
    with pytest.raises(PageError, match=r"page 3 is not in this PDF \(it has 2 page\(s\) now\).*re-index"):
        citation_page(c.source, replace(c, page=3))
    with pytest.raises(PageError, match="no page number"):
        citation_page(c.source, replace(c, page=None))


def test_the_sources_panel_shows_the_page_for_pdf_citations_only(engine, corpus, tmp_path):
    page = PageHandlers(engine, UISettings(data_dir=tmp_path))
    result = page.chat(QUESTION, [], [])
    view = page.cited_page(result.turns, result.turn, 0)
    assert view.image is not None and view.image.size == (893, 1263)
    assert view.caption == "Page 2 of 2: the cited sentence in yellow, the answer outlined in red."

    # A text file's citation keeps the highlighted passage alone.
    result = page.chat("Who is the harbour master?", result.history, result.turns)
    assert result.turns[-1]["citations"][0]["source"].endswith(TXT_NAME)
    assert page.cited_page(result.turns, result.turn, 0) == page.cited_page([], None, 0)
    assert page.cited_page([], None, 0).image is None

    # The file changed since it was indexed: a page it no longer has, a sentence it no longer holds.
    answer = result.turns[0]
    moved = {**answer, "citations": [{**answer["citations"][0], "page": 7}]}
    view = page.cited_page([moved], 0, 0)
    assert view.image is None and "page 7 is not in this PDF" in view.caption
    assert str(corpus) not in view.caption and PDF_NAME not in view.caption
    changed = {**answer, "citations": [{**answer["citations"][0], "quote": "A sentence the page never held."}]}
    view = page.cited_page([changed], 0, 0)
    assert view.image is not None and view.caption == f"Page 2 of 2: {NOT_LOCATED}."


# ---- in the browser ------------------------------------------------------------------------------


@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason=f"no browser at {CHROMIUM}: install Debian's chromium (apt-get install -y chromium)")
def test_the_browser_shows_the_page_with_the_answer_boxed(tmp_path, embedder):
    from playwright.sync_api import sync_playwright

    app = launch_test_app(tmp_path, embedder)
    pdf = make_pdf(tmp_path / "incoming" / PDF_NAME)
    left, top, right, bottom = expected_pixels(pdf, 2, ANSWER)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1366, "height": 1000})
                page.goto(app.url)
                page.wait_for_selector("#qa-question textarea")
                assert not page.locator("#qa-page img").is_visible()  # nothing cited yet

                page.get_by_role("tab", name="Documents").click()
                page.set_input_files("#qa-upload input[type=file]", str(pdf))
                page.locator("#qa-upload-status", has_text="Added 1 document").wait_for(timeout=60_000)
                page.get_by_role("tab", name="Sources").click()
                ask_in_page(page, QUESTION, expect=ANSWER)

                image = page.locator("#qa-page img")
                image.wait_for(state="visible", timeout=30_000)
                page.wait_for_function("() => { const i = document.querySelector('#qa-page img');"
                                       " return i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
                size = image.evaluate("i => [i.naturalWidth, i.naturalHeight]")
                assert size == [893, 1263]  # an A4 page at 1.5 pixels per point
                assert page.locator("#qa-page-caption", has_text="Page 2 of 2: the cited sentence").is_visible()
                # The image as the browser decoded it: a red outline just left of the answer, and
                # yellow above the words before it (the sentence's box, padded past the letters).
                rows = image.evaluate(
                    """(i, rows) => { const c = document.createElement('canvas');
                       c.width = i.naturalWidth; c.height = i.naturalHeight;
                       const g = c.getContext('2d'); g.drawImage(i, 0, 0);
                       return rows.map(([x, y, w]) => Array.from(g.getImageData(x, y, w, 1).data)); }""",
                    [[round(left) - 8, round((top + bottom) / 2), 8], [round(left) - 60, round(top) - 1, 50]],
                )
                red = [rows[0][k:k + 3] for k in range(0, len(rows[0]), 4)]
                yellow = [rows[1][k:k + 3] for k in range(0, len(rows[1]), 4)]
                assert any(r > 180 and g < 90 and b < 90 for r, g, b in red), f"no red outline in the browser: {red}"
                assert sum(r > 230 and g > 200 and b < 200 for r, g, b in yellow) > len(yellow) / 2, \
                    f"the sentence is not yellow in the browser: {yellow}"
                assert str(app.root) not in page.content()  # no server path of the documents on the page
                image.scroll_into_view_if_needed()
                OUTPUT.mkdir(exist_ok=True)
                page.screenshot(path=str(OUTPUT / "ui-pdf-page.png"), full_page=True)

                # Picking a citation on the other page shows that page.
                page.locator("#qa-citations label", has_text=f"{PDF_NAME}, page 1").first.click()
                page.locator("#qa-page-caption", has_text="Page 1 of 2").wait_for(timeout=30_000)
                assert image.is_visible()
            finally:
                browser.close()
    finally:
        app.close()
