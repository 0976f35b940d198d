"""Read files into Documents, keeping every offset meaningful.

One function per format; ``load_document`` picks by extension. A file that cannot be
read raises ``UnreadableFile`` with a reason a person can act on; callers that index
many files report it and go on.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import re
from html.parser import HTMLParser
from pathlib import Path

from index.types import Document

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")


class UnreadableFile(ValueError):
    """A file that cannot be turned into text; the message says why."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_document(path: str | Path) -> Document:
    """Load one file into a Document.

    Args:
        path: a .txt, .md, .html, .pdf or .docx file.

    Returns:
        The Document, whose ``source`` is ``str(path)`` as given.

    Raises:
        UnreadableFile: the file is missing, empty, binary, broken or of an unsupported type.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnreadableFile(f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise UnreadableFile("file not found") from None
    except OSError as e:
        raise UnreadableFile(f"cannot read file: {e.strerror or e}") from None
    if not data.strip():
        raise UnreadableFile("empty file (no text to index)")
    digest = sha256_bytes(data)
    if suffix in (".txt", ".md", ".markdown"):
        text, segments, pages, kind = decode_text(data), (), (), "md" if suffix != ".txt" else "txt"
    elif suffix in (".html", ".htm"):
        text, segments = html_to_text(decode_text(data))
        pages, kind = (), "html"
    elif suffix == ".pdf":
        text, pages = pdf_to_text(data)
        segments, kind = (), "pdf"
    else:
        text, segments, pages, kind = docx_to_text(data), (), (), "docx"
    if not text.strip():
        hint = " (a scanned PDF needs OCR first)" if kind == "pdf" else ""
        raise UnreadableFile(f"no extractable text{hint}")
    return Document(source=str(path), text=text, sha256=digest, kind=kind, pages=pages, raw_segments=segments)


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes) -> str:
    """Decode bytes the way a person's text file is meant: BOM first, then UTF-8, then Latin-1.

    Newlines are translated as Python's text mode does (``\\r\\n`` and ``\\r`` become ``\\n``),
    so offsets agree with ``open(path, encoding=...).read()``.
    """
    for bom, enc in _BOMS:
        if data.startswith(bom):
            text = data.decode(enc)
            break
    else:
        if b"\x00" in data[:4096]:
            raise UnreadableFile("binary content, not text (NUL bytes and no UTF-16/32 byte-order mark)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="strict") if _is_cp1252(data) else data.decode("latin-1")
    if _looks_binary(text):
        raise UnreadableFile("binary content, not text (mostly control characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_cp1252(data: bytes) -> bool:
    try:
        data.decode("cp1252")
        return True
    except UnicodeDecodeError:
        return False


def _looks_binary(text: str) -> bool:
    sample = text[:4096]
    if not sample:
        return False
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f\v")
    return control / len(sample) > 0.05


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
    """Text of every page (pypdf), pages joined by a blank line; returns the page start offsets."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        page_texts = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise UnreadableFile(f"broken or encrypted PDF ({type(e).__name__}: {e})") from None
    except Exception as e:  # pypdf raises many internal types on damaged files
        raise UnreadableFile(f"broken PDF ({type(e).__name__}: {e})") from None
    parts, starts, pos = [], [], 0
    for t in page_texts:
        t = t.replace("\r\n", "\n").replace("\r", "\n")
        starts.append(pos)
        parts.append(t)
        pos += len(t) + 2
    return "\n\n".join(parts), tuple(starts)


def docx_to_text(data: bytes) -> str:
    """Paragraph text of a Word document (tables included, row by row), one paragraph a line."""
    import io
    import zipfile

    try:
        import docx
    except ImportError as e:  # pragma: no cover - declared in requirements.txt
        raise UnreadableFile(f"python-docx is not installed ({e})") from None
    try:
        d = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise UnreadableFile(f"broken Word document ({type(e).__name__}: {e})") from None
    lines = [p.text for p in d.paragraphs]
    for table in d.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(lines)
