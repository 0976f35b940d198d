"""A cited PDF page as an image, with the cited sentence and the answer boxed where they are.

The index reads PDFs with pypdf, so a citation's offsets point into pypdf's text, not into
the page's own character list. The page is therefore searched: the quote and the page's
characters (from pdfium's text layer) are both reduced to their letters and digits,
case-folded and without accents, which makes the search blind to line breaks,
hyphenation, ligatures and spacing. The matched characters' boxes are merged into one
rectangle per line and drawn onto the rendered page: translucent yellow for the sentence,
a strong outline for the answer.

Example (an A4 page at 1.5 pixels per point):
    >>> shown = citation_page("/docs/report.pdf", citation)         # doctest: +SKIP
    >>> shown.image.size, shown.located, len(shown.answer_boxes)     # doctest: +SKIP
    ((893, 1263), True, 1)
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from index.ocr import PDFIUM_LOCK  # pdfium is not thread-safe: one lock for OCR and page views
from qa import Citation

PAGE_SCALE = 1.5  # rendered pixels per PDF point
MAX_SIDE = 2400  # pixels: a poster-sized page is rendered smaller, never larger than this
BOX_PAD = 2  # pixels around each merged line of characters
SENTENCE_FILL = (250, 204, 21, 90)  # translucent yellow
ANSWER_FILL = (249, 115, 22, 70)
ANSWER_OUTLINE = (220, 38, 38, 255)
NOT_LOCATED = "could not locate the sentence on the page"



class PageError(ValueError):
    """The cited page cannot be shown; the message is the one line the user sees (no paths)."""


@dataclass(frozen=True)
class Rect:
    """A box on the rendered image, in pixels from its top-left corner (right/bottom exclusive)."""

    left: int
    top: int
    right: int
    bottom: int


@dataclass(frozen=True)
class CitedPage:
    """One rendered page and where the citation lies on it.

    ``located`` is False when the sentence was not found in the page's text layer; the
    image is then the bare page. ``answer_boxes`` is empty when the citation has no
    answer span (or it was not found).
    """

    image: Image.Image
    page: int  # 1-based
    pages: int
    sentence_boxes: tuple[Rect, ...]
    answer_boxes: tuple[Rect, ...]
    located: bool
    scale: float


# ---- searching -----------------------------------------------------------------------------------


def search_key(text: str) -> tuple[str, list[int]]:
    """``text`` reduced to case-folded letters and digits without accents, and for each
    character of that key the position in ``text`` it came from."""
    key: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKD", ch).casefold():
            if c.isalnum():
                key.append(c)
                origin.append(i)
    return "".join(key), origin


def find_quote(page_text: str, quote: str, answer: tuple[int, int] | None = None,
               ) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """Where ``quote`` (and its answer span) lie in ``page_text``, tolerant of layout.

    Args:
        page_text: the page's characters, one per character index of the text layer.
        quote: the cited sentence as the index extracted it.
        answer: the answer's (start, end) offsets inside ``quote``, or None.

    Returns:
        ``(sentence, answer)`` as inclusive ``(first, last)`` character indices of
        ``page_text``, each None when not found. A sentence that runs onto the next page
        is matched by the longest part of it that ends the page (at least half of it).
    """
    page_key, page_origin = search_key(page_text)
    quote_key, quote_origin = search_key(quote)
    if not quote_key or not page_key:
        return None, None
    at = page_key.find(quote_key)
    length = len(quote_key)
    if at < 0:
        length = next((n for n in range(len(quote_key) - 1, (len(quote_key) + 1) // 2 - 1, -1)
                       if page_key.endswith(quote_key[:n])), 0)
        if not length:
            return None, None
        at = len(page_key) - length
    lead = _marks(quote[:quote_origin[0]][::-1])
    trail = _marks(quote[quote_origin[length - 1] + 1:]) if length == len(quote_key) else 0
    sentence = _widen(page_text, page_origin[at], page_origin[at + length - 1], lead, trail)
    if answer is None:
        return sentence, None
    inside = [k for k in range(length) if answer[0] <= quote_origin[k] < answer[1]]
    if not inside:
        return sentence, None
    first, last = quote_origin[inside[0]], quote_origin[inside[-1]]
    return sentence, _widen(page_text, page_origin[at + inside[0]], page_origin[at + inside[-1]],
                            _marks(quote[answer[0]:first][::-1]), _marks(quote[last + 1:answer[1]]))


def _marks(text: str) -> int:
    """How many punctuation marks ``text`` starts with (a quote's closing '.' or '”')."""
    n = 0
    while n < len(text) and not text[n].isspace() and not text[n].isalnum():
        n += 1
    return n


def _widen(page_text: str, first: int, last: int, lead: int, trail: int) -> tuple[int, int]:
    """``first..last`` grown over up to ``lead`` marks before it and ``trail`` after it on the page."""
    def mark(i: int) -> bool:
        return 0 <= i < len(page_text) and not page_text[i].isspace() and not page_text[i].isalnum()

    while lead and mark(first - 1):
        first, lead = first - 1, lead - 1
    while trail and mark(last + 1):
        last, trail = last + 1, trail - 1
    return first, last


# ---- boxes ---------------------------------------------------------------------------------------


def line_boxes(boxes: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """Character boxes (left, bottom, right, top; PDF points, in reading order) merged into
    one box per line: a character joins the line when it overlaps the line's height by at
    least half its own and does not jump back before the line's start."""
    lines: list[list[float]] = []
    for l, b, r, t in boxes:
        if lines:
            line = lines[-1]
            overlap = min(t, line[3]) - max(b, line[1])
            if overlap >= 0.5 * min(t - b, line[3] - line[1]) and l >= line[0] - 1:
                line[:] = [min(l, line[0]), min(b, line[1]), max(r, line[2]), max(t, line[3])]
                continue
        lines.append([l, b, r, t])
    return [tuple(line) for line in lines]


def _page_text(textpage) -> str:
    """The page's characters, exactly one per character index (generated spaces and line
    breaks included), so a position in this string is a pdfium character index."""
    import pypdfium2.raw as pdfium_c

    return "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage, i) or 0xFFFD) for i in range(textpage.count_chars()))


def _char_boxes(textpage, text: str, first: int, last: int) -> list[tuple[float, float, float, float]]:
    """Tight boxes of the visible characters ``first..last`` (whitespace and empty boxes left out)."""
    boxes = []
    for i in range(first, last + 1):
        if text[i].isspace():
            continue
        l, b, r, t = textpage.get_charbox(i)
        if r > l and t > b:
            boxes.append((l, b, r, t))
    return boxes


def _to_image(posconv, box: tuple[float, float, float, float], size: tuple[int, int]) -> Rect:
    l, b, r, t = box
    x0, y0 = posconv.to_bitmap(l, t)
    x1, y1 = posconv.to_bitmap(r, b)
    return Rect(max(0, min(x0, x1) - BOX_PAD), max(0, min(y0, y1) - BOX_PAD),
                min(size[0], max(x0, x1) + BOX_PAD), min(size[1], max(y0, y1) + BOX_PAD))


def draw_boxes(image: Image.Image, sentence: tuple[Rect, ...], answer: tuple[Rect, ...]) -> Image.Image:
    """``image`` with the sentence boxes filled translucent yellow and the answer boxes
    outlined in red (a new RGB image; ``image`` is left as it is)."""
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for r in sentence:
        draw.rectangle((r.left, r.top, r.right - 1, r.bottom - 1), fill=SENTENCE_FILL)
    for r in answer:  # the outline is drawn just outside the box, off the letters
        draw.rectangle((r.left - 3, r.top - 3, r.right + 2, r.bottom + 2), fill=ANSWER_FILL, outline=ANSWER_OUTLINE,
                       width=3)
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


# ---- the page ------------------------------------------------------------------------------------


def _ocr_boxes(path: str | Path, citation: Citation, answer: tuple[int, int] | None, scale: float,
               size: tuple[int, int]) -> tuple[tuple[Rect, ...], tuple[Rect, ...]]:
    """Sentence and answer boxes on a page without a text layer, from the words Tesseract
    reads on it (the same reading the index's text came from); none without Tesseract."""
    from index.ocr import OcrError, find_tesseract, ocr_page

    if find_tesseract() is None:
        return (), ()
    try:
        read = ocr_page(Path(path).read_bytes(), citation.page)
    except (OcrError, OSError):
        return (), ()
    sentence_at, answer_at = find_quote(read.text, citation.quote, answer)

    def rects(span: tuple[int, int] | None) -> tuple[Rect, ...]:
        if span is None:
            return ()
        first, last = span
        lines: list[list[float]] = []  # [left, top, right, bottom] in points, one per line of words
        for word in read.words:
            if word.end <= first or word.start > last:
                continue
            left, top, right, bottom = word.bbox
            if lines and abs(top - lines[-1][1]) < 0.5 * (bottom - top):
                line = lines[-1]
                line[0], line[1], line[2], line[3] = min(line[0], left), min(line[1], top), max(line[2], right), \
                    max(line[3], bottom)
            else:
                lines.append([left, top, right, bottom])
        return tuple(Rect(max(0, int(a * scale)), max(0, int(b * scale)), min(size[0], int(c * scale) + 1),
                          min(size[1], int(d * scale) + 1)) for a, b, c, d in lines)

    return rects(sentence_at), rects(answer_at)


def citation_page(path: str | Path, citation: Citation, with_answer: bool = True, scale: float = PAGE_SCALE,
                  boxes: bool = True) -> CitedPage:
    """Page ``citation.page`` of the PDF at ``path``, rendered, the citation boxed on it.

    Args:
        path: the PDF file the citation comes from.
        citation: a citation with ``page`` set (1-based); its ``quote`` is searched on the
            page, and its answer span (``answer_start``/``answer_end``, when inside the quote).
        with_answer: box the answer span too (False for passages that are not an answer).
        scale: pixels per PDF point; lowered so that neither side exceeds ``MAX_SIDE``.
        boxes: draw the boxes (False: the bare page, with the boxes still computed).

    Returns:
        The image and the boxes, in image pixels.

    Raises:
        PageError: the citation has no page, the file cannot be opened as a PDF, or the
            page is not in it (the file changed since it was indexed).
    """
    import pypdfium2 as pdfium

    if not citation.page:
        raise PageError("this citation has no page number: it does not come from a PDF")
    answer = None
    if with_answer and citation.answer_start is not None and citation.answer_end is not None:
        a, b = citation.answer_start - citation.start, citation.answer_end - citation.start
        answer = (a, b) if 0 <= a < b <= len(citation.quote) else None
    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except (pdfium.PdfiumError, OSError) as e:
            raise PageError(f"the PDF could not be opened ({type(e).__name__}); re-index the file") from None
        try:
            pages = len(pdf)
            if not 1 <= citation.page <= pages:
                raise PageError(f"page {citation.page} is not in this PDF (it has {pages} page(s) now); "
                                "the file changed since it was indexed: re-index it")
            page = pdf[citation.page - 1]
            width, height = page.get_size()
            scale = min(scale, MAX_SIDE / max(width, height, 1.0))
            bitmap = page.render(scale=scale)
            image = bitmap.to_pil().convert("RGB")
            posconv = bitmap.get_posconv(page)
            textpage = page.get_textpage()
            text = _page_text(textpage)
            sentence_at, answer_at = find_quote(text, citation.quote, answer)
            sentence_boxes: tuple[Rect, ...] = ()
            answer_boxes: tuple[Rect, ...] = ()
            if sentence_at:
                sentence_boxes = tuple(_to_image(posconv, box, image.size)
                                       for box in line_boxes(_char_boxes(textpage, text, *sentence_at)))
            if answer_at:
                answer_boxes = tuple(_to_image(posconv, box, image.size)
                                     for box in line_boxes(_char_boxes(textpage, text, *answer_at)))
        finally:
            pdf.close()
    if not text.strip():  # a scanned page: the citation points into the text OCR read
        sentence_boxes, answer_boxes = _ocr_boxes(path, citation, answer, scale, image.size)
    if boxes:
        image = draw_boxes(image, sentence_boxes, answer_boxes)
    return CitedPage(image=image, page=citation.page, pages=pages, sentence_boxes=sentence_boxes,
                     answer_boxes=answer_boxes, located=bool(sentence_boxes), scale=scale)
