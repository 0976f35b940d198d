"""Read PDF pages that have no text layer (scans) with Tesseract.

A page is rendered with pypdfium2 (300 dpi by default) to a grey image and given to the
``tesseract`` program on its standard input; its word table (TSV) is turned into the page
text, one line of words per line, a blank line between paragraphs. The same page read twice
gives the same text, so the offsets of words in it (``ocr_page_words``) stay valid next to a
Document's text.

Tesseract is Debian's ``tesseract-ocr`` with ``tesseract-ocr-eng``; ``find_tesseract`` says
whether it is installed. Nothing here reads a file or keeps state but a lock: pdfium may
not be used by two threads at once.

Example:
    >>> from index.ocr import find_tesseract, ocr_page
    >>> if find_tesseract():                                        # doctest: +SKIP
    ...     print(ocr_page(open("scan.pdf", "rb").read(), 1).text)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "NO_TEXT_LAYER", "DEFAULT_DPI", "DEFAULT_PAGE_TIME_LIMIT_S", "OcrError", "OcrTimeout", "OcrWord", "OcrPage",
    "find_tesseract", "page_is_blank", "render_page", "ocr_page", "ocr_page_words",
]

NO_TEXT_LAYER = "no text layer: install tesseract-ocr to read scanned pages"
DEFAULT_DPI = 300
DEFAULT_PAGE_TIME_LIMIT_S = 30.0
# A page is drawn at most this many pixels on its longer side (an A4 page at 300 dpi is 3508),
# so that a PDF declaring a page metres wide cannot exhaust memory.
MAX_SIDE_PX = 7000
LANGUAGE = "eng"

PDFIUM_LOCK = threading.Lock()  # pdfium is not thread-safe: every call into it in this process runs under this lock


class OcrError(RuntimeError):
    """Tesseract failed, or the page could not be rendered; the message says why."""


class OcrTimeout(OcrError):
    """Reading one page took longer than its time limit."""


class OcrWord(NamedTuple):
    """One word Tesseract read: ``page_text[start:end] == text``.

    ``bbox`` is (left, top, right, bottom) in PDF points from the page's top-left corner, as
    the page is shown (its rotation applied), so it scales onto any rendering of the page.
    """

    text: str
    start: int
    end: int
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class OcrPage:
    """The text Tesseract read on one page and its words, with offsets into ``text``."""

    text: str
    words: tuple[OcrWord, ...]


def find_tesseract() -> str | None:
    """Path of the ``tesseract`` program, or None where it is not installed."""
    return shutil.which("tesseract")


def page_is_blank(pdf_bytes: bytes, page_number: int) -> bool:
    """True when page ``page_number`` (1-based) draws nothing at all: no text, image or path.

    Such a page has nothing to read, so it needs no OCR and no warning.
    """
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(pdf_bytes)
        except pdfium.PdfiumError:
            return False  # rendering it will say why
        try:
            page = pdf[page_number - 1]
            try:
                return pdfium.raw.FPDFPage_CountObjects(page.raw) == 0
            finally:
                page.close()
        except (pdfium.PdfiumError, IndexError):
            return False
        finally:
            pdf.close()


def render_page(pdf_bytes: bytes, page_number: int, *, dpi: int = DEFAULT_DPI) -> tuple[bytes, float]:
    """Page ``page_number`` (1-based) as a grey PGM image, and its pixels per PDF point.

    The scale is ``dpi / 72``, lowered where the page would be over ``MAX_SIDE_PX`` pixels.

    Raises:
        OcrError: pdfium cannot open the file or draw the page.
    """
    import pypdfium2 as pdfium

    if dpi <= 0:
        raise ValueError(f"dpi must be greater than 0. Currently, dpi is {dpi}")
    try:
        return _render(pdfium, pdf_bytes, page_number, dpi)
    except (pdfium.PdfiumError, IndexError) as e:
        raise OcrError(f"the page could not be drawn for OCR ({e})") from None


def _render(pdfium, pdf_bytes: bytes, page_number: int, dpi: int) -> tuple[bytes, float]:
    with PDFIUM_LOCK:
        pdf = pdfium.PdfDocument(pdf_bytes)
        try:
            page = pdf[page_number - 1]
            try:
                width, height = page.get_size()
                scale = min(dpi / 72, MAX_SIDE_PX / max(width, height, 1.0))
                bitmap = page.render(scale=scale, grayscale=True)
                try:
                    # A copy: the array is a view of the bitmap's memory, freed by close().
                    pixels = bitmap.to_numpy().copy()
                finally:
                    bitmap.close()
            finally:
                page.close()
        finally:
            pdf.close()
    if pixels.ndim == 3:
        pixels = pixels[:, :, 0]
    rows, cols = pixels.shape
    header = b"P5\n%d %d\n255\n" % (cols, rows)
    return header + pixels.astype("uint8").tobytes(), scale


def ocr_page(
    pdf_bytes: bytes,
    page_number: int,
    *,
    dpi: int = DEFAULT_DPI,
    time_limit: float = DEFAULT_PAGE_TIME_LIMIT_S,
    tesseract: str | None = None,
) -> OcrPage:
    """Read page ``page_number`` (1-based) of a PDF with Tesseract.

    Args:
        pdf_bytes: the whole PDF file.
        page_number: which page, counting from 1.
        dpi: rendering resolution; 300 suits printed text.
        time_limit: most seconds Tesseract may spend on the page.
        tesseract: path of the program (default: ``find_tesseract()``).

    Returns:
        The page text (words of a line joined by a space, lines by a newline, paragraphs
        by a blank line) and every word with its offsets into that text and its box.

    Raises:
        OcrError: Tesseract is missing or failed (its message is included).
        OcrTimeout: Tesseract ran past ``time_limit``; it is stopped.
    """
    if not time_limit > 0:
        raise ValueError(f"time_limit must be greater than 0. Currently, time_limit is {time_limit}")
    program = tesseract or find_tesseract()
    if program is None:
        raise OcrError(NO_TEXT_LAYER)
    image, scale = render_page(pdf_bytes, page_number, dpi=dpi)
    resolution = max(1, round(scale * 72))
    # One thread: the same page gives the same words every time, and a shared machine is spared.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            [program, "stdin", "stdout", "--dpi", str(resolution), "-l", LANGUAGE, "tsv"],
            input=image, capture_output=True, timeout=time_limit, env=env, check=False,
        )
    except subprocess.TimeoutExpired:
        raise OcrTimeout(f"OCR took longer than {time_limit:g} s") from None
    except OSError as e:
        raise OcrError(f"tesseract could not be started ({e.strerror or e})") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"exit status {done.returncode}"
        raise OcrError(f"tesseract failed ({detail}); check that tesseract-ocr-{LANGUAGE} is installed")
    return _page_from_tsv(done.stdout.decode("utf-8", "replace"), 1 / scale)


def ocr_page_words(pdf_bytes: bytes, page_number: int, **options) -> list[OcrWord]:
    """The words Tesseract reads on a page, with their boxes, for highlighting.

    Offsets are into the page's text as ``load_document`` stores it, so in a Document they
    are ``doc.pages[page_number - 1] + start`` and ``doc.pages[page_number - 1] + end``.
    Keyword ``options`` are those of ``ocr_page``; pass the same ``dpi`` the loader used.
    """
    return list(ocr_page(pdf_bytes, page_number, **options).words)


def _page_from_tsv(tsv: str, points_per_pixel: float) -> OcrPage:
    """Page text and word offsets from Tesseract's TSV (level 5 rows are words)."""
    parts: list[str] = []
    words: list[OcrWord] = []
    length = 0
    previous: tuple[str, str, str] | None = None
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = "\t".join(cols[11:]).strip()
        if not text:
            continue
        block, par, line = cols[2], cols[3], cols[4]
        if previous is not None:
            if (block, par) != previous[:2]:
                sep = "\n\n"
            elif line != previous[2]:
                sep = "\n"
            else:
                sep = " "
            parts.append(sep)
            length += len(sep)
        previous = (block, par, line)
        left, top, width, height = (int(c) for c in cols[6:10])
        box = tuple(round(v * points_per_pixel, 2) for v in (left, top, left + width, top + height))
        words.append(OcrWord(text, length, length + len(text), box))  # type: ignore[arg-type]
        parts.append(text)
        length += len(text)
    return OcrPage("".join(parts), tuple(words))
