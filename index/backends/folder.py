"""The folder store: immutable segments (SQLite catalog, FAISS vectors, BM25 postings) and
small generation manifests that list them.

On disk::

    DIR/CURRENT              names the live generation, e.g. "gen-000004"
    DIR/gen-000004/          manifest.json: model, chunking, next free id, and the live
                             segments, each with its current deletion file
    DIR/segments/seg-NNNNNN/ one immutable segment (``index.backends.segments``)
    DIR/.lock                the writers' lock (fcntl), taken before the state is read

A commit costs what it changes: the documents it adds become one new segment, the documents
it removes one small deletion file per segment they were in, and the new generation is a
manifest of a few hundred bytes. ``CURRENT`` then switches to it (an atomic rename, fsynced).
Nothing a generation lists is ever changed, so a writer killed at any moment leaves the
previous generation live and whole (what it had written is unlisted and collected by the
next commit), and a reader holding the previous generation keeps answering from it until it
refreshes (its segments stay open even when a later merge removes their files). A commit
also merges segments when ``segments.plan_merge`` says so (chiefly: the smallest, once more
than ``segments.MAX_SEGMENTS`` are live besides full ones, into at most
``segments.MAX_MERGED_ROWS`` rows), before the same switch; a merge streams from the old
segments' files into the new one's, so its memory is bounded by that cap.

BM25 statistics (chunk count, document frequencies, average length) are computed over the
live chunks at query time (``index.bm25``), so scores equal those of one bm25s index over
the same chunks.

Format versions (``format_version`` in ``manifest.json``): 3 is this layout. Versions 1 and
2 (whole copies of catalog, FAISS and bm25s per generation) are read (``index.backends.legacy``)
and converted by their next commit. A program that reads only 1 and 2 refuses version 3 with
the command that rebuilds the index.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from index.backends.base import FORMAT_VERSION, StoreBusy, StoreMismatch, StoreNotFound
from index.backends.folder_state import _identity, _State, generation_number, write_lock
from index.backends.folder_writer import FolderWriter
from index.backends.legacy import LEGACY_VERSIONS, read_generation
from index.backends.segments import (IDS_FILE, Live, fsync_dir, load_live, load_segment, merge, plan_merge,
                                     warm, write_deletes, write_segment)
from index.terms import TermIndex
from index.types import Chunk, Document, DocumentInfo
from index.vectors import FaissVectorStore

FOLDER_FORMAT = 3
READABLE_VERSIONS = (*LEGACY_VERSIONS, FOLDER_FORMAT)
DEFAULT_LOCK_TIMEOUT = 600.0  # seconds a writer waits for another before giving up
STAGING = ".rebuild"  # where a rebuild is built beside the live index (see ``replace_with``)
SEGMENTS = "segments"
INTERNAL = ("segments", "next_id", "folder_format")  # manifest keys the store keeps for itself


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
        load_parts: read every segment's vectors and BM25 postings when a generation is opened,
            and keep those of the segments this store writes (what a reader searching the index
            wants). False reads them when first searched or merged, and lets a written segment's
            go once it is on disk: a process that only writes (``python -m index build``) then
            holds ids and catalogs, not every vector committed so far. Such a store is for
            processes that write: a writer re-reads the live generation under the lock before
            each change, whereas a search of an older generation whose segments another
            writer merged away meanwhile finds their files gone.
    """

    def __init__(self, location: str | Path, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, load: bool = True,
                 load_parts: bool = True) -> None:
        if lock_timeout <= 0:
            raise ValueError(f"lock_timeout must be greater than 0. Currently, lock_timeout is {lock_timeout}")
        self.location = str(location)
        self.path = Path(location)
        self.lock_timeout = lock_timeout
        self.load_parts = load_parts
        self._write_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._state = self._load() if load else _State(None, None, None)

    @classmethod
    def open(cls, location: str | Path, create: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
             load_parts: bool = True) -> FolderStore:
        """The folder store at ``location`` (``load_parts``: see the class).

        Raises:
            StoreNotFound: no index there and ``create`` is False, or ``location`` is a file.
            StoreMismatch: the index there is of an unreadable format version or damaged.
        """
        p = Path(location)
        if p.exists() and not p.is_dir():
            raise StoreNotFound(f"{p} is a file, not an index folder; pass a folder path with --index")
        if not create and not (p / "CURRENT").exists():
            raise StoreNotFound(f"No index at {p}. Build one with: python -m index build FOLDER --index {p}")
        return cls(p, lock_timeout, load_parts=load_parts)

    # ---- loading -------------------------------------------------------------------------------

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.path / "CURRENT").stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def _load(self, previous: _State | None = None) -> _State:
        """The live generation; retried when a writer switches it while it is being read."""
        for _ in range(20):
            stamp = self._stamp()
            if stamp is None:
                return _State(None, None, None)
            try:
                generation = (self.path / "CURRENT").read_text().strip()
                return self.load_generation(generation, stamp, previous)
            except StoreMismatch:
                raise
            except Exception as e:
                if self._stamp() != stamp:
                    continue  # a writer switched generations meanwhile (and may have collected this one)
                raise StoreMismatch(
                    f"Index at {self.path} is damaged ({type(e).__name__}: {e}). Repair it with: "
                    f"python -m index check --repair --index {self.path} (or rebuild it with --rebuild)"
                ) from None
        raise StoreBusy(f"Index at {self.path} changed 20 times while being opened; try again")

    def load_generation(self, generation: str, stamp: tuple[int, int] | None = None,
                        previous: _State | None = None) -> _State:
        """The generation ``generation`` (raises when any part of it is missing or unreadable);
        segments ``previous`` already holds are shared, not read again."""
        folder = self.path / generation
        manifest = json.loads((folder / "manifest.json").read_text())
        version = manifest.get("format_version")
        if version not in READABLE_VERSIONS:
            raise StoreMismatch(
                f"Index at {self.path} has format version {version}, this program reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}. "
                f"Rebuild it: python -m index build FOLDER --index {self.path} --rebuild"
            )
        dimension = int(manifest["dimension"])
        if version in LEGACY_VERSIONS:
            segment, next_id = read_generation(folder, dimension)
            return _State(generation, stamp, manifest, (load_live(segment, None),), next_id)
        known = {}
        for live in previous.segments if previous else ():
            seg = live.segment
            if seg.path is not None:
                known[(seg.name, _identity(seg.path / IDS_FILE))] = seg
        segments, loaded = [], []
        for entry in manifest["segments"]:
            path = self.path / SEGMENTS / entry["name"]
            seg = known.get((entry["name"], _identity(path / IDS_FILE)))
            if seg is None:
                seg = load_segment(path, dimension, self.load_parts)
                if self.load_parts:
                    loaded.append(seg)
            segments.append(load_live(seg, entry["deletes"]))
        warm(loaded)
        return _State(generation, stamp, manifest, tuple(segments), int(manifest["next_id"]))

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
                self._state = _State(state.generation, stamp, state.manifest, state.segments, state.next_id,
                                     state.cache)
                return False
            self._state = self._load(state)
            return True

    # ---- reading -------------------------------------------------------------------------------

    @property
    def generation(self) -> str | None:
        return self._state.generation

    def manifest(self) -> dict | None:
        """The stored manifest. Its ``format_version`` is the ``Store`` interface's
        (``base.FORMAT_VERSION``, what ``index copy`` hands another store); this layout's own
        version, stored as ``format_version`` in ``manifest.json``, is ``folder_format``."""
        m = self._state.manifest
        if not m:
            return None
        out = {k: v for k, v in m.items() if k not in INTERNAL}
        if out.get("format_version") == FOLDER_FORMAT:
            out.update(format_version=FORMAT_VERSION, folder_format=FOLDER_FORMAT)
        return out

    def segments(self) -> list[dict]:
        """Each live segment: name, rows, live chunks, index kind, and whether its vectors or
        postings are in this process's memory (for ``status``, benchmarks and tests)."""
        return [{"name": s.segment.name, "rows": len(s.segment.ids), "live": s.live_count(),
                 "kind": s.segment.kind, "in_memory": s.segment.parts_held()} for s in self._state.segments]

    def count(self) -> int:
        return sum(s.live_count() for s in self._state.segments)

    def hashes(self) -> dict[str, str]:
        return {source: sha for source, (_, _, sha) in self._state.where().items()}

    def documents(self) -> list[DocumentInfo]:
        out = []
        for live in self._state.segments:
            for doc_id, source, kind, chars, chunks, sha in live.segment.catalog.document_rows():
                if doc_id not in live.deleted_docs:
                    out.append(DocumentInfo(source, kind, chars, chunks, sha))
        return sorted(out, key=lambda d: d.source)

    def document(self, source: str) -> Document | None:
        state = self._state
        found = state.find(source)
        return state.segments[found[0]].segment.catalog.document(found[1]) if found else None

    def _located(self, ids: Sequence[int]) -> Iterator[tuple[Live, np.ndarray, np.ndarray]]:
        """For each segment holding some of ``ids`` live: the segment, those ids, their rows."""
        wanted = np.asarray(list(ids), dtype=np.int64)
        for live in self._state.segments:
            if not len(wanted):
                return
            rows, found = live.segment.rows_of(wanted)
            alive = live.live[rows]
            if alive.any():
                yield live, wanted[found][alive], rows[alive]

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        out: dict[int, Chunk] = {}
        for live, held, _ in self._located(ids):
            out.update(live.segment.catalog.chunks(held.tolist()))
        return out

    def chunks_of(self, source: str) -> list[Chunk]:
        state = self._state
        found = state.find(source)
        return state.segments[found[0]].segment.catalog.chunks_of(found[1]) if found else []

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        ids = [int(i) for i in ids]
        if not ids:
            manifest = self._state.manifest
            return np.zeros((0, int(manifest["dimension"]) if manifest else 0), dtype=np.float32)
        rows: dict[int, np.ndarray] = {}
        for live, held, where in self._located(ids):
            for cid, vec in zip(held.tolist(), live.segment.vectors.vectors(where)):
                rows[cid] = vec
        missing = [i for i in ids if i not in rows]
        if missing:
            raise KeyError(f"chunk ids {missing[:5]} are not in {self.path}")
        return np.vstack([rows[i] for i in ids])

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self._state.search_dense(vector, k)

    def search_terms(self, query: str, k: int) -> list[tuple[int, float]]:
        return self._state.bm25().search(query, k)

    def document_frequency(self, term: str) -> int:
        return self._state.bm25().document_frequency(term)

    def ids(self) -> dict[str, set[int]]:
        """The live chunk ids each part holds (``catalog``, ``vectors``, ``terms``); equal when sound."""
        out: dict[str, set[int]] = {"catalog": set(), "vectors": set(), "terms": set()}
        for live in self._state.segments:
            seg = live.segment
            docs = {row[0] for row in seg.catalog.document_rows()} - live.deleted_docs
            out["catalog"] |= {cid for cid, doc in seg.catalog.chunk_docs() if doc in docs}
            out["vectors"] |= set(seg.ids[live.live][:seg.vectors.count()].tolist())
            out["terms"] |= set(seg.ids[live.live][:seg.terms.count()].tolist())
        return out

    # ---- writing -------------------------------------------------------------------------------

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold this folder's write lock (threads of this process, then other processes); see
        ``folder_state.write_lock``."""
        return write_lock(self.path, self._write_lock, self.lock_timeout)

    def _latest(self) -> _State:
        """The live generation as of now (call with the lock held)."""
        if self._stamp() != self._state.stamp:
            with self._load_lock:
                self._state = self._load(self._state)
        return self._state

    @contextlib.contextmanager
    def writer(self, manifest: dict) -> Iterator[FolderWriter]:
        with self.locked():
            state = self._latest()
            check_manifest(self.path, state.manifest, manifest)
            dimension = int(state.manifest["dimension"]) if state.manifest else int(manifest["dimension"])
            w = FolderWriter(state, dimension)
            yield w
            if w.changed or state.manifest is None:
                self._commit(w, {k: v for k, v in manifest.items() if k not in INTERNAL})

    def _commit(self, w: FolderWriter, manifest: dict) -> None:
        """Write what ``w`` changed as new files and switch to a generation listing them
        (call with the lock held)."""
        state, number = w.state, self._next_generation()
        root = self.path / SEGMENTS
        root.mkdir(exist_ok=True)
        self.collect(state)
        entries: list[Live] = []
        for i, live in enumerate(self._materialized(state.segments, number)):
            if i in w.deleted:
                deleted, docs = w.deleted[i]
                if deleted.all():
                    continue  # nothing of it is left: the generation no longer lists it
                live = Live(live.segment, deleted, frozenset(docs), write_deletes(live.segment, deleted, docs, number))
            entries.append(live)
        added = w.segment_parts()
        if added is not None:
            catalog, ids, vectors, texts = added
            seg = write_segment(root, f"seg-{number:06d}", catalog, ids, FaissVectorStore.build(vectors, dimension=w.dimension),
                                TermIndex.build(texts), self.load_parts)
            entries.append(load_live(seg, None))
        kept = {id(e.segment) for e in entries}
        entries = self._merged(entries, number, w.dimension)
        where = w.where_after([e.segment for e in entries]) if all(id(e.segment) in kept for e in entries) else None
        self.publish(number, entries, {**manifest, "dimension": w.dimension}, w.next_id, where)

    def _materialized(self, segments: Sequence[Live], number: int) -> list[Live]:
        """``segments`` with any held only in memory (an old-format index) written as segments."""
        out = []
        for i, live in enumerate(segments):
            seg = live.segment
            if seg.path is None:
                seg = write_segment(self.path / SEGMENTS, f"seg-{number:06d}-c{i}", seg.catalog, seg.ids, seg.vectors,
                                    seg.terms, self.load_parts)
                name = write_deletes(seg, live.deleted, live.deleted_docs, number) if live.deleted.any() else None
                live = Live(seg, live.deleted, live.deleted_docs, name)
            out.append(live)
        return out

    def _merged(self, entries: list[Live], number: int, dimension: int) -> list[Live]:
        plan = plan_merge([e.live_count() for e in entries], [int(e.deleted.sum()) for e in entries])
        if not plan:
            return entries
        merged = merge([entries[i] for i in plan], self.path / SEGMENTS, f"seg-{number:06d}-m", dimension,
                       self.load_parts)
        return [e for i, e in enumerate(entries) if i not in plan] + [load_live(merged, None)]

    def publish(self, number: int, entries: Sequence[Live], manifest: dict, next_id: int,
                where: dict | None = None) -> None:
        """Write generation ``number`` listing ``entries`` and switch to it (call with the lock held).

        ``where``: the new generation's ``source -> (segment index, doc id, sha256)`` when the
        caller knows it (a commit does), so it is not listed again from every catalog."""
        stored = {**manifest, "format_version": FOLDER_FORMAT, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "next_id": int(next_id),
                  "segments": [{"name": e.segment.name, "deletes": e.deletes, "rows": len(e.segment.ids),
                                "live": e.live_count()} for e in entries]}
        generation = f"gen-{number:06d}"
        tmp = self.path / f".tmp-{generation}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with open(tmp / "manifest.json", "w") as fh:
            fh.write(json.dumps(stored, indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(tmp)
        shutil.rmtree(self.path / generation, ignore_errors=True)  # a killed writer's, never made live
        os.rename(tmp, self.path / generation)
        fsync_dir(self.path)
        self._switch(generation)
        self._state = _State(generation, self._stamp(), stored, tuple(entries), int(next_id),
                             {"where": where} if where is not None else {})
        self.collect(self._state)

    def _next_generation(self) -> int:
        numbers = [generation_number(p.name) for p in self.path.iterdir()]
        return max((n for n in numbers if n is not None), default=0) + 1

    def _switch(self, generation: str) -> None:
        """Point CURRENT at ``generation`` atomically."""
        pointer = self.path / "CURRENT.tmp"
        with open(pointer, "w") as fh:
            fh.write(generation + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(pointer, self.path / "CURRENT")
        fsync_dir(self.path)

    def collect(self, state: _State) -> None:
        """Delete what ``state`` (the live generation) does not list: older generations, merged
        or unfinished segments, superseded deletion files (call with the lock held)."""
        if state.generation is None:
            return
        for old in self.path.iterdir():
            if (generation_number(old.name) is not None and old.name != state.generation) \
                    or old.name.startswith(".tmp-") or old.name == "CURRENT.tmp":
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        root = self.path / SEGMENTS
        if not root.is_dir():
            return
        listed = {live.segment.name: live.deletes for live in state.segments if live.segment.path is not None}
        for p in root.iterdir():
            if p.name not in listed:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                continue
            for f in p.iterdir():
                if (f.name.startswith("del-") and f.name != listed[p.name]) or f.name.startswith(".tmp-"):
                    f.unlink(missing_ok=True)

    def staging(self, fresh: bool = False) -> FolderStore:
        """The store a rebuild is built in, beside this one (``DIR/.rebuild``).

        What a killed rebuild committed there is kept, so the next rebuild resumes from
        it; ``fresh`` (or a staging store too damaged to open) starts it empty.
        """
        path = self.path / STAGING
        if not fresh:
            try:
                return FolderStore.open(path, create=True, lock_timeout=self.lock_timeout, load_parts=self.load_parts)
            except StoreMismatch:
                pass
        shutil.rmtree(path, ignore_errors=True)
        return FolderStore.open(path, create=True, lock_timeout=self.lock_timeout, load_parts=self.load_parts)

    def replace_with(self, other: FolderStore) -> None:
        """Make ``other``'s live generation this store's, atomically (``build --rebuild``).

        ``other`` must live inside this folder (``DIR/.rebuild``): its segments move here by
        renames, then one generation lists them; killed before the switch, this store keeps
        its old generation (and the moved segments, unlisted, are collected later).
        """
        if other.path.resolve().parent != self.path.resolve():
            raise ValueError(f"{other.path} is not inside {self.path}")
        with self.locked(), other.locked():
            source = other._latest()
            if source.generation is None:
                raise StoreNotFound(f"nothing was built in {other.path}")
            state = self._latest()
            number = self._next_generation()
            root = self.path / SEGMENTS
            root.mkdir(exist_ok=True)
            self.collect(state)
            entries = []
            for i, live in enumerate(other._materialized(source.segments, number)):
                seg, name = live.segment, f"seg-{number:06d}-r{i}"
                os.rename(seg.path, root / name)
                moved = seg.relocated(name, root / name)
                entries.append(Live(moved, live.deleted, live.deleted_docs, live.deletes))
            fsync_dir(root)
            manifest = {k: v for k, v in source.manifest.items() if k not in INTERNAL}
            self.publish(number, entries, manifest, source.next_id)
        shutil.rmtree(other.path, ignore_errors=True)

    def check(self, repair: bool = False) -> list[str]:
        """What is wrong with this folder, one finding a line ([] when sound); see ``folder_check``."""
        from index.backends.folder_check import check_folder

        return check_folder(self, repair)

    def close(self) -> None:
        """Nothing to release: segment files stay open while a state uses them, the lock is held
        only inside ``writer``."""


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
