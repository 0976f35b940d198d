"""The index: files in, searchable chunks out.

An ``Index`` composes the catalog (SQLite metadata), a ``VectorStore`` (FAISS) and a
``TermIndex`` (BM25). On disk it is a folder of generations::

    DIR/CURRENT            names the live generation, e.g. "gen-000004"
    DIR/gen-000004/        manifest.json, catalog.sqlite, vectors.faiss, terms/

A change is applied in memory and written as a new generation; only then does
``CURRENT`` switch to it (an atomic rename). A build killed halfway leaves the
previous generation live and consistent.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm.auto import tqdm

from index.catalog import Catalog
from index.chunking import chunk_document
from index.embedding import DEFAULT_MODEL_NAME, Embedder, shared_embedder
from index.loaders import SUPPORTED_SUFFIXES, UnreadableFile, load_document, sha256_bytes
from index.terms import TermIndex
from index.types import Chunk, Document, DocumentInfo, IndexReport
from index.vectors import FaissVectorStore

FORMAT_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INDEX_DIR = REPO_ROOT / ".index" / "default"
DEFAULT_DOCUMENTS_DIR = REPO_ROOT / "seeds"


class IndexStoreError(RuntimeError):
    """Base for index errors whose message says what to do."""


class IndexNotFound(IndexStoreError, FileNotFoundError):
    pass


class IndexMismatch(IndexStoreError):
    pass


@dataclass(frozen=True)
class IndexSettings:
    """How documents are chunked and embedded.

    Args:
        chunk_size: most characters per chunk (default 800: a few sentences, about one paragraph).
        chunk_overlap: characters shared by neighbouring chunks (default 100).
        model_name: embedding model recorded in the manifest; an index built with another is refused.
        model_path: folder of the model weights; None uses the bundled all-MiniLM-L6-v2.
        show_progress: progress bars while embedding many chunks.
    """

    chunk_size: int = 800
    chunk_overlap: int = 100
    model_name: str = DEFAULT_MODEL_NAME
    model_path: str | None = None
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.chunk_size <= 0:
            raise ValueError(f"chunk_size must be greater than 0. Currently, chunk_size is {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(f"chunk_overlap must be in [0, chunk_size). Currently, chunk_overlap is {self.chunk_overlap}")


def iter_files(folder: Path) -> Iterable[Path]:
    """Files under ``folder`` in a stable order, hidden files and folders left out."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def source_name(path: str | Path) -> str:
    """The name a file is indexed under: its absolute path."""
    return str(Path(path).expanduser().resolve())


class Index:
    """A searchable store of document chunks, changed incrementally.

    Example:
        >>> idx = Index.open(".index/demo", create=True)        # doctest: +SKIP
        >>> print(idx.build("seeds/").summary())                 # doctest: +SKIP
        1 indexed, 0 skipped, 0 unchanged, 0 removed (4 chunks added, 0 removed)
        >>> idx.search_terms("Rob Strayer", k=1)                 # doctest: +SKIP
        [(3, 2.71)]
    """

    def __init__(self, path: str | Path, settings: IndexSettings | None = None, embedder: Embedder | None = None) -> None:
        self.path = Path(path)
        self.settings = settings or IndexSettings()
        self._embedder = embedder
        self._lock = threading.RLock()
        self._generation: str | None = None
        self._current_mtime: int | None = None
        self._load_current()

    # ---- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, settings: IndexSettings | None = None, create: bool = False, embedder: Embedder | None = None) -> Index:
        """Open the index at ``path``.

        Args:
            path: the index folder.
            settings: chunking and model settings (defaults when None).
            create: start an empty index when ``path`` holds none; otherwise that is an error.

        Raises:
            IndexNotFound: no index at ``path`` and ``create`` is False.
            IndexMismatch: the index was built with another model or format version.
        """
        p = Path(path)
        if not create and not (p / "CURRENT").exists():
            raise IndexNotFound(
                f"No index at {p}. Build one with: python -m index build FOLDER --index {p}"
            )
        if p.exists() and not p.is_dir():
            raise IndexNotFound(f"{p} is a file, not an index folder; pass a folder path with --index")
        return cls(p, settings, embedder)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = shared_embedder(self.settings.model_path, self.settings.model_name)
        return self._embedder

    def _manifest(self, dimension: int) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "model": self.settings.model_name,
            "dimension": dimension,
            "chunk_size": self.settings.chunk_size,
            "chunk_overlap": self.settings.chunk_overlap,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def _load_current(self) -> None:
        current = self.path / "CURRENT"
        if not current.exists():
            self.catalog = Catalog()
            self.vectors: FaissVectorStore | None = None
            self.terms = TermIndex()
            self.manifest: dict | None = None
            self._generation, self._current_mtime = None, None
            return
        generation = current.read_text().strip()
        folder = self.path / generation
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError) as e:
            raise IndexMismatch(f"Index at {self.path} is damaged ({e}). Rebuild it: python -m index build FOLDER --index {self.path} --rebuild") from None
        rebuild = f"Rebuild it: python -m index build FOLDER --index {self.path} --rebuild"
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatch(
                f"Index at {self.path} has format version {manifest.get('format_version')}, this program reads {FORMAT_VERSION}. {rebuild}"
            )
        if manifest.get("model") != self.settings.model_name:
            raise IndexMismatch(
                f"Index at {self.path} was built with embedding model {manifest.get('model')!r}, "
                f"this engine uses {self.settings.model_name!r}. {rebuild}"
            )
        self.manifest = manifest
        self.catalog = Catalog.load(folder)
        self.vectors = FaissVectorStore.load(folder, int(manifest["dimension"]))
        self.terms = TermIndex.load(folder)
        self._generation = generation
        self._current_mtime = current.stat().st_mtime_ns

    def refresh(self) -> bool:
        """Reload if another process switched the live generation; True when it did."""
        try:
            mtime = (self.path / "CURRENT").stat().st_mtime_ns
        except FileNotFoundError:
            return False
        if mtime == self._current_mtime:
            return False
        with self._lock:
            if (self.path / "CURRENT").read_text().strip() != self._generation:
                self._load_current()
                return True
            self._current_mtime = mtime
        return False

    # ---- reading -------------------------------------------------------------------------------

    def count(self) -> int:
        """Number of chunks indexed."""
        return self.catalog.count_chunks()

    def documents(self) -> list[DocumentInfo]:
        return self.catalog.documents()

    def document(self, source: str) -> Document | None:
        """The indexed text of ``source`` (exactly what citations point into)."""
        return self.catalog.document(source)

    def page_at(self, source: str, offset: int) -> int | None:
        """The 1-based page of ``source`` holding character ``offset`` (None when unpaged)."""
        pages = self.catalog.pages(source)
        return bisect.bisect_right(pages, offset) if pages else None

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        return self.catalog.chunks(ids)

    def chunks_of(self, source: str) -> list[Chunk]:
        return self.catalog.chunks_of(source)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode(texts)

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        with self._lock:
            return self.vectors.search(vector, k) if self.vectors is not None else []

    def search_terms(self, query: str, k: int) -> list[tuple[int, float]]:
        with self._lock:
            return self.terms.search(query, k)

    def document_frequency(self, term: str) -> int:
        return self.terms.document_frequency(term)

    # ---- changing ------------------------------------------------------------------------------

    def build(self, folder: str | Path, quiet: bool = False) -> IndexReport:
        """Index every supported file under ``folder``: new and changed files are embedded,
        unchanged ones left alone, files that disappeared from ``folder`` removed."""
        root = Path(folder)
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is not a folder; pass a folder of documents (or use 'add' for single files)")
        files = [p for p in iter_files(root)]
        prefix = source_name(root) + os.sep
        present = {source_name(p) for p in files}
        gone = [s for s in self.catalog.hashes() if s.startswith(prefix) and s not in present]
        return self._update(files, gone, quiet=quiet, report_unsupported=False)

    def add(self, paths: Iterable[str | Path], quiet: bool = False) -> IndexReport:
        """Index the given files (re-indexing any whose content changed)."""
        return self._update([Path(p) for p in paths], [], quiet=quiet, report_unsupported=True)

    def remove(self, paths: Iterable[str | Path]) -> IndexReport:
        """Drop the given files (or indexed source names) from the index."""
        known = self.catalog.hashes()
        targets, skipped = [], []
        for p in paths:
            s = str(p) if str(p) in known else source_name(p)
            (targets if s in known else skipped).append(s)
        report = self._update([], targets, quiet=True, report_unsupported=False)
        return IndexReport(removed=report.removed, chunks_removed=report.chunks_removed,
                           skipped=tuple((s, "not in the index") for s in skipped))

    def add_documents(self, documents: Iterable[Document], quiet: bool = True) -> IndexReport:
        """Index already-loaded Documents (e.g. test-set contexts) under their own source names."""
        return self._apply(list(documents), [], (), (), quiet)

    def _update(self, files: list[Path], gone: list[str], quiet: bool, report_unsupported: bool) -> IndexReport:
        known = self.catalog.hashes()
        docs: list[Document] = []
        unchanged: list[str] = []
        skipped: list[tuple[str, str]] = []
        show = self.settings.show_progress and not quiet and len(files) > 20
        for path in tqdm(files, desc="reading", unit="file", disable=not show, leave=False):
            source = source_name(path)
            if path.suffix.lower() not in SUPPORTED_SUFFIXES and not report_unsupported:
                continue
            try:
                if source in known and path.is_file() and sha256_bytes(path.read_bytes()) == known[source]:
                    unchanged.append(source)
                    continue
                doc = load_document(source)
            except UnreadableFile as e:
                skipped.append((source, str(e)))
                continue
            docs.append(doc)
        return self._apply(docs, gone, tuple(unchanged), tuple(skipped), quiet)

    def _apply(self, docs: list[Document], gone: list[str], unchanged: tuple, skipped: tuple, quiet: bool) -> IndexReport:
        # The expensive part first, outside any change to the store.
        chunked = [(d, chunk_document(d, self.settings.chunk_size, self.settings.chunk_overlap)) for d in docs]
        texts = [c.text for _, cs in chunked for c in cs]
        show = self.settings.show_progress and not quiet and len(texts) > 64
        vectors = self.embedder.encode(texts, show_progress=show) if texts else None
        if not docs and not gone:
            return IndexReport(unchanged=unchanged, skipped=skipped)
        with self._lock, self._writer_lock():
            try:
                if self.vectors is None:
                    self.vectors = FaissVectorStore(self.embedder.dimension)
                removed_ids: list[int] = []
                known = self.catalog.hashes()
                for source in list(gone) + [d.source for d in docs if d.source in known]:
                    removed_ids += self.catalog.remove_document(source)
                self.vectors.remove(np.asarray(removed_ids, dtype=np.int64))
                new_ids: list[int] = []
                for doc, chunks in chunked:
                    new_ids += [c.id for c in self.catalog.add_document(doc, chunks)]
                if new_ids:
                    self.vectors.add(np.asarray(new_ids, dtype=np.int64), vectors)
                self.terms.fit(*self.catalog.all_chunk_texts())
                self._save()
            except BaseException:
                self._load_current()  # drop the half-applied change; the disk still has the last good one
                raise
        return IndexReport(
            indexed=tuple(d.source for d in docs),
            unchanged=unchanged,
            skipped=skipped,
            removed=tuple(gone),
            chunks_added=len(texts),
            chunks_removed=len(removed_ids),
        )

    @contextlib.contextmanager
    def _writer_lock(self):
        """One writing process at a time per index folder."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _save(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.name.split("-")[1]) for p in self.path.glob("gen-*") if p.name.split("-")[1].isdigit()]
        generation = f"gen-{max(numbers, default=0) + 1:06d}"
        tmp = self.path / f".tmp-{generation}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.catalog.save(tmp)
        self.vectors.save(tmp)
        self.terms.save(tmp)
        (tmp / "manifest.json").write_text(json.dumps(self._manifest(self.vectors.dimension), indent=2))
        _fsync_tree(tmp)
        os.rename(tmp, self.path / generation)
        pointer = self.path / "CURRENT.tmp"
        with open(pointer, "w") as fh:
            fh.write(generation + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(pointer, self.path / "CURRENT")
        _fsync_dir(self.path)
        self.manifest = self._manifest(self.vectors.dimension)
        self._generation = generation
        self._current_mtime = (self.path / "CURRENT").stat().st_mtime_ns
        for old in list(self.path.glob("gen-*")) + list(self.path.glob(".tmp-*")):
            if old.name != generation:
                shutil.rmtree(old, ignore_errors=True)

    def status(self) -> dict:
        docs = self.documents()
        return {
            "path": str(self.path),
            "generation": self._generation,
            "documents": len(docs),
            "chunks": self.count(),
            "vectors": self.vectors.count() if self.vectors is not None else 0,
            "manifest": self.manifest,
            "settings": asdict(self.settings),
        }


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            with open(Path(root) / name, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(root))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
