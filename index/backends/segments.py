"""Immutable segments of a folder store, their deletion files, and merges.

A segment is a folder written once and never changed::

    segments/seg-000012/   catalog.sqlite   its documents and chunks (``index.catalog``)
                           ids.npy          chunk id of each row, ascending
                           vectors.faiss    one unit vector per row (``index.vectors``)
                           terms/           BM25 postings per row (``index.terms``)
                           del-000015.npz   removals as of generation 15 (see below)

Opening a segment maps its vectors, HNSW graph and postings from these files instead of
reading them whole (``FaissVectorStore.load``, ``TermIndex.load``), and ``warm`` then asks the
operating system to read them into its page cache in the background, so the first searches
rarely wait on the disk page by page.

Removing a document never touches a segment's files: the commit writes a new deletion file
``del-GEN.npz`` into the segment's folder (``rows``: the removed rows as a bit array,
``docs``: the removed document ids), and the generation's manifest names the deletion file
that is current for each segment (as Lucene's ``.liv`` files). A reader holds its
generation's deletion masks in memory, so collecting superseded files never changes what it sees.

Merges (``plan_merge``, ``merge``) follow Lucene's tiered policy, simplified. Once a commit
leaves more than ``MAX_SEGMENTS`` segments that are not full, up to ``MERGE_FACTOR`` of the
smallest are rewritten as one, without their removed chunks; the merge stops before a segment
more than ``SKEW`` times the size of those already chosen (small ones counting as ``FLOOR``), so
a few one-file segments are never merged into one of 100,000 chunks, and segments of similar
sizes merge ten at a time (each chunk is rewritten about log10(N) times over an index's life).
Two more rules keep searches fast: when the small segments (up to
``index.vectors.HNSW_THRESHOLD`` live chunks, searched exactly) together hold more than that
threshold, they are merged into one HNSW segment, so a dense query never scans more than
about that many vectors exactly; and a large segment of which at least half was removed is
rewritten alone to drop them.

No merge writes more than ``MAX_MERGED_ROWS`` rows (Lucene's largest merged segment), so the
memory of a merge is bounded whatever the size of the index. A segment of more than half that
many live chunks is full: no two such fit under the cap, so it is never merged with others
(only rewritten alone by the removal rule) and is not counted against ``MAX_SEGMENTS``. An index
of N chunks ends with about N / (a full segment's size) full segments besides up to
``MAX_SEGMENTS`` others, and a dense query searches each of them.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from index.catalog import Catalog, write_merged
from index.terms import TermIndex
from index import vectors as vector_rules
from index.vectors import SAVED_KINDS, FaissVectorStore, prefetch, read_saved, saved_header

MAX_SEGMENTS = 10
# The most rows a merge writes (Lucene's largest merged segment). A merge holds the new
# segment's vector index: its vectors (1.5 KB a MiniLM chunk) and, for HNSW, its links;
# merging 100,594 chunks into HNSW took 2,092 bytes a merged chunk over the opened index
# (``docs/bench/bigfolder.py --merge-probe``), so a merge of 250,000 takes about 0.5 GB. A
# build holds about 0.9 GB besides (docs/BENCHMARKS.md, "A 2 GB folder"): the largest merge and
# the build stay within 1.5 GB together. Full segments (over half of it) are searched with
# efSearch 256 (``index.vectors.ef_search``).
MAX_MERGED_ROWS = 250_000
MERGE_FACTOR = 10
FLOOR = 1_000   # segments below this many chunks count as this size when merges are balanced
SKEW = 10       # a merge stops before a segment more than this many times the rest together
EXPUNGE_SHARE = 0.5  # a large segment with this share of removed rows is rewritten without them
IDS_FILE = "ids.npy"
VECTOR_BATCH = 2_048  # vectors a merge reads and adds to the new index at once (3 MB of MiniLM vectors)


class Segment:
    """One loaded segment: shared by every state that lists it (it never changes).

    Its vectors and BM25 postings are held in memory (``vectors``, ``terms``) or, for a segment
    opened with ``load_segment(..., parts=False)`` or written with ``write_segment(...,
    keep_parts=False)``, read from its folder when first searched and kept from then on (a merge
    reads them for itself only, ``read_vectors`` and ``read_terms``). A process that only writes
    (``python -m index build``) holds its segments that way: a commit needs their ids and
    catalogs, not their vectors, so its memory does not grow with every chunk committed so far.
    """

    def __init__(self, name: str, catalog: Catalog, ids: np.ndarray, vectors: FaissVectorStore | None,
                 terms: TermIndex | None, path: Path | None = None, dimension: int | None = None,
                 kind: str | None = None) -> None:
        if (vectors is None or terms is None) and (path is None or dimension is None):
            raise ValueError(f"segment {name}: parts not held in memory need the segment's folder and dimension")
        self.name = name
        self.catalog = catalog
        self.ids = ids  # int64 chunk id per row, ascending
        self.path = path  # None while it lives only in memory (an old-format index being read)
        self.dimension = dimension if dimension is not None else vectors.dimension
        self._vectors = vectors
        self._terms = terms
        self._kind = kind
        self._lock = threading.Lock()

    def _held(self, attr: str, load: Callable[[], object]):
        """The part kept in ``attr``, loaded by ``load`` the first time (once, whatever the threads)."""
        if getattr(self, attr) is None:
            with self._lock:
                if getattr(self, attr) is None:
                    setattr(self, attr, load())
        return getattr(self, attr)

    @property
    def vectors(self) -> FaissVectorStore:
        return self._held("_vectors", self._load_vectors)

    def read_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows``; when they are not held, read from the file for this call only
        (a merge, batch by batch: ``index.vectors.read_saved``)."""
        if self._vectors is not None:
            return self._vectors.vectors(rows)
        return read_saved(self.path, rows)

    def read_terms(self) -> TermIndex:
        """The postings; when they are not held, read for the caller only (a merge), not kept."""
        return self._terms if self._terms is not None else self._load_terms()

    def _load_terms(self) -> TermIndex:
        terms = TermIndex.load(self.path)
        _check_rows(self, terms.count(), "BM25 rows")
        return terms

    def _load_vectors(self) -> FaissVectorStore:
        vectors = FaissVectorStore.load(self.path, self.dimension)
        _check_rows(self, vectors.count(), "vectors")
        return vectors

    @property
    def terms(self) -> TermIndex:
        return self._held("_terms", self._load_terms)

    @property
    def kind(self) -> str:
        """The vector index type, "flat" or "hnsw" (without reading the vectors when they are not held)."""
        return self._vectors.kind if self._vectors is not None or self._kind is None else self._kind

    def parts_held(self) -> bool:
        """True when the vectors or the postings are in memory."""
        return self._vectors is not None or self._terms is not None

    def relocated(self, name: str, path: Path) -> Segment:
        """This segment after its folder was renamed to ``path`` (the parts held stay held)."""
        return Segment(name, self.catalog, self.ids, self._vectors, self._terms, path, self.dimension, self._kind)

    def rows_of(self, chunk_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, found)``: the rows of those chunk ids held here, and which of the ids were found."""
        chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        rows = np.searchsorted(self.ids, chunk_ids)
        rows = np.minimum(rows, max(len(self.ids) - 1, 0))
        found = (self.ids[rows] == chunk_ids) if len(self.ids) else np.zeros(len(chunk_ids), bool)
        return rows[found], found


def _check_rows(segment: Segment, rows: int, what: str) -> None:
    if rows != len(segment.ids):
        raise ValueError(f"segment {segment.name} is inconsistent: {len(segment.ids)} ids, {rows} {what}")


@dataclass(frozen=True, eq=False)
class Live:
    """A segment as of one generation: which rows and documents were removed."""

    segment: Segment
    deleted: np.ndarray  # bool per row
    deleted_docs: frozenset[int]
    deletes: str | None  # the deletion file holding them (None: nothing removed)
    cache: dict = field(default_factory=dict, compare=False)

    @property
    def live(self) -> np.ndarray:
        if "live" not in self.cache:
            self.cache["live"] = ~self.deleted
        return self.cache["live"]

    def live_count(self) -> int:
        return int(len(self.deleted) - self.deleted.sum())


def load_segment(folder: Path, dimension: int, parts: bool = True) -> Segment:
    """The segment saved in ``folder``; raises when a part is missing or they disagree.

    ``parts``: read its vectors and postings now; False reads only their row counts (and the
    vector index type) from the files' headers, and the parts when first used (see ``Segment``).
    """
    catalog = Catalog.open(folder)
    ids = np.load(folder / IDS_FILE, allow_pickle=False).astype(np.int64, copy=False)
    if not parts:
        header = saved_header(folder / FaissVectorStore.FILENAME)
        if header is not None and header[0] in SAVED_KINDS:
            kind, d, rows = SAVED_KINDS[header[0]], header[1], header[2]
            if d != dimension:
                raise ValueError(f"vector file has dimension {d}, the manifest says {dimension}; rebuild the index")
            with np.load(folder / TermIndex.DIRNAME / TermIndex.FILENAME, allow_pickle=False) as z:
                term_rows = len(z["lengths"])
            if not (len(ids) == rows == term_rows):
                raise ValueError(f"segment {folder.name} is inconsistent: {len(ids)} ids, {rows} vectors, "
                                 f"{term_rows} BM25 rows")
            return Segment(folder.name, catalog, ids, None, None, folder, dimension, kind)
    vectors = FaissVectorStore.load(folder, dimension)
    terms = TermIndex.load(folder)
    if not (len(ids) == vectors.count() == terms.count()):
        raise ValueError(f"segment {folder.name} is inconsistent: {len(ids)} ids, {vectors.count()} vectors, "
                         f"{terms.count()} BM25 rows")
    return Segment(folder.name, catalog, ids, vectors, terms, folder)


def warm(segments: Sequence[Segment]) -> None:
    """Start reading the vector and postings files of ``segments`` into the page cache, on a
    background thread (the open does not wait for it; searches meanwhile page in what they touch)."""
    files = [seg.path / name for seg in segments if seg.path is not None
             for name in (FaissVectorStore.FILENAME, f"{TermIndex.DIRNAME}/{TermIndex.FILENAME}")]

    def read_ahead() -> None:
        for file in files:
            prefetch(file)

    if files:
        threading.Thread(target=read_ahead, name="segment-warm", daemon=True).start()


def load_live(segment: Segment, deletes: str | None) -> Live:
    """``segment`` with the removals of its deletion file ``deletes``."""
    deleted = np.zeros(len(segment.ids), dtype=bool)
    docs: frozenset[int] = frozenset()
    if deletes is not None:
        with np.load(segment.path / deletes, allow_pickle=False) as z:
            deleted = np.unpackbits(z["rows"], count=len(segment.ids), bitorder="little").astype(bool)
            docs = frozenset(int(d) for d in z["docs"])
    return Live(segment, deleted, docs, deletes)


def write_deletes(segment: Segment, deleted: np.ndarray, docs: frozenset[int], generation: int) -> str:
    """Write a deletion file for ``segment`` as of ``generation``; returns its name."""
    name = f"del-{generation:06d}.npz"
    tmp = segment.path / f".tmp-{name}"
    with open(tmp, "wb") as fh:
        np.savez(fh, rows=np.packbits(deleted, bitorder="little"), docs=np.asarray(sorted(docs), dtype=np.int64))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, segment.path / name)
    fsync_dir(segment.path)
    return name


def write_segment(root: Path, name: str, catalog: Catalog, ids: np.ndarray, vectors: FaissVectorStore,
                  terms: TermIndex, keep_parts: bool = True) -> Segment:
    """Write a new segment ``root/name`` (built beside it, then renamed into place) and load it.

    ``keep_parts``: the returned segment holds ``vectors`` and ``terms``; False lets them go
    (they are read back from the folder when first used, see ``Segment``)."""
    def fill(folder: Path) -> tuple[FaissVectorStore, TermIndex]:
        catalog.save(folder)
        vectors.save(folder)
        terms.save(folder)
        return vectors, terms

    return _written(root, name, ids, vectors.dimension, vectors.kind, fill, keep_parts)


def _written(root: Path, name: str, ids: np.ndarray, dimension: int, kind: str,
             fill: Callable[[Path], tuple[FaissVectorStore | None, TermIndex | None]], keep_parts: bool) -> Segment:
    """The segment ``root/name`` with ``ids``, its other files written by ``fill(folder)`` into a
    folder beside it that is synced and then renamed into place (a writer killed before the
    rename leaves only a ``.tmp-`` folder, which no generation lists). ``fill`` returns the
    vectors and postings it wrote, for the segment to hold when ``keep_parts``."""
    final = root / name
    tmp = root / f".tmp-{name}-{os.getpid()}"
    for leftover in (tmp, final):   # a killed writer's, never listed by a generation
        shutil.rmtree(leftover, ignore_errors=True)
    tmp.mkdir(parents=True)
    ids = np.asarray(ids, dtype=np.int64)
    with open(tmp / IDS_FILE, "wb") as fh:
        np.save(fh, ids)
    vectors, terms = fill(tmp)
    fsync_tree(tmp)
    os.rename(tmp, final)
    fsync_dir(root)
    if not keep_parts or vectors is None or terms is None:
        return Segment(name, Catalog.open(final), ids, None, None, final, dimension, kind)
    return Segment(name, Catalog.open(final), ids, vectors, terms, final)


def plan_merge(sizes: Sequence[int], deleted: Sequence[int] | None = None, max_segments: int | None = None,
               factor: int | None = None, large: int | None = None, cap: int | None = None) -> list[int]:
    """Which segments to merge into one, by index (``[]``: none).

    ``sizes``: live chunks per segment; ``deleted``: removed rows per segment; ``cap``: the most
    live chunks a merge may write (``MAX_MERGED_ROWS``). See the module docstring for the policy.

    Example:
        >>> plan_merge([5] * 10)
        []
        >>> sorted(plan_merge([50, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        >>> plan_merge([200_000] * 12, cap=250_000)   # full segments are left as they are
        []
    """
    max_segments = MAX_SEGMENTS if max_segments is None else max_segments
    factor = MERGE_FACTOR if factor is None else factor
    large = vector_rules.HNSW_THRESHOLD if large is None else large
    cap = MAX_MERGED_ROWS if cap is None else cap
    if cap <= 0:
        raise ValueError(f"cap must be greater than 0. Currently, cap is {cap}")
    deleted = list(deleted) if deleted is not None else [0] * len(sizes)
    for i, (n, d) in enumerate(zip(sizes, deleted)):
        if n > large and d >= EXPUNGE_SHARE * (n + d):
            return [i]
    growing = [i for i, n in enumerate(sizes) if n <= cap // 2]   # the others are full
    small = _within(sorted((i for i in growing if sizes[i] <= large), key=lambda i: (sizes[i], i)), sizes, cap)
    if len(small) >= 2 and sum(sizes[i] for i in small) > large:
        return small  # the small segments together outgrew exact search: one HNSW segment from them
    if len(growing) <= max_segments:
        return []
    ranked = sorted(growing, key=lambda i: (sizes[i], i))
    chosen, total = ranked[:1], sizes[ranked[0]]
    for i in ranked[1:factor]:
        if sizes[i] > max(FLOOR, SKEW * total) or total + sizes[i] > cap:
            break   # much larger than what is merged so far (not rewritten for a few small segments), or past the cap
        chosen.append(i)
        total += sizes[i]
    return chosen if len(chosen) >= 2 else ranked[:2]   # two segments of at most half the cap each fit


def _within(ranked: list[int], sizes: Sequence[int], cap: int) -> list[int]:
    """The longest start of ``ranked`` whose sizes add up to at most ``cap``."""
    total, out = 0, []
    for i in ranked:
        total += sizes[i]
        if total > cap:
            break
        out.append(i)
    return out


def merge(parts: Sequence[Live], root: Path, name: str, dimension: int, keep_parts: bool = True) -> Segment:
    """Write the live rows of ``parts`` as one new segment ``root/name`` (ids kept, rows by id);
    ``keep_parts`` as for ``write_segment``.

    The merge streams, so its memory is that of the new segment's vector index (or, after it,
    its postings) and not of everything merged: SQLite copies the catalogs from file to file
    (``catalog.write_merged``); the vectors are read ``VECTOR_BATCH`` rows at a time, in the new
    row order, into an index reserved for all of them (``FaissVectorStore.build_from``), which
    is written and, unless ``keep_parts``, let go before the postings are merged straight into
    their final arrays (``TermIndex.merge``). Besides, it holds a few integers a row (ids, the
    row order). The segment holds the same rows, catalog rows, vectors and postings as one
    written from the live chunks in one go; an HNSW graph added batch by batch is another
    graph than one added at once, of the same quality.
    """
    unsaved = [p.segment.name for p in parts if p.segment.path is None]
    if unsaved:
        raise ValueError(f"segments {unsaved} are not on disk; a merge reads saved segments")
    rows = [np.flatnonzero(p.live) for p in parts]
    ids = np.concatenate([p.segment.ids[r] for p, r in zip(parts, rows)]) if parts else np.zeros(0, np.int64)
    order = np.argsort(ids, kind="stable")

    def fill(folder: Path) -> tuple[FaissVectorStore | None, TermIndex | None]:
        write_merged(folder, [(p.segment.path, p.deleted_docs) for p in parts])
        vectors = FaissVectorStore.build_from(_vector_batches(parts, rows, order), len(order), dimension)
        vectors.save(folder)
        held = vectors if keep_parts else None
        del vectors   # unless kept, the index is let go before the postings are merged
        terms = TermIndex.merge([(p.segment.read_terms(), p.live) for p in parts], order)
        terms.save(folder)
        return held, terms if keep_parts else None

    return _written(root, name, ids[order], dimension, vector_rules.index_kind(len(order)), fill, keep_parts)


def _vector_batches(parts: Sequence[Live], rows: Sequence[np.ndarray], order: np.ndarray) -> Iterator[np.ndarray]:
    """The vectors of the merged rows in their new order, ``VECTOR_BATCH`` at a time: kept row
    ``order[i]`` (kept rows numbered part after part, ``rows`` the kept rows of each part) is
    merged row ``i``."""
    part_of = np.repeat(np.arange(len(parts), dtype=np.int32), [len(r) for r in rows])
    first = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    for at in range(0, len(order), VECTOR_BATCH):
        wanted = order[at:at + VECTOR_BATCH]
        which = part_of[wanted]
        out = np.empty((len(wanted), parts[0].segment.dimension), dtype=np.float32)
        for i in np.unique(which):
            here = which == i
            out[here] = parts[i].segment.read_vectors(rows[i][wanted[here] - first[i]])
        yield out


def fsync_tree(folder: Path) -> None:
    for where, _, files in os.walk(folder):
        for name in files:
            with open(Path(where) / name, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(Path(where))


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
