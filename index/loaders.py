"""Read files into Documents, keeping every offset meaningful.

One function per format; ``load_document`` picks by extension. Whatever is wrong with a
file, ``load_document`` raises ``UnreadableFile`` with a reason a person can act on, and
nothing else: callers that index many files report it and go on. What it guards against:

* special files: the path is checked with ``os.stat`` and the file is opened without
  blocking and checked again, so a FIFO, socket or device is never read;
* files that change, vanish or are replaced while being read (size, mtime and inode are
  compared before and after);
* any exception a parser raises on a damaged file (pypdf, python-docx, lxml, zipfile,
  ``RecursionError``, ``MemoryError``, ...);
* parsing that takes too long: each file is parsed in its own thread with a time limit
  (``time_limit``, default 60 s). A thread cannot be killed, so at the limit the parse is
  stopped by raising an exception inside that thread at its next Python instruction
  (pypdf, python-docx and the HTML parser are Python code, so they stop within
  milliseconds); the caller does not wait for it beyond a short grace period;
* content that decodes to noise rather than text (see ``text_problem``).

PDF pages without a text layer (scans) are read with Tesseract (``index.ocr``), each page
under its own time limit inside the file's; where Tesseract is not installed they are named
in the notes ``load_document_with_notes`` returns, or the file is refused when no page has
text. None is ever dropped without a word.
"""

from __future__ import annotations

import ctypes
import errno
import html
import io
import os
import re
import stat
import threading
from html.parser import HTMLParser
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from index.decoding import NotText, decode_text, text_problem
from index.files import SUPPORTED_SUFFIXES, describe_mode, is_valid_name
from index.hashing import sha256_bytes, sha256_file
from index.ocr import DEFAULT_DPI, DEFAULT_PAGE_TIME_LIMIT_S
from index.types import Document

__all__ = [
    "SUPPORTED_SUFFIXES", "UnreadableFile", "load_document", "decode_text", "text_problem",
    "load_document_with_notes", "html_to_text", "pdf_to_text", "pdf_to_text_with_notes", "docx_to_text",
    "sha256_bytes", "sha256_file",
    "DEFAULT_TIME_LIMIT_S", "DEFAULT_MAX_BYTES",
]

DEFAULT_TIME_LIMIT_S = 60.0
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
# A Word file is a zip; python-docx unpacks its parts in memory. Real documents unpack to a
# few MB (images included, tens of MB); more than this is a zip bomb or not a document.
MAX_DOCX_UNPACKED_BYTES = 512 * 1024 * 1024


class UnreadableFile(ValueError):
    """A file that cannot be turned into text; the message says why."""


def load_document(
    path: str | Path,
    *,
    time_limit: float | None = DEFAULT_TIME_LIMIT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Document:
    """Load one file into a Document.

    Args:
        path: a .txt, .md, .html, .pdf or .docx file.
        time_limit: most seconds to spend parsing it (None: no limit).
        max_bytes: larger files are refused without being read.

    Returns:
        The Document, whose ``source`` is ``str(path)`` as given. What
        ``load_document_with_notes`` would say about it (pages read with OCR, scanned
        pages left out) is dropped; call that to report it.

    Raises:
        UnreadableFile: the file is missing, empty, not a regular file, not text, broken,
            too slow to parse, changed while read, named with bytes that are not UTF-8, a
            PDF with no text layer where Tesseract is not installed, or of an unsupported
            type; never any other exception for a bad file.
        ValueError: ``time_limit`` or ``max_bytes`` is not positive.
    """
    return load_document_with_notes(path, time_limit=time_limit, max_bytes=max_bytes)[0]


def load_document_with_notes(
    path: str | Path,
    *,
    time_limit: float | None = DEFAULT_TIME_LIMIT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    ocr_page_time_limit: float = DEFAULT_PAGE_TIME_LIMIT_S,
    ocr_dpi: int = DEFAULT_DPI,
) -> tuple[Document, tuple[str, ...]]:
    """Load one file into a Document, with notes a person should see about it.

    The notes are for PDFs whose pages have no text layer (scans): each such page is read
    with Tesseract where it is installed ("pages 1 and 2 read with OCR (no text layer)");
    where it is not, the file keeps the pages that have text and the others are named
    ("page 3 left out: no text layer: install tesseract-ocr to read scanned pages"). A
    PDF without any text layer is refused then, with that reason. Pages left out keep
    their place: ``Document.pages`` still has one offset per page.

    Args:
        path, time_limit, max_bytes: as for ``load_document``; ``time_limit`` covers OCR.
        ocr_page_time_limit: most seconds Tesseract may spend on one page; a page over it
            is left out with a note.
        ocr_dpi: resolution pages are rendered at for OCR.

    Returns:
        ``(document, notes)``; ``notes`` is empty for every file read without trouble.

    Raises:
        UnreadableFile, ValueError: as for ``load_document``.
    """
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be greater than 0 (or None for no limit). Currently, time_limit is {time_limit}")
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be greater than 0. Currently, max_bytes is {max_bytes}")
    if not ocr_page_time_limit > 0:
        raise ValueError(f"ocr_page_time_limit must be greater than 0. Currently, ocr_page_time_limit is {ocr_page_time_limit}")
    if ocr_dpi <= 0:
        raise ValueError(f"ocr_dpi must be greater than 0. Currently, ocr_dpi is {ocr_dpi}")
    p = Path(path)
    if not is_valid_name(str(p)):
        raise UnreadableFile("the file name is not valid UTF-8 (it could not be stored or cited); rename it to index it")
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnreadableFile(f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    data = read_file(p, max_bytes=max_bytes)
    if not data.strip():
        raise UnreadableFile("empty file (no text to index)")
    kind = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}.get(suffix, suffix[1:])
    ocr = _OcrOptions(ocr_page_time_limit, ocr_dpi)
    text, pages, segments, notes = run_with_time_limit(lambda: _parse(data, kind, ocr), time_limit, kind)
    if not text.strip():
        raise UnreadableFile("no extractable text" + (f" ({'; '.join(notes)})" if notes else ""))
    problem = text_problem(text)
    if problem:
        hint = " (its fonts may map glyphs to no characters; print it to an image PDF to have it read with OCR)" if kind == "pdf" else ""
        raise UnreadableFile(f"{problem}{hint}")
    doc = Document(source=str(path), text=text, sha256=sha256_bytes(data), kind=kind, pages=pages, raw_segments=segments)
    return doc, notes


@dataclass(frozen=True)
class _OcrOptions:
    page_time_limit: float = DEFAULT_PAGE_TIME_LIMIT_S
    dpi: int = DEFAULT_DPI


def _parse(
    data: bytes, kind: str, ocr: _OcrOptions,
) -> tuple[str, tuple[int, ...], tuple[tuple[int, int, int], ...], tuple[str, ...]]:
    if kind in ("txt", "md"):
        return decode_text(data), (), (), ()
    if kind == "html":
        text, segments = html_to_text(decode_text(data))
        return text, (), segments, ()
    if kind == "pdf":
        text, pages, notes = pdf_to_text_with_notes(data, ocr_page_time_limit=ocr.page_time_limit, ocr_dpi=ocr.dpi)
        return text, pages, (), notes
    return docx_to_text(data), (), (), ()


# ---- reading bytes ---------------------------------------------------------------------------

def read_file(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a regular file, read once and checked to have stayed the same.

    Raises:
        UnreadableFile: missing, a link loop, not a regular file (never opened then), over
            ``max_bytes``, unreadable, or changed, replaced or removed while read.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        raise UnreadableFile(_os_reason(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise UnreadableFile("a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFile(f"not a regular file ({describe_mode(st.st_mode)}); it is never opened")
    if st.st_size > max_bytes:
        raise UnreadableFile(f"file is {st.st_size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit for one document")
    try:
        # O_NONBLOCK: had the file been swapped for a FIFO since the stat, open must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise UnreadableFile(_os_reason(e)) from None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise UnreadableFile(f"not a regular file ({describe_mode(before.st_mode)}); it is never read")
        blocks, total = [], 0
        while block := os.read(fd, 1 << 20):
            total += len(block)
            if total > max_bytes:
                raise UnreadableFile(f"file grew past the {max_bytes / 2**20:.0f} MiB limit while being read")
            blocks.append(block)
        after = os.fstat(fd)
    except OSError as e:
        raise UnreadableFile(_os_reason(e)) from None
    finally:
        os.close(fd)
    data = b"".join(blocks)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or len(data) != after.st_size:
        raise UnreadableFile("the file changed while it was being read; index it again once it is no longer being written")
    try:
        now = os.stat(path)
    except FileNotFoundError:
        raise UnreadableFile("the file was removed while it was being read") from None
    except OSError as e:
        raise UnreadableFile(_os_reason(e)) from None
    if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
        raise UnreadableFile("the file was replaced while it was being read; index it again")
    return data


def _os_reason(e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop (the link leads back to itself); remove or fix the link"
    if e.errno == errno.ENOENT:
        return "file not found"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; give read access to index it"
    return f"cannot read file: {e.strerror or e}"


# ---- the time limit --------------------------------------------------------------------------

T = TypeVar("T")


class _ParseTimeout(BaseException):
    """Raised inside a parsing thread at its time limit; a BaseException so that a parser's
    own ``except Exception`` (pypdf recovers from damage that way) does not swallow it."""


_GRACE_S = 2.0


def run_with_time_limit(fn: Callable[[], T], seconds: float | None, what: str) -> T:
    """``fn()`` in a thread of its own, given at most ``seconds``.

    ``NotText`` becomes ``UnreadableFile`` with its message; any other exception from ``fn``
    (``KeyboardInterrupt`` and ``SystemExit`` apart) becomes ``UnreadableFile`` naming the
    format ``what`` and the exception. At the limit, ``_ParseTimeout`` is raised
    inside the thread (again every 0.1 s, in case the parser catches it); after a grace of
    2 s the caller gets ``UnreadableFile`` even if the thread is stuck in C code (it then
    ends at its next Python instruction, in the background).
    """
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["value"] = fn()
        except _ParseTimeout:
            result["timeout"] = True
        except BaseException as e:  # noqa: BLE001 - every parser failure is reported, none ends the run
            result["error"] = e

    worker = threading.Thread(target=work, name=f"parse-{what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        tid = ctypes.c_ulong(worker.ident)
        waited = 0.0
        while worker.is_alive() and waited < _GRACE_S:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(tid, ctypes.py_object(_ParseTimeout))
            worker.join(0.1)
            waited += 0.1
        raise UnreadableFile(f"reading this {_FORMAT_NAMES.get(what, what)} took longer than {seconds:g} s; "
                             "the file is damaged or too complex (split it, or convert it to text)")
    if "timeout" in result:  # the limit struck just as the parse ended
        raise UnreadableFile(f"reading this {_FORMAT_NAMES.get(what, what)} took longer than {seconds:g} s")
    error = result.get("error")
    if isinstance(error, UnreadableFile):
        raise error
    if isinstance(error, NotText):
        raise UnreadableFile(str(error)) from None
    if isinstance(error, BaseException):
        if not isinstance(error, Exception):  # KeyboardInterrupt, SystemExit: not a file's fault
            raise error
        raise UnreadableFile(f"broken {_FORMAT_NAMES.get(what, what)} ({_describe(error)})") from None
    return result["value"]  # type: ignore[return-value]


_FORMAT_NAMES = {"txt": "text file", "md": "Markdown file", "html": "HTML page", "pdf": "PDF", "docx": "Word document"}


def _describe(e: BaseException) -> str:
    try:
        text = str(e).strip()
    except Exception:  # noqa: BLE001 - a parser's exception whose message cannot be made
        text = ""
    message = text.splitlines()[0] if text else ""
    if len(message) > 200:
        message = message[:200] + "..."
    return f"{type(e).__name__}: {message}" if message else type(e).__name__


# ---- HTML ------------------------------------------------------------------------------------

_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
    "section", "article", "header", "footer", "blockquote", "pre", "title", "dd", "dt", "hr",
}
_SKIP_TAGS = {"script", "style", "noscript", "template"}


class _TextExtractor(HTMLParser):
    """Collects visible text with the raw offset of every piece."""

    def __init__(self, raw: str) -> None:
        super().__init__(convert_charrefs=False)
        self.raw = raw
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", raw)]
        self.parts: list[str] = []
        self.segments: list[tuple[int, int, int]] = []
        self.length = 0
        self.skip = 0

    def _raw_pos(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def _emit(self, text: str, raw_start: int | None) -> None:
        if not text:
            return
        if raw_start is not None:
            self.segments.append((self.length, raw_start, len(text)))
        self.parts.append(text)
        self.length += len(text)

    def _newline(self) -> None:
        if self.parts and not self.parts[-1].endswith("\n"):
            self._emit("\n", None)

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip += 1
        if tag in _BLOCK_TAGS:
            self._newline()

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        if tag in _BLOCK_TAGS:
            self._newline()

    def handle_data(self, data):
        if self.skip:
            return
        start = self._raw_pos()
        # Collapse runs of white space inside the text node; keep a segment per kept run.
        for m in re.finditer(r"\S+(?:[ \t]\S+)*", data):
            piece = m.group(0)
            if self.parts and not self.parts[-1].endswith(("\n", " ")):
                self._emit(" ", None)
            self._emit(piece, start + m.start())

    def handle_entityref(self, name):
        self._emit_ref(f"&{name};")

    def handle_charref(self, name):
        self._emit_ref(f"&#{name};")

    def _emit_ref(self, ref: str) -> None:
        if self.skip:
            return
        self._emit(html.unescape(ref), None)


def html_to_text(raw: str) -> tuple[str, tuple[tuple[int, int, int], ...]]:
    """Visible text of an HTML page, and segments mapping it back to ``raw``."""
    parser = _TextExtractor(raw)
    parser.feed(raw)
    parser.close()
    return "".join(parser.parts), tuple(parser.segments)


def pdf_to_text(data: bytes) -> tuple[str, tuple[int, ...]]:
    """Text of every page, pages joined by a blank line; returns the page start offsets.

    Pages without a text layer are read with OCR where Tesseract is installed (see
    ``pdf_to_text_with_notes``, which also says which pages were).
    """
    text, pages, _ = pdf_to_text_with_notes(data)
    return text, pages


def pdf_to_text_with_notes(
    data: bytes,
    *,
    ocr_page_time_limit: float = DEFAULT_PAGE_TIME_LIMIT_S,
    ocr_dpi: int = DEFAULT_DPI,
) -> tuple[str, tuple[int, ...], tuple[str, ...]]:
    """Text of every page (pypdf's text layer, else Tesseract), the page start offsets, and notes.

    A page whose text layer is missing or only white space, and which draws something, is
    rendered and read with Tesseract; where Tesseract is not installed it is left empty
    and named in a note. A page that draws nothing is blank and needs neither. Every page
    keeps its place, so the text is always the pages' texts joined by a blank line.

    Raises:
        UnreadableFile: an encrypted PDF that needs a password, or one with no text layer
            on any page where Tesseract is not installed (``NO_TEXT_LAYER``). Damaged files
            raise pypdf's own exceptions, which ``load_document`` reports.
    """
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except Exception:  # noqa: BLE001 - unsupported cipher or missing crypto library
            opened = 0
        if not opened:
            raise UnreadableFile("encrypted PDF (it needs a password); save a copy without the password to index it")
    texts = [(page.extract_text() or "").replace("\r\n", "\n").replace("\r", "\n") for page in reader.pages]
    notes: tuple[str, ...] = ()
    if any(not t.strip() for t in texts):
        texts, notes = _read_pages_without_text(data, texts, ocr_page_time_limit, ocr_dpi)
    starts, pos = [], 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + 2
    return "\n\n".join(texts), tuple(starts), notes


def _read_pages_without_text(
    data: bytes, texts: list[str], page_time_limit: float, dpi: int,
) -> tuple[list[str], tuple[str, ...]]:
    """``texts`` with its empty pages read by OCR where possible, and a note per outcome."""
    from index import ocr

    texts = list(texts)
    scans = [n for n, t in enumerate(texts, 1) if not t.strip() and not ocr.page_is_blank(data, n)]
    if not scans:
        return texts, ()
    program = ocr.find_tesseract()
    if program is None:
        if not any(t.strip() for t in texts):
            raise UnreadableFile(ocr.NO_TEXT_LAYER)
        return texts, (f"{_page_list(scans)} left out: {ocr.NO_TEXT_LAYER}",)
    outcomes: dict[str, list[int]] = {}
    for n in scans:
        try:
            page = ocr.ocr_page(data, n, dpi=dpi, time_limit=page_time_limit, tesseract=program)
        except ocr.OcrError as e:
            outcomes.setdefault(f"left out: {e}", []).append(n)
            continue
        if page.text.strip():
            texts[n - 1] = page.text
            outcomes.setdefault("read with OCR (no text layer)", []).append(n)
        else:
            outcomes.setdefault("left out: no text layer, and OCR found no text on it", []).append(n)
    return texts, tuple(f"{_page_list(pages)} {outcome}" for outcome, pages in outcomes.items())


def _page_list(pages: list[int]) -> str:
    """"page 3", "pages 1 and 4", "pages 1, 2 and 5"."""
    if len(pages) == 1:
        return f"page {pages[0]}"
    return f"pages {', '.join(map(str, pages[:-1]))} and {pages[-1]}"


def docx_to_text(data: bytes) -> str:
    """Paragraph text of a Word document (tables included, row by row), one paragraph a line.

    Raises:
        UnreadableFile: not a zip archive (an old .doc, or damaged), or one that unpacks to
            more than ``MAX_DOCX_UNPACKED_BYTES``. Other damage raises python-docx's, lxml's or
            zipfile's own exceptions, which ``load_document`` reports.
    """
    import zipfile

    import docx

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UnreadableFile("not a Word document (not a zip archive); an old .doc file must be saved as .docx") from None
    unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > MAX_DOCX_UNPACKED_BYTES:
        raise UnreadableFile(f"Word document unpacks to {unpacked / 2**20:.0f} MiB, over the "
                             f"{MAX_DOCX_UNPACKED_BYTES / 2**20:.0f} MiB limit (a zip bomb, or not a document)")
    d = docx.Document(io.BytesIO(data))
    lines = [p.text for p in d.paragraphs]
    for table in d.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(lines)
