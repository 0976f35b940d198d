"""Data types that flow out of ingestion: files become Documents, Documents become Chunks."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Sequence


def page_at(pages: Sequence[int], offset: int) -> int | None:
    """The 1-based page holding character ``offset``, given each page's start offset
    (None for unpaged documents: ``pages`` empty)."""
    if not pages:
        return None
    return bisect.bisect_right(pages, offset)


@dataclass(frozen=True)
class Document:
    """A loaded file: its text, and where that text came from.

    ``text`` is what every character offset in the project points into. For plain
    text and Markdown it is the file's decoded content (newlines translated as
    Python's text mode does), so ``open(path).read()[start:end]`` checks a citation.
    For HTML, PDF and DOCX it is the extracted text; ``raw_segments`` maps spans of
    it back to character offsets in the decoded source file where such a map exists
    (HTML), and ``pages`` gives the offset where each PDF page starts.

    Example:
        >>> doc = Document(source="a.txt", text="Hello.", sha256="0" * 64, kind="txt")
        >>> doc.page_at(3) is None
        True
    """

    source: str
    text: str
    sha256: str
    kind: str
    pages: tuple[int, ...] = ()
    # (text_start, raw_start, length): text[t:t+n] came from the source file's decoded raw[r:r+n].
    raw_segments: tuple[tuple[int, int, int], ...] = field(default=(), repr=False)

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding character ``offset``, or None for unpaged documents."""
        return page_at(self.pages, offset)

    def raw_offset(self, offset: int) -> int | None:
        """Offset in the decoded source file of text character ``offset`` (HTML only)."""
        if not self.raw_segments:
            return None
        starts = [seg[0] for seg in self.raw_segments]
        i = bisect.bisect_right(starts, offset) - 1
        if i < 0:
            return None
        t, r, n = self.raw_segments[i]
        return r + min(offset - t, n)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "text": self.text,
            "sha256": self.sha256,
            "kind": self.kind,
            "pages": list(self.pages),
            "raw_segments": [list(s) for s in self.raw_segments],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Document:
        return cls(
            source=d["source"],
            text=d["text"],
            sha256=d["sha256"],
            kind=d["kind"],
            pages=tuple(d.get("pages", ())),
            raw_segments=tuple(tuple(s) for s in d.get("raw_segments", ())),
        )


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: ``document.text[start:end] == text``."""

    id: int
    source: str
    start: int
    end: int
    text: str
    page: int | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "page": self.page,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Chunk:
        return cls(d["id"], d["source"], d["start"], d["end"], d["text"], d.get("page"))


@dataclass(frozen=True)
class DocumentInfo:
    """What the index knows about one indexed document (for listings)."""

    source: str
    kind: str
    chars: int
    chunks: int
    sha256: str

    def to_dict(self) -> dict:
        return {"source": self.source, "kind": self.kind, "chars": self.chars, "chunks": self.chunks, "sha256": self.sha256}


@dataclass(frozen=True)
class IndexReport:
    """What a build, add or remove did, file by file."""

    indexed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (source, reason)
    removed: tuple[str, ...] = ()
    chunks_added: int = 0
    chunks_removed: int = 0
    notes: tuple[tuple[str, str], ...] = ()  # (source, note): indexed, with something a person should know

    def summary(self) -> str:
        return (
            f"{len(self.indexed)} indexed, {len(self.skipped)} skipped, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed "
            f"({self.chunks_added} chunks added, {self.chunks_removed} removed)"
        )

    def to_dict(self) -> dict:
        return {
            "indexed": list(self.indexed),
            "unchanged": list(self.unchanged),
            "skipped": [{"source": s, "reason": r} for s, r in self.skipped],
            "removed": list(self.removed),
            "chunks_added": self.chunks_added,
            "chunks_removed": self.chunks_removed,
            "notes": [{"source": s, "note": n} for s, n in self.notes],
        }
