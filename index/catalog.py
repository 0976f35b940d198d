"""One segment's metadata in SQLite: its documents (text, hash, pages) and chunks (spans, text).

A folder index is a list of immutable segments (``index.backends.segments``); each holds
a ``catalog.sqlite`` with the documents it added and their chunks. Ids are global: the
store hands out document and chunk ids from one counter, so a chunk keeps its id when
segments are merged. A writer fills a catalog in memory and ``save``s it into the new
segment's folder; readers ``open`` saved catalogs read-only (SQLite's ``immutable`` mode:
no locks, the file never changes). Removed documents stay in their segment's catalog until a
merge drops them; the segment's deletion file says which are gone. A merge writes its catalog
with ``write_merged``: SQLite copies the rows from the saved catalogs into the new file, so
no Python object is made per document or chunk and memory does not grow with the merge.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.parse
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from index.types import Chunk, Document

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    chars INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    pages TEXT NOT NULL,
    raw_segments TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc INTEGER NOT NULL,
    source TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    page INTEGER,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
"""

DOC_COLUMNS = "id, source, kind, sha256, chars, chunks, pages, raw_segments, text"
CHUNK_COLUMNS = "id, doc, source, start, end, page, text"


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _read_only(path: Path) -> str:
    """The URI that opens the saved catalog ``path`` read-only and without locks (it never changes)."""
    return f"file:{urllib.parse.quote(str(path))}?mode=ro&immutable=1"


class Catalog:
    """The documents and chunks of one segment.

    Example:
        >>> cat = Catalog()
        >>> doc = Document(source="a.txt", text="Hello there.", sha256="0" * 64, kind="txt")
        >>> cat.add_document(1, doc, [Chunk(2, "a.txt", 0, 12, "Hello there.")])
        >>> cat.chunks([2])[2].text
        'Hello there.'
    """

    FILENAME = "catalog.sqlite"

    def __init__(self, conn: sqlite3.Connection | None = None) -> None:
        self._conn = conn or sqlite3.connect(":memory:", check_same_thread=False)
        if conn is None:
            self._conn.executescript(SCHEMA)
        self._lock = threading.RLock()

    @classmethod
    def open(cls, folder: Path) -> Catalog:
        """The saved catalog in ``folder``, read-only (raises ``sqlite3.Error`` when unreadable)."""
        path = Path(folder) / cls.FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing")
        conn = sqlite3.connect(_read_only(path), uri=True, check_same_thread=False)
        conn.execute("SELECT COUNT(*) FROM documents").fetchone()  # opens the file now: it stays readable if unlinked
        return cls(conn)

    def save(self, folder: Path) -> None:
        """Write this catalog to ``folder/catalog.sqlite`` (a new file)."""
        dst = sqlite3.connect(Path(folder) / self.FILENAME)
        try:
            with self._lock:
                self._conn.commit()
                self._conn.backup(dst)
        finally:
            dst.close()

    def close(self) -> None:
        self._conn.close()

    # ---- writing (in memory, before ``save``) ---------------------------------------------------

    def add_document(self, doc_id: int, document: Document, chunks: Sequence[Chunk]) -> None:
        """Store ``document`` under ``doc_id`` with its chunks (whose ids are already given)."""
        with self._lock:
            self._conn.execute(
                f"INSERT INTO documents ({DOC_COLUMNS}) VALUES ({_marks(9)})",
                (doc_id, document.source, document.kind, document.sha256, len(document.text), len(chunks),
                 json.dumps(list(document.pages)), json.dumps([list(s) for s in document.raw_segments]),
                 document.text))
            self._conn.executemany(
                f"INSERT INTO chunks ({CHUNK_COLUMNS}) VALUES ({_marks(7)})",
                [(c.id, doc_id, c.source, c.start, c.end, c.page, c.text) for c in chunks])

    def remove_document(self, doc_id: int) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM chunks WHERE doc = ?", (doc_id,))
            self._conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

    def copy_from(self, other: Catalog, doc_ids: Sequence[int]) -> None:
        """Copy these documents of ``other`` and their chunks (a merge keeps ids as they are)."""
        for b in range(0, len(doc_ids), 500):
            batch = [int(d) for d in doc_ids[b:b + 500]]
            with other._lock:
                docs = other._conn.execute(
                    f"SELECT {DOC_COLUMNS} FROM documents WHERE id IN ({_marks(len(batch))})", batch).fetchall()
                chunks = other._conn.execute(
                    f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE doc IN ({_marks(len(batch))})", batch).fetchall()
            with self._lock:
                self._conn.executemany(f"INSERT INTO documents ({DOC_COLUMNS}) VALUES ({_marks(9)})", docs)
                self._conn.executemany(f"INSERT INTO chunks ({CHUNK_COLUMNS}) VALUES ({_marks(7)})", chunks)

    def delete_chunks(self, ids: Iterable[int]) -> None:
        ids = [int(i) for i in ids]
        with self._lock:
            for b in range(0, len(ids), 500):
                self._conn.execute(f"DELETE FROM chunks WHERE id IN ({_marks(len(ids[b:b + 500]))})", ids[b:b + 500])

    def delete_documents(self, doc_ids: Iterable[int]) -> None:
        for d in doc_ids:
            self.remove_document(int(d))

    # ---- reading ---------------------------------------------------------------------------------

    def document_rows(self) -> list[tuple[int, str, str, int, int, str]]:
        """``(doc id, source, kind, chars, chunks, sha256)`` of every document."""
        with self._lock:
            return self._conn.execute("SELECT id, source, kind, chars, chunks, sha256 FROM documents").fetchall()

    def find(self, source: str) -> list[tuple[int, str]]:
        """``(doc id, sha256)`` of the documents stored under ``source`` (removed ones included)."""
        with self._lock:
            return self._conn.execute("SELECT id, sha256 FROM documents WHERE source = ?", (source,)).fetchall()

    def document(self, doc_id: int) -> Document | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT source, text, sha256, kind, pages, raw_segments FROM documents WHERE id = ?", (doc_id,)
            ).fetchone()
        if row is None:
            return None
        return Document(source=row[0], text=row[1], sha256=row[2], kind=row[3], pages=tuple(json.loads(row[4])),
                        raw_segments=tuple(tuple(s) for s in json.loads(row[5])))

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        ids = [int(i) for i in ids]
        out: dict[int, Chunk] = {}
        for b in range(0, len(ids), 500):
            batch = ids[b:b + 500]
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT id, source, start, end, text, page FROM chunks WHERE id IN ({_marks(len(batch))})",
                    batch).fetchall()
            out.update({r[0]: Chunk(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows})
        return out

    def chunks_of(self, doc_id: int) -> list[Chunk]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, source, start, end, text, page FROM chunks WHERE doc = ? ORDER BY start", (doc_id,)
            ).fetchall()
        return [Chunk(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def chunk_ids_of(self, doc_id: int) -> list[int]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT id FROM chunks WHERE doc = ?", (doc_id,))]

    def chunk_ids(self) -> list[int]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT id FROM chunks ORDER BY id")]

    def chunk_docs(self) -> list[tuple[int, int]]:
        """``(chunk id, doc id)`` of every chunk, by chunk id."""
        with self._lock:
            return self._conn.execute("SELECT id, doc FROM chunks ORDER BY id").fetchall()

    def texts(self) -> Iterator[tuple[int, str]]:
        """``(chunk id, text)`` of every chunk, by chunk id, streamed."""
        with self._lock:
            rows = self._conn.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
        yield from rows

    def orphan_chunk_ids(self) -> list[int]:
        """Chunks whose document row is missing."""
        with self._lock:
            return [r[0] for r in self._conn.execute(
                "SELECT id FROM chunks WHERE doc NOT IN (SELECT id FROM documents) ORDER BY id")]

    def integrity(self) -> str:
        with self._lock:
            return self._conn.execute("PRAGMA integrity_check").fetchone()[0]


def write_merged(folder: Path, parts: Sequence[tuple[Path, Iterable[int]]]) -> None:
    """Write ``folder/catalog.sqlite`` holding the documents of several saved catalogs but the
    removed ones, with their chunks (a merge: ids are kept as they are).

    ``parts``: for each catalog, the folder that holds it and the ids of its removed documents.
    Each is attached to the new database in turn and copied with ``INSERT ... SELECT``, so the
    rows go from file to file through SQLite's page cache (a few MB), not through Python.
    The new file is not synced here: the caller syncs the segment's folder once it is whole.
    """
    path = Path(folder) / Catalog.FILENAME
    if path.exists():
        raise FileExistsError(f"{path} exists; a merged catalog is written to a new file")
    conn = sqlite3.connect(f"file:{urllib.parse.quote(str(path))}", uri=True)  # a URI: ATTACH takes URIs then
    try:
        conn.execute("PRAGMA journal_mode=OFF")   # a new file in a folder nobody lists until it is whole
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(SCHEMA)
        conn.execute("CREATE TEMP TABLE removed (id INTEGER PRIMARY KEY)")
        for source, removed in parts:
            conn.execute("ATTACH DATABASE ? AS part", (_read_only(Path(source) / Catalog.FILENAME),))
            conn.executemany("INSERT INTO temp.removed (id) VALUES (?)", ((int(d),) for d in removed))
            kept = "id NOT IN (SELECT id FROM temp.removed)"   # of part.documents
            conn.execute(f"INSERT INTO main.documents ({DOC_COLUMNS}) SELECT {DOC_COLUMNS} FROM part.documents "
                         f"WHERE {kept}")
            conn.execute(f"INSERT INTO main.chunks ({CHUNK_COLUMNS}) "
                         f"SELECT {CHUNK_COLUMNS} FROM part.chunks WHERE doc IN (SELECT id FROM part.documents WHERE {kept})")
            conn.execute("DELETE FROM temp.removed")
            conn.commit()
            conn.execute("DETACH DATABASE part")
    except BaseException:
        conn.close()
        path.unlink(missing_ok=True)
        raise
    conn.close()
