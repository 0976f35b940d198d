"""Metadata in SQLite: documents, their content hashes, and chunks with their spans.

The catalog lives in memory while an index is open and is written to a new file on
save (see ``index.backends.folder``), so a half-finished change never touches the file on disk.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from index.types import Chunk, Document, DocumentInfo

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    source TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    chars INTEGER NOT NULL,
    pages TEXT NOT NULL,
    raw_segments TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL REFERENCES documents(source) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    page INTEGER,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
"""


class Catalog:
    FILENAME = "catalog.sqlite"

    def __init__(self, conn: sqlite3.Connection | None = None) -> None:
        self._conn = conn or sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.executescript(SCHEMA)
        self._lock = threading.RLock()

    @classmethod
    def load(cls, path: Path) -> Catalog:
        src = sqlite3.connect(f"file:{Path(path) / cls.FILENAME}?mode=ro", uri=True)
        mem = sqlite3.connect(":memory:", check_same_thread=False)
        try:
            src.backup(mem)
        finally:
            src.close()
        return cls(mem)

    def copy(self) -> Catalog:
        """An independent in-memory copy (a writer changes the copy; readers keep the original)."""
        mem = sqlite3.connect(":memory:", check_same_thread=False)
        with self._lock:
            self._conn.commit()
            self._conn.backup(mem)
        return Catalog(mem)

    def save(self, path: Path) -> None:
        dst = sqlite3.connect(Path(path) / self.FILENAME)
        try:
            with self._lock:
                self._conn.commit()
                self._conn.backup(dst)
        finally:
            dst.close()

    def hashes(self) -> dict[str, str]:
        with self._lock:
            return dict(self._conn.execute("SELECT source, sha256 FROM documents"))

    def add_document(self, document: Document, chunks: list[Chunk]) -> list[Chunk]:
        """Store ``document`` and its chunks; returns the chunks with their new ids."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    document.source,
                    document.kind,
                    document.sha256,
                    len(document.text),
                    json.dumps(list(document.pages)),
                    json.dumps([list(s) for s in document.raw_segments]),
                    document.text,
                ),
            )
            stored = []
            for c in chunks:
                cur = self._conn.execute(
                    "INSERT INTO chunks (source, start, end, page, text) VALUES (?, ?, ?, ?, ?)",
                    (c.source, c.start, c.end, c.page, c.text),
                )
                stored.append(Chunk(cur.lastrowid, c.source, c.start, c.end, c.text, c.page))
            return stored

    def remove_document(self, source: str) -> list[int]:
        """Delete ``source`` and its chunks; returns the removed chunk ids."""
        with self._lock:
            ids = [r[0] for r in self._conn.execute("SELECT id FROM chunks WHERE source = ?", (source,))]
            self._conn.execute("DELETE FROM chunks WHERE source = ?", (source,))
            self._conn.execute("DELETE FROM documents WHERE source = ?", (source,))
            return ids

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, source, start, end, text, page FROM chunks WHERE id IN ({','.join('?' * len(ids))})",
                [int(i) for i in ids],
            ).fetchall()
        return {r[0]: Chunk(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows}

    def chunk_ids(self) -> list[int]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT id FROM chunks ORDER BY id")]

    def orphan_chunk_ids(self) -> list[int]:
        """Chunks whose document row is missing."""
        with self._lock:
            return [r[0] for r in self._conn.execute(
                "SELECT id FROM chunks WHERE source NOT IN (SELECT source FROM documents) ORDER BY id")]

    def sources_of(self, ids: list[int]) -> list[str]:
        """The distinct sources of these chunk ids."""
        if not ids:
            return []
        with self._lock:
            rows = self._conn.execute(
                f"SELECT DISTINCT source FROM chunks WHERE id IN ({','.join('?' * len(ids))}) ORDER BY source",
                [int(i) for i in ids]).fetchall()
        return [r[0] for r in rows]

    def delete_chunks(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._lock:
            self._conn.execute(f"DELETE FROM chunks WHERE id IN ({','.join('?' * len(ids))})", [int(i) for i in ids])

    def all_chunk_texts(self) -> tuple[list[int], list[str]]:
        with self._lock:
            rows = self._conn.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def chunks_of(self, source: str) -> list[Chunk]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, source, start, end, text, page FROM chunks WHERE source = ? ORDER BY start", (source,)
            ).fetchall()
        return [Chunk(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def document(self, source: str) -> Document | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT source, text, sha256, kind, pages, raw_segments FROM documents WHERE source = ?", (source,)
            ).fetchone()
        if row is None:
            return None
        return Document(
            source=row[0],
            text=row[1],
            sha256=row[2],
            kind=row[3],
            pages=tuple(json.loads(row[4])),
            raw_segments=tuple(tuple(s) for s in json.loads(row[5])),
        )

    def documents(self) -> list[DocumentInfo]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT d.source, d.kind, d.chars, COUNT(c.id), d.sha256 FROM documents d "
                "LEFT JOIN chunks c ON c.source = d.source GROUP BY d.source ORDER BY d.source"
            ).fetchall()
        return [DocumentInfo(*r) for r in rows]

    def count_chunks(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
