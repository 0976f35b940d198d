"""The folder store: FAISS vectors, BM25 terms and a SQLite catalog in generations.

On disk::

    DIR/CURRENT            names the live generation, e.g. "gen-000004"
    DIR/gen-000004/        manifest.json, catalog.sqlite, vectors.faiss, terms/
    DIR/.lock              the writers' lock (fcntl), taken before the state is read

A writer changes in-memory copies of the live parts and writes them as a new
generation; only then does ``CURRENT`` switch to it (an atomic rename, fsynced).
Readers keep the previous generation until the switch, and a writer killed at any
moment leaves the previous generation live and consistent.

Format versions: version 1 and version 2 folders have the same files; version 2 only
says the folder was written through the ``Store`` interface. Both are read; every
commit writes version 2.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from index.backends.base import FORMAT_VERSION, StoreBusy, StoreMismatch, StoreNotFound
from index.catalog import Catalog
from index.terms import TermIndex
from index.types import Chunk, Document, DocumentInfo
from index.vectors import FaissVectorStore

READABLE_VERSIONS = (1, FORMAT_VERSION)
DEFAULT_LOCK_TIMEOUT = 600.0  # seconds a writer waits for another before giving up
STAGING = ".rebuild"  # where a rebuild is built beside the live index (see ``replace_with``)


@dataclass(frozen=True)
class _State:
    """One loaded generation; readers take the whole object, so they never see a mix of two."""

    generation: str | None
    stamp: tuple[int, int] | None  # CURRENT's (inode, mtime) when it was read
    manifest: dict | None
    catalog: Catalog
    vectors: FaissVectorStore | None
    terms: TermIndex


def generation_number(name: str) -> int | None:
    head, _, number = name.partition("-")
    return int(number) if head == "gen" and number.isdigit() else None


class FolderWriter:
    """The change one ``FolderStore.writer`` block makes, applied to copies of the live parts."""

    def __init__(self, catalog: Catalog, vectors: FaissVectorStore) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.changed = False

    def hashes(self) -> dict[str, str]:
        return self.catalog.hashes()

    def remove(self, source: str) -> int:
        present = source in self.catalog.hashes()
        ids = self.catalog.remove_document(source)
        self.vectors.remove(np.asarray(ids, dtype=np.int64))
        self.changed = self.changed or present
        return len(ids)

    def add(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> list[int]:
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) != len(chunks):
            raise ValueError(f"got {len(vectors)} vectors for {len(chunks)} chunks of {document.source}")
        stored = self.catalog.add_document(document, list(chunks))
        ids = [c.id for c in stored]
        self.vectors.add(np.asarray(ids, dtype=np.int64), vectors.reshape(len(ids), self.vectors.dimension))
        self.changed = True
        return ids


class FolderStore:
    """An index in a folder on this machine (see the module docstring for the layout).

    Example:
        >>> store = FolderStore.open(".index/demo", create=True)          # doctest: +SKIP
        >>> with store.writer({"model": "m", "dimension": 384}) as w:     # doctest: +SKIP
        ...     w.add(document, chunks, vectors)

    Args:
        location: the index folder.
        lock_timeout: seconds a writer waits for another writer before ``StoreBusy``.
        load: read the live generation now; False leaves it to ``refresh`` (``check`` uses
            this to look at an index too damaged to open).
    """

    def __init__(self, location: str | Path, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, load: bool = True) -> None:
        if lock_timeout <= 0:
            raise ValueError(f"lock_timeout must be greater than 0. Currently, lock_timeout is {lock_timeout}")
        self.location = str(location)
        self.path = Path(location)
        self.lock_timeout = lock_timeout
        self._write_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._state = self._load() if load else _State(None, None, None, Catalog(), None, TermIndex())

    @classmethod
    def open(cls, location: str | Path, create: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> FolderStore:
        """The folder store at ``location``.

        Raises:
            StoreNotFound: no index there and ``create`` is False, or ``location`` is a file.
            StoreMismatch: the index there is of an unreadable format version or damaged.
        """
        p = Path(location)
        if p.exists() and not p.is_dir():
            raise StoreNotFound(f"{p} is a file, not an index folder; pass a folder path with --index")
        if not create and not (p / "CURRENT").exists():
            raise StoreNotFound(f"No index at {p}. Build one with: python -m index build FOLDER --index {p}")
        return cls(p, lock_timeout)

    # ---- loading -------------------------------------------------------------------------------

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.path / "CURRENT").stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def _load(self) -> _State:
        """The live generation; retried when a writer switches it while it is being read."""
        for _ in range(20):
            stamp = self._stamp()
            if stamp is None:
                return _State(None, None, None, Catalog(), None, TermIndex())
            try:
                generation = (self.path / "CURRENT").read_text().strip()
                return self._load_generation(generation, stamp)
            except StoreMismatch:
                raise
            except (OSError, ValueError, RuntimeError) as e:
                if self._stamp() != stamp:
                    continue  # a writer switched generations meanwhile (and may have removed this one)
                raise StoreMismatch(
                    f"Index at {self.path} is damaged ({type(e).__name__}: {e}). Repair it with: "
                    f"python -m index check --repair --index {self.path} (or rebuild it with --rebuild)"
                ) from None
        raise StoreBusy(f"Index at {self.path} changed 20 times while being opened; try again")

    def _load_generation(self, generation: str, stamp: tuple[int, int] | None) -> _State:
        folder = self.path / generation
        manifest = json.loads((folder / "manifest.json").read_text())
        version = manifest.get("format_version")
        if version not in READABLE_VERSIONS:
            raise StoreMismatch(
                f"Index at {self.path} has format version {version}, this program reads "
                f"{' and '.join(map(str, READABLE_VERSIONS))}. "
                f"Rebuild it: python -m index build FOLDER --index {self.path} --rebuild"
            )
        catalog = Catalog.load(folder)
        vectors = FaissVectorStore.load(folder, int(manifest["dimension"]))
        terms = TermIndex.load(folder)
        return _State(generation, stamp, manifest, catalog, vectors, terms)

    def refresh(self) -> bool:
        stamp = self._stamp()
        if stamp == self._state.stamp:
            return False
        with self._load_lock:
            state = self._state
            if stamp == state.stamp:
                return False
            generation = (self.path / "CURRENT").read_text().strip() if stamp else None
            if generation == state.generation:
                self._state = _State(state.generation, stamp, state.manifest, state.catalog, state.vectors, state.terms)
                return False
            self._state = self._load()
            return True

    # ---- reading -------------------------------------------------------------------------------

    @property
    def generation(self) -> str | None:
        return self._state.generation

    def manifest(self) -> dict | None:
        return dict(self._state.manifest) if self._state.manifest else None

    def count(self) -> int:
        return self._state.catalog.count_chunks()

    def hashes(self) -> dict[str, str]:
        return self._state.catalog.hashes()

    def documents(self) -> list[DocumentInfo]:
        return self._state.catalog.documents()

    def document(self, source: str) -> Document | None:
        return self._state.catalog.document(source)

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        return self._state.catalog.chunks(list(ids))

    def chunks_of(self, source: str) -> list[Chunk]:
        return self._state.catalog.chunks_of(source)

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        state = self._state
        if state.vectors is None:
            if len(ids):
                raise KeyError(f"no vectors stored in {self.path}")
            return np.zeros((0, 0), dtype=np.float32)
        return state.vectors.vectors(np.asarray(ids, dtype=np.int64))

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        state = self._state
        return state.vectors.search(vector, k) if state.vectors is not None else []

    def search_terms(self, query: str, k: int) -> list[tuple[int, float]]:
        return self._state.terms.search(query, k)

    def document_frequency(self, term: str) -> int:
        return self._state.terms.document_frequency(term)

    def ids(self) -> dict[str, set[int]]:
        """The chunk ids each part holds (``catalog``, ``vectors``, ``terms``); equal when sound."""
        state = self._state
        return {"catalog": set(state.catalog.chunk_ids()),
                "vectors": set(state.vectors.ids().tolist()) if state.vectors is not None else set(),
                "terms": set(state.terms.ids().tolist())}

    # ---- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this folder's write lock (threads of this process, then other processes).

        A writer that has to wait says so once on stderr; after ``lock_timeout`` seconds
        it gives up with ``StoreBusy``.
        """
        began, told = time.monotonic(), False

        def wait_or_give_up() -> bool:
            if time.monotonic() - began > self.lock_timeout:
                raise StoreBusy(
                    f"Another writer has held the index at {self.path} for over {self.lock_timeout:.0f} s. "
                    f"Let it finish (or stop it) and try again."
                )
            if not told:
                print(f"waiting for another writer on {self.path} ...", file=sys.stderr, flush=True)
            return True

        while not self._write_lock.acquire(timeout=0.2):
            told = wait_or_give_up()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with open(self.path / ".lock", "a+") as fh:
                while True:
                    try:
                        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        told = wait_or_give_up()
                        time.sleep(0.1)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        finally:
            self._write_lock.release()

    def _latest(self) -> _State:
        """The live generation as of now (call with the lock held)."""
        if self._stamp() != self._state.stamp:
            with self._load_lock:
                self._state = self._load()
        return self._state

    @contextlib.contextmanager
    def writer(self, manifest: dict) -> Iterator[FolderWriter]:
        with self.locked():
            state = self._latest()
            check_manifest(self.path, state.manifest, manifest)
            dimension = int(state.manifest["dimension"]) if state.manifest else int(manifest["dimension"])
            vectors = state.vectors.copy() if state.vectors is not None else FaissVectorStore(dimension)
            w = FolderWriter(state.catalog.copy(), vectors)
            yield w
            if w.changed or state.manifest is None:
                self.commit(w.catalog, w.vectors, manifest)

    def commit(self, catalog: Catalog, vectors: FaissVectorStore, manifest: dict,
               terms: TermIndex | None = None) -> None:
        """Write these parts as the next generation and switch to it (call with the lock held)."""
        if terms is None:
            terms = TermIndex()
            terms.fit(*catalog.all_chunk_texts())
        stored = {**manifest, "format_version": FORMAT_VERSION, "dimension": vectors.dimension,
                  "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        generation = self._next_generation()
        tmp = self.path / f".tmp-{generation}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        catalog.save(tmp)
        vectors.save(tmp)
        terms.save(tmp)
        (tmp / "manifest.json").write_text(json.dumps(stored, indent=2))
        fsync_tree(tmp)
        os.rename(tmp, self.path / generation)
        self._switch(generation)
        self._state = _State(generation, self._stamp(), stored, catalog, vectors, terms)

    def _next_generation(self) -> str:
        numbers = [generation_number(p.name) for p in self.path.iterdir()]
        return f"gen-{max((n for n in numbers if n is not None), default=0) + 1:06d}"

    def _switch(self, generation: str) -> None:
        """Point CURRENT at ``generation`` atomically, then drop older generations and leftovers."""
        pointer = self.path / "CURRENT.tmp"
        with open(pointer, "w") as fh:
            fh.write(generation + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(pointer, self.path / "CURRENT")
        fsync_dir(self.path)
        for old in self.path.iterdir():
            if (generation_number(old.name) is not None or old.name.startswith(".tmp-")) and old.name != generation:
                shutil.rmtree(old, ignore_errors=True)

    def staging(self, fresh: bool = False) -> FolderStore:
        """The store a rebuild is built in, beside this one (``DIR/.rebuild``).

        What a killed rebuild committed there is kept, so the next rebuild resumes from
        it; ``fresh`` (or a staging store too damaged to open) starts it empty.
        """
        path = self.path / STAGING
        if not fresh:
            try:
                return FolderStore.open(path, create=True, lock_timeout=self.lock_timeout)
            except StoreMismatch:
                pass
        shutil.rmtree(path, ignore_errors=True)
        return FolderStore.open(path, create=True, lock_timeout=self.lock_timeout)

    def replace_with(self, other: FolderStore) -> None:
        """Make ``other``'s live generation this store's, atomically (``build --rebuild``).

        ``other`` must live inside this folder (``DIR/.rebuild``), so its generation moves
        here with one rename; killed before the switch, this store keeps its old generation.
        """
        if other.path.resolve().parent != self.path.resolve():
            raise ValueError(f"{other.path} is not inside {self.path}")
        with self.locked(), other.locked():
            source = other._latest()
            if source.generation is None:
                raise StoreNotFound(f"nothing was built in {other.path}")
            generation = self._next_generation()
            os.rename(other.path / source.generation, self.path / generation)
            fsync_dir(self.path)
            self._switch(generation)
            with self._load_lock:
                self._state = self._load()
        shutil.rmtree(other.path, ignore_errors=True)

    def check(self, repair: bool = False) -> list[str]:
        """What is wrong with this folder, one finding a line ([] when sound); see ``folder_check``."""
        from index.backends.folder_check import check_folder

        return check_folder(self, repair)

    def close(self) -> None:
        """Nothing to release: files are read whole and the lock is held only inside ``writer``."""


def check_manifest(path: Path, stored: dict | None, wanted: dict) -> None:
    """Refuse a change whose model or dimension disagrees with the stored index."""
    if stored is None:
        return
    rebuild = f"Rebuild it: python -m index build FOLDER --index {path} --rebuild"
    if stored.get("model") != wanted.get("model"):
        raise StoreMismatch(f"Index at {path} was built with embedding model {stored.get('model')!r}, "
                            f"this engine uses {wanted.get('model')!r}. {rebuild}")
    if "dimension" in wanted and int(stored["dimension"]) != int(wanted["dimension"]):
        raise StoreMismatch(f"Index at {path} holds {stored['dimension']}-dimensional vectors, "
                            f"this engine makes {wanted['dimension']}. {rebuild}")


def fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            with open(Path(root) / name, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(Path(root))


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
