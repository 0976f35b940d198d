"""The index: files in, searchable chunks out.

An ``Index`` reads files, chunks and embeds them, and keeps the result in a ``Store``
(``index.backends``): a folder (FAISS + BM25 + SQLite, the default) or a Milvus
collection. The slow work (reading, chunking, embedding) happens outside the store's
write lock; then, under the lock, the store's current hashes are read again and the
change re-applied to them, so two writers (threads or processes) never lose each
other's documents.

Builds are streamed: every ``batch_files`` files or ``batch_seconds`` seconds of work
are committed, so a killed build resumes without embedding the committed files again
(their content hashes match), and between commits memory is bounded by a batch (at least one
whole file); the merges the store makes as segments accumulate stream to disk and write at
most ``segments.MAX_MERGED_ROWS`` rows (see "A 2 GB folder" in docs/BENCHMARKS.md).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from tqdm.auto import tqdm

from index import embedder_record
from index.backends import FORMAT_VERSION, Store, StoreError, StoreMismatch, StoreNotFound, is_milvus, open_store
from index.chunking import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE, chunk_document
from index.embedding import BACKENDS as EMBEDDER_BACKENDS
from index.embedding import DEFAULT_MODEL_NAME, Embedder, resolve_backend, shared_embedder
from index.files import scan, source_name
from index.hashing import sha256_file
from index.loaders import SUPPORTED_SUFFIXES, UnreadableFile, load_document_with_notes
from index.types import Chunk, Document, DocumentInfo, IndexReport, page_at

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INDEX_DIR = REPO_ROOT / ".index" / "default"
DEFAULT_DOCUMENTS_DIR = REPO_ROOT / "seeds"
EMBED_BATCH_CHUNKS = 512  # chunks embedded at a time while a batch of files is read

# The store's errors under the names this package has always used.
IndexStoreError = StoreError
IndexNotFound = StoreNotFound
IndexMismatch = StoreMismatch


@dataclass(frozen=True)
class IndexSettings:
    """How documents are chunked and embedded, and how often a build commits.

    Args:
        chunk_size: most characters per chunk (``index.chunking.DEFAULT_CHUNK_SIZE``, 800).
        chunk_overlap: characters shared by neighbouring chunks (``DEFAULT_CHUNK_OVERLAP``, 100).
        model_name: embedding model recorded in the manifest; an index built with another is refused.
        model_path: folder of the model weights; None uses the bundled all-MiniLM-L6-v2.
        embedder: how the model runs: "auto" (the embedder an existing index was built with; for
            a new index "onnx-int8" when ONNX Runtime and the exported model are available, else
            torch), "onnx" (fp32), "onnx-int8" (int8: about twice as fast as fp32, cosine 0.99 to
            it, the same retrieval and scores within 0.2 F1 on the benchmarks) or "torch"
            (sentence-transformers, fp32, the reference). The index records the one that built it
            (``index.embedder_record``): adding with another family (fp32 / int8) is refused.
        show_progress: progress bars while indexing many files.
        batch_files: a build commits after this many new or changed files...
        batch_seconds: ...or after this many seconds of reading and embedding, whichever comes first.
    """

    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    model_name: str = DEFAULT_MODEL_NAME
    model_path: str | None = None
    embedder: str = "auto"
    show_progress: bool = True
    batch_files: int = 200
    batch_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.chunk_size <= 0:
            raise ValueError(f"chunk_size must be greater than 0. Currently, chunk_size is {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(f"chunk_overlap must be in [0, chunk_size). Currently, chunk_overlap is {self.chunk_overlap}")
        if self.embedder not in EMBEDDER_BACKENDS:
            raise ValueError(f"embedder must be one of {', '.join(EMBEDDER_BACKENDS)}. Currently, embedder is {self.embedder!r}")
        if self.batch_files <= 0:
            raise ValueError(f"batch_files must be greater than 0. Currently, batch_files is {self.batch_files}")
        if self.batch_seconds <= 0:
            raise ValueError(f"batch_seconds must be greater than 0. Currently, batch_seconds is {self.batch_seconds}")


def chosen_backend(setting: str, manifest: dict | None, model_path: str | None = None) -> str:
    """The embedder backend ``setting`` stands for on an index with ``manifest`` (None: a new
    index), as ``index.embedder_record.choose`` rules; only "auto" on a new index asks whether
    ONNX Runtime runs here (which may export the model)."""
    onnx_runs = setting != "auto" or manifest is not None or resolve_backend("auto", model_path) == "onnx"
    return embedder_record.choose(setting, manifest, onnx_runs)


@dataclass
class _Tally:
    """What a change did so far; becomes the ``IndexReport``."""

    indexed: list[str]
    unchanged: list[str]
    skipped: list[tuple[str, str]]
    removed: list[str]
    chunks_added: int = 0
    chunks_removed: int = 0
    notes: list[tuple[str, str]] = field(default_factory=list)

    def report(self) -> IndexReport:
        return IndexReport(indexed=tuple(self.indexed), unchanged=tuple(self.unchanged), skipped=tuple(self.skipped),
                           removed=tuple(self.removed), chunks_added=self.chunks_added,
                           chunks_removed=self.chunks_removed, notes=tuple(self.notes))


class Index:
    """A searchable store of document chunks, changed incrementally.

    Example:
        >>> idx = Index.open(".index/demo", create=True)        # doctest: +SKIP
        >>> print(idx.build("seeds/").summary())                 # doctest: +SKIP
        1 indexed, 0 skipped, 0 unchanged, 0 removed (4 chunks added, 0 removed)
        >>> idx.search_terms("Rob Strayer", k=1)                 # doctest: +SKIP
        [(3, 2.71)]
    """

    def __init__(self, store: Store, settings: IndexSettings | None = None, embedder: Embedder | None = None) -> None:
        self.store = store
        self.settings = settings or IndexSettings()
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._pages: dict[str, tuple[int, ...]] = {}
        self._mixed_warned = False

    @classmethod
    def open(cls, location: str | Path, settings: IndexSettings | None = None, create: bool = False,
             embedder: Embedder | None = None, **store_options) -> Index:
        """Open the index at ``location``.

        Args:
            location: an index folder, or a Milvus address (``milvus:FILE.db``, ``milvus://HOST:PORT``).
            settings: chunking and model settings (defaults when None). With ``embedder="auto"``
                (the default) questions and new documents are embedded with the embedder the
                index recorded (int8 or fp32); an explicit other one is refused when adding
                documents and warned about when asking.
            create: start an empty index when there is none; otherwise that is an error.
            embedder: an embedder to use instead of the shared one for ``settings`` (an explicit choice).
            **store_options: the store's own options (``collection``, ``token`` for Milvus;
                ``lock_timeout`` for folders).

        Raises:
            IndexNotFound: no index there and ``create`` is False.
            IndexMismatch: the index was built with another model or format version.
        """
        settings = settings or IndexSettings()
        store = open_store(str(location), create=create, **store_options)
        manifest = store.manifest()
        if manifest is not None and manifest.get("model") != settings.model_name:
            raise IndexMismatch(
                f"Index at {location} was built with embedding model {manifest.get('model')!r}, "
                f"this engine uses {settings.model_name!r}. "
                f"Rebuild it: python -m index build FOLDER --index {location} --rebuild"
            )
        return cls(store, settings, embedder)

    @property
    def location(self) -> str:
        """Where the index lives: a folder path or a Milvus address."""
        return self.store.location

    @property
    def path(self) -> Path:
        """The index folder (folder stores only)."""
        if is_milvus(self.location):
            raise AttributeError(f"{self.location} is a Milvus store, not a folder; use Index.location")
        return Path(self.location)

    @property
    def embedder(self) -> Embedder:
        """The embedder of questions and new documents: ``settings.embedder``, where "auto" is the
        one the index recorded (``index.embedder_record.choose``)."""
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    s = self.settings
                    backend = self._chosen_backend()
                    self._embedder = shared_embedder(s.model_path, s.model_name, backend=backend)
        return self._embedder

    def _chosen_backend(self) -> str:
        """The backend this index embeds with, without loading the model ("auto" stands for fp32)."""
        if self._embedder is not None:
            return self._embedder.backend
        return chosen_backend(self.settings.embedder, self.store.manifest(), self.settings.model_path)

    def _check_embedder(self, manifest: dict | None) -> None:
        """Refuse to add vectors of another family than the index holds."""
        held = embedder_record.stored_family(manifest)
        backend = self._chosen_backend()
        if held is not None and held != embedder_record.family(backend):
            shown = backend if backend != "auto" else self.embedder.backend
            raise IndexMismatch(embedder_record.mismatch(self.location, manifest, shown))

    def with_embedder(self, embedder: Embedder) -> Index:
        """This index (the same store and page cache) embedding with ``embedder``, e.g. a background session."""
        twin = Index(self.store, self.settings, embedder)
        twin._pages = self._pages  # either one's writes clear the cache both read
        return twin

    @property
    def manifest(self) -> dict | None:
        return self.store.manifest()

    def _manifest(self, adding: bool = True) -> dict:
        """The manifest a change commits; ``adding``: the change adds vectors made by this
        index's embedder, so the record names it (a removal keeps the record as it is)."""
        stored = self.store.manifest()
        dimension = int(stored["dimension"]) if stored else self.embedder.dimension
        manifest = {"format_version": FORMAT_VERSION, "model": self.settings.model_name, "dimension": dimension,
                    "chunk_size": self.settings.chunk_size, "chunk_overlap": self.settings.chunk_overlap}
        record = embedder_record.recorded(stored)
        if adding or stored is None:
            record = embedder_record.to_record(self.embedder.backend, stored)
        if record:
            manifest[embedder_record.KEY] = record
        return manifest

    def refresh(self) -> bool:
        """Pick up changes other writers committed; True when there were any."""
        changed = self.store.refresh()
        if changed:
            self._pages.clear()
        return changed

    def close(self) -> None:
        """Release the store's files, connections and locks (a Milvus Lite file can then be opened again)."""
        self.store.close()

    # ---- reading -------------------------------------------------------------------------------

    def count(self) -> int:
        """Number of chunks indexed."""
        return self.store.count()

    def documents(self) -> list[DocumentInfo]:
        return self.store.documents()

    def document(self, source: str) -> Document | None:
        """The indexed text of ``source`` (exactly what citations point into)."""
        return self.store.document(source)

    def page_at(self, source: str, offset: int) -> int | None:
        """The 1-based page of ``source`` holding character ``offset`` (None when unpaged)."""
        pages = self._pages.get(source)
        if pages is None:
            doc = self.store.document(source)
            pages = self._pages[source] = doc.pages if doc is not None else ()
        return page_at(pages, offset)

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        return self.store.chunks(ids)

    def chunks_of(self, source: str) -> list[Chunk]:
        return self.store.chunks_of(source)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed questions (warns once when the embedder is of another family than the index's vectors)."""
        embedder = self.embedder
        if not self._mixed_warned:
            manifest = self.store.manifest()
            held = embedder_record.stored_family(manifest)
            if held is not None and held != embedder_record.family(embedder.backend):
                self._mixed_warned = True
                warnings.warn(embedder_record.query_warning(self.location, manifest, embedder.backend), stacklevel=2)
        return embedder.encode(texts)

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.store.search_dense(vector, k)

    def search_terms(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.store.search_terms(query, k)

    def document_frequency(self, term: str) -> int:
        return self.store.document_frequency(term)

    def status(self) -> dict:
        docs = self.documents()
        manifest = self.store.manifest()
        return {
            "location": self.location,
            "generation": getattr(self.store, "generation", None),
            "documents": len(docs),
            "chunks": self.count(),
            "embedder": embedder_record.describe(manifest),
            "manifest": manifest,
            "settings": asdict(self.settings),
        }

    def check(self, repair: bool = False) -> list[str]:
        """What is wrong with the stored index (and, with ``repair``, what was fixed); [] when sound."""
        check = getattr(self.store, "check", None)
        if check is None:
            raise IndexStoreError(f"the store at {self.location} has no consistency check")
        return check(repair=repair)

    # ---- changing ------------------------------------------------------------------------------

    def build(self, folder: str | Path, quiet: bool = False, prune: bool = False, rebuild: bool = False) -> IndexReport:
        """Index every supported file under ``folder``.

        New and changed files are embedded, unchanged ones left alone, files that
        disappeared from ``folder`` (or became empty or unreadable) removed.

        Args:
            folder: the folder of documents.
            quiet: no progress bars.
            prune: also drop every indexed document whose file no longer exists anywhere
                (e.g. the old paths of a folder that moved).
            rebuild: start from an empty index, built beside the live one and switched in
                when complete (a killed rebuild leaves the old index; the next one resumes).
        """
        root = Path(folder)
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is not a folder; pass a folder of documents (or use 'add' for single files)")
        if rebuild:
            return self._rebuild(root, quiet)
        scanned = scan(root)
        found = {source_name(p, root): p for p in scanned.files}
        prefix = source_name(root) + os.sep
        known = self.store.hashes()
        gone = [s for s in known if s not in found and (s.startswith(prefix) or (prune and not os.path.lexists(s)))]
        items = [(s, p) for s, p in found.items() if p.suffix.lower() in SUPPORTED_SUFFIXES]
        return self._update(items, gone, quiet, left_out=scanned.skipped)

    def _rebuild(self, root: Path, quiet: bool) -> IndexReport:
        old = set(self.store.hashes())
        staging = getattr(self.store, "staging", None)
        if staging is None:
            # A store without a staging area: one change that removes everything and adds the
            # folder, committed at once (atomic in the store, not streamed); it may change the
            # index's embedder, since no old vector stays.
            files = [(source_name(p, root), p) for p in scan(root).files if p.suffix.lower() in SUPPORTED_SUFFIXES]
            return self._update(files, sorted(old), quiet, batch=False, recheck=False, replacing=True)
        # The new index keeps this one's embedder unless one was chosen ("auto" = the recorded one).
        chosen = self._chosen_backend()
        if chosen == "auto":  # this index's fp32, which "auto" on the new (empty) index would not give
            chosen = resolve_backend("auto", self.settings.model_path)
        settings = replace(self.settings, embedder=chosen)
        stage = staging()
        wanted = {"model": settings.model_name, "chunk_size": settings.chunk_size,
                  "chunk_overlap": settings.chunk_overlap}
        made = stage.manifest()
        if made is not None and (any(made.get(k) != v for k, v in wanted.items())
                                 or embedder_record.stored_family(made) != embedder_record.family(settings.embedder)):
            stage = staging(fresh=True)  # a killed rebuild with other settings: start over
        report = Index(stage, settings, self._embedder).build(root, quiet=quiet)
        if stage.manifest() is None:  # an empty folder: commit an empty index to switch to
            with stage.writer(Index(stage, settings, self._embedder)._manifest()):
                pass
        self.store.replace_with(stage)
        self._pages.clear()
        now = set(self.store.hashes())
        return IndexReport(indexed=tuple(s for s in report.indexed + report.unchanged if s in now),
                           skipped=report.skipped, removed=tuple(sorted(old - now)),
                           chunks_added=self.count(), chunks_removed=0)

    def add(self, paths: Iterable[str | Path], quiet: bool = False) -> IndexReport:
        """Index the given files (re-indexing any whose content changed)."""
        return self._update([(source_name(p), Path(p)) for p in paths], [], quiet)

    def remove(self, paths: Iterable[str | Path]) -> IndexReport:
        """Drop the given files (or indexed source names) from the index."""
        known = self.store.hashes()
        targets, skipped = [], []
        for p in paths:
            s = str(p) if str(p) in known else source_name(p)
            (targets if s in known else skipped).append(s)
        report = self._update([], targets, quiet=True)
        return IndexReport(removed=report.removed, chunks_removed=report.chunks_removed,
                           skipped=tuple((s, "not in the index") for s in skipped))

    def add_documents(self, documents: Iterable[Document], quiet: bool = True) -> IndexReport:
        """Index already-loaded Documents (e.g. test-set contexts) under their own source names."""
        return self._update([(d.source, d) for d in documents], [], quiet)

    def _read(self, items: list[tuple[str, Path | Document]], known: dict[str, str], tally: _Tally,
              stale: list[str], show: bool) -> Iterator[Document]:
        """The documents to index among ``items``; unchanged and unreadable ones are tallied."""
        for source, item in tqdm(items, desc="indexing", unit="file", disable=not show, leave=False):
            if isinstance(item, Document):
                if known.get(source) == item.sha256:
                    tally.unchanged.append(source)
                else:
                    yield item
                continue
            try:
                if source in known and sha256_file(item) == known[source]:
                    tally.unchanged.append(source)
                    continue
                doc, notes = load_document_with_notes(source)
                tally.notes.extend((source, note) for note in notes)
            except Exception as e:  # one bad file is reported, never the end of a run
                reason = str(e) if isinstance(e, UnreadableFile) else f"cannot read ({type(e).__name__}: {e})"
                tally.skipped.append((source, reason))
                if source in known:
                    stale.append(source)  # its old text must not be answered any more
                continue
            yield doc

    def _update(self, items: list[tuple[str, Path | Document]], gone: list[str], quiet: bool,
                batch: bool = True, recheck: bool = True, left_out: tuple[tuple[str, str], ...] = (),
                replacing: bool = False) -> IndexReport:
        """Read, chunk and embed ``items`` in batches outside the lock; commit each batch
        (and finally the removal of ``gone``) under the store's write lock. ``left_out``: what
        the folder scan did not read, with why (reported as skipped). ``replacing``: the change
        removes every document, so its vectors may come from another embedder family."""
        if items and not replacing:
            self._check_embedder(self.store.manifest())  # before any file is read or embedded
        s = self.settings
        tally = _Tally([], [], list(left_out), [])
        known = self.store.hashes() if recheck else {}
        stale: list[str] = []
        show = s.show_progress and not quiet and len(items) > 20
        pending: list[tuple[Document, list[Chunk]]] = []
        texts: list[str] = []  # the chunk texts of ``pending``, in order
        vectors: list[np.ndarray] = []  # the embedded first rows of ``texts``
        began = time.monotonic()
        for doc in self._read(items, known, tally, stale, show):
            chunks = chunk_document(doc, s.chunk_size, s.chunk_overlap)
            pending.append((doc, chunks))
            texts += [c.text for c in chunks]
            embedded = sum(len(v) for v in vectors)
            if len(texts) - embedded >= EMBED_BATCH_CHUNKS:
                vectors.append(self.embedder.encode(texts[embedded:]))
            if batch and (len(pending) >= s.batch_files or time.monotonic() - began >= s.batch_seconds):
                self._commit(pending, texts, vectors, [], tally, recheck, replacing)
                pending, texts, vectors, began = [], [], [], time.monotonic()
        if pending or gone or stale:
            self._commit(pending, texts, vectors, list(gone) + stale, tally, recheck, replacing)
        return tally.report()

    def _commit(self, pending: list[tuple[Document, list[Chunk]]], texts: list[str], vectors: list[np.ndarray],
                removals: list[str], tally: _Tally, recheck: bool, replacing: bool = False) -> None:
        embedded = sum(len(v) for v in vectors)
        if len(texts) > embedded:
            vectors.append(self.embedder.encode(texts[embedded:]))
        dimension = self.embedder.dimension if pending else 0
        # One array (a single large file, or one embedding call) is used as it is, not copied.
        matrix = (vectors[0] if len(vectors) == 1 else np.concatenate(vectors)) if vectors \
            else np.zeros((0, dimension), np.float32)
        with self.store.writer(self._manifest(adding=bool(pending))) as w:
            if pending and not replacing:
                self._check_embedder(self.store.manifest())  # another writer may have made the index meanwhile
            current = w.hashes()  # as of now, with the lock held: other writers' changes included
            for source in removals:
                if source in current:
                    tally.chunks_removed += w.remove(source)
                    tally.removed.append(source)
            offset = 0
            for doc, chunks in pending:
                rows = matrix[offset:offset + len(chunks)]
                offset += len(chunks)
                if recheck and current.get(doc.source) == doc.sha256:
                    tally.unchanged.append(doc.source)  # another writer indexed this very content
                    continue
                if doc.source in current and doc.source not in removals:
                    tally.chunks_removed += w.remove(doc.source)
                w.add(doc, chunks, rows)
                tally.indexed.append(doc.source)
                tally.chunks_added += len(chunks)
        self._pages.clear()
