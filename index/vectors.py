"""One segment's vectors in FAISS: exact search while small, HNSW once large.

A segment's vectors are rows ``0..n-1`` in segment order (the segment maps rows to chunk
ids). Removed chunks stay in the index until a merge drops them; a search skips them with an
``IDSelector`` over the live rows, so a removed chunk is never returned, whatever the index type.

Index type rule (``index_kind``):

* up to ``HNSW_THRESHOLD`` (50,000) vectors: exact inner-product search (``IndexFlatIP``).
  It needs no training and is exact. A flat scan for one query costs about 0.1 ms per
  thousand MiniLM vectors (384 floats) on one core (measured: 2 ms for 20,000 on a busy
  two-core machine), so 50,000 costs about 5 ms, half the 10 ms a dense query may take.
  The segment merge policy keeps all exactly searched segments together under this size.
* above it: HNSW (``IndexHNSWFlat``, inner product). A flat scan grows linearly (a million
  vectors is 1.5 GB read per query, about 100 ms at the rate above); HNSW visits a few
  thousand vectors per query whatever the size. ``HNSW_M`` = 32 links per node, the middle
  of the range FAISS suggests (4 to 64) for high-dimensional vectors: the graph costs 256
  bytes per vector beside the vector's own 1,536. ``HNSW_EF_SEARCH`` = 128
  candidates: recall@10 against exact search must stay at or above 0.95 with removed rows
  filtered out; on 20,000 noisy real MiniLM embeddings (10% removed) efSearch 8 gave 0.93,
  16 gave 0.99 and 32 or more 1.00 (tested in ``tests/test_segments.py``); a query over
  100,000 vectors took about 2 ms. A graph's recall at a given efSearch falls as it grows, so
  ``ef_search`` doubles the candidates for larger segments: on the million-chunk benchmark
  (``docs/bench/scale.py``: realistic vectors, ten segments, the largest of 520,000) 128
  candidates everywhere gave recall@10 0.877, 256 gave 0.923 and 512 gave 0.967.
  ``HNSW_EF_CONSTRUCTION`` = 80, twice FAISS's default of 40: a better graph for a slower
  build, which happens only in merges.

Both kinds keep the vectors themselves (HNSW over flat storage), so a merge rebuilds any
index from them and ``python -m index copy`` reads them back exactly.

A saved index is opened memory-mapped (``load``: FAISS's ``IO_FLAG_MMAP_IFC``): the vectors
and the HNSW links are mapped from the file, not copied into memory. FAISS reads the graph
through the map as it opens (about 270 bytes a vector: links and per-node metadata); the
vectors (1,536 bytes a vector for MiniLM) are paged in as searches touch them. Either way the
pages are shared page cache, which the system can drop under memory pressure and read again,
not private memory. This is safe because a
segment's file is never changed after it is written: writers make new files and collect old
ones by unlinking them, and a map of an unlinked file stays readable while it is held (a file
truncated by something else would make the reading process fault with SIGBUS instead of
raising an error). A loaded index is read-only (FAISS aborts on adding to a mapped one);
nothing adds to one: new vectors always make a new index (``build``, or ``build_from`` for a
merge, which adds batches read with ``read_saved`` to storage reserved once for all of them).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterable

import faiss
import numpy as np

HNSW_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80


def ef_search(n: int) -> int:
    """Candidates an HNSW search of a segment of ``n`` vectors keeps: ``HNSW_EF_SEARCH`` up to
    100,000 vectors, doubled up to 250,000, doubled again up to 600,000, 1,024 above."""
    for limit, ef in ((100_000, HNSW_EF_SEARCH), (250_000, 2 * HNSW_EF_SEARCH), (600_000, 4 * HNSW_EF_SEARCH)):
        if n <= limit:
            return ef
    return 8 * HNSW_EF_SEARCH


def index_kind(n: int, threshold: int | None = None) -> str:
    """The index type for a segment of ``n`` vectors: "flat" (exact) up to ``threshold``
    (``HNSW_THRESHOLD``), "hnsw" above it (see the module docstring for why)."""
    if n < 0:
        raise ValueError(f"n must be 0 or more. Currently, n is {n}")
    return "hnsw" if n > (HNSW_THRESHOLD if threshold is None else threshold) else "flat"


class FaissVectorStore:
    """Cosine search over one segment's unit vectors, rows numbered in segment order.

    Example:
        >>> store = FaissVectorStore.build(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
        >>> store.search(np.array([1.0, 0.0], dtype=np.float32), k=1)
        [(0, 1.0)]
        >>> store.search(np.array([1.0, 0.0], dtype=np.float32), k=1, live=np.array([False, True]))
        [(1, 0.0)]
    """

    FILENAME = "vectors.faiss"

    def __init__(self, dimension: int, index: faiss.Index) -> None:
        if dimension <= 0:
            raise ValueError(f"dimension must be greater than 0. Currently, dimension is {dimension}")
        self.dimension = dimension
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray, kind: str | None = None, dimension: int | None = None) -> FaissVectorStore:
        """An index over ``vectors`` (rows in order) of ``kind``, by default ``index_kind(len(vectors))``."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        d = dimension or vectors.shape[1]
        if vectors.ndim != 2 or vectors.shape[1] != d:
            raise ValueError(f"vectors must have shape (n, {d}); got {vectors.shape}")
        kind = kind or index_kind(len(vectors))
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = ef_search(len(vectors))
        else:
            raise ValueError(f"kind must be 'flat' or 'hnsw'. Currently, kind is {kind!r}")
        if len(vectors):
            index.add(vectors)
        return cls(d, index)

    @classmethod
    def build_from(cls, batches: Iterable[np.ndarray], n: int, dimension: int) -> FaissVectorStore:
        """An index of ``index_kind(n)`` over ``n`` vectors given as consecutive batches (a merge).

        The index's storage is reserved once for all ``n`` vectors (and, for HNSW, its links for
        the expected number), so adding batch after batch never reallocates and copies what is
        already added: memory is the index itself plus one batch, where ``build`` needs all the
        vectors in one array beside it. An HNSW graph built batch by batch is another graph than
        one built in one call (FAISS builds it deterministically from what each call adds), of
        the same kind and quality."""
        if n < 0:
            raise ValueError(f"n must be 0 or more. Currently, n is {n}")
        store = cls.build(np.zeros((0, dimension), np.float32), kind=index_kind(n), dimension=dimension)
        index = store._index
        flat = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
        _reserve(flat.codes, n * dimension * 4)
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = ef_search(n)
            # links per vector: 2M on level 0, M on each level above; a vector reaches level l
            # with probability M^-l, M/(M-1) links above level 0 on average: 2M + 2 reserved.
            _reserve(index.hnsw.neighbors, n * (2 * HNSW_M + 2))
        added = 0
        for batch in batches:
            batch = np.ascontiguousarray(batch, dtype=np.float32)
            if batch.ndim != 2 or batch.shape[1] != dimension:
                raise ValueError(f"vectors must have shape (n, {dimension}); got {batch.shape}")
            if len(batch):
                index.add(batch)
            added += len(batch)
        if added != n:
            raise ValueError(f"build_from was promised {n} vectors and given {added}")
        return store

    @property
    def kind(self) -> str:
        return "hnsw" if isinstance(self._index, faiss.IndexHNSW) else "flat"

    def count(self) -> int:
        return int(self._index.ntotal)

    def search(self, vector: np.ndarray, k: int, live: np.ndarray | None = None,
               bitmap: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Up to ``k`` ``(row, inner product)``, best first, among the ``live`` rows (all when None).

        ``bitmap``: ``live`` packed with ``live_bitmap`` (callers searching often pass it once made).
        """
        if k <= 0:
            raise ValueError(f"k must be greater than 0. Currently, k is {k}")
        n = self.count()
        if n == 0:
            return []
        query = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        # A selector is always passed: besides skipping removed rows, it makes FAISS scan a flat
        # index for one query on this thread (without one it starts OpenMP threads, which made a
        # 20,000-vector scan 16 ms instead of 2 on a busy two-core machine).
        if live is not None and not live.all():
            bitmap = live_bitmap(live) if bitmap is None else bitmap
            selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
        else:
            selector = faiss.IDSelectorAll()
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef_search(n))
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, rows = self._index.search(query, min(k, n), params=params)
        return [(int(i), float(s)) for i, s in zip(rows[0], scores[0]) if i != -1]

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of these rows."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros((0, self.dimension), np.float32)
        return self._index.reconstruct_batch(rows)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(Path(path) / self.FILENAME))

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissVectorStore:
        """The index saved in ``path``, memory-mapped and read-only (see the module docstring)."""
        file = Path(path) / cls.FILENAME
        prefetch(file, 0, graph_bytes(file))
        index = faiss.read_index(str(file), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        if index.d != dimension:
            raise ValueError(f"vector file has dimension {index.d}, the manifest says {dimension}; rebuild the index")
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = ef_search(int(index.ntotal))
        return cls(dimension, index)


def _reserve(vector, size: int) -> None:
    """Give an empty FAISS vector the capacity of ``size`` items without changing its contents
    (a shrinking ``resize`` keeps the capacity)."""
    if vector.size() == 0 and size > 0:
        vector.resize(size)
        vector.resize(0)


def read_saved(path: Path, rows: np.ndarray) -> np.ndarray:
    """The vectors of ``rows`` of the index saved in ``path``, read from the file's block of
    vectors (``graph_bytes``) through a map made for this call only.

    A merge reads its parts this way, batch by batch: pages read stay in the page cache but
    not in the process (a part's index kept mapped would count every page read in the
    process's resident memory, about 1.5 KB a vector by the end of a merge)."""
    file = Path(path) / FaissVectorStore.FILENAME
    header = saved_header(file)
    if header is None or header[0] not in SAVED_KINDS:
        raise ValueError(f"{file} is not a vector index this program writes; rebuild the index")
    _, d, n = header
    start = graph_bytes(file)
    with open(file, "rb") as fh:   # FAISS writes the vectors' length (floats, or bytes) just before them
        fh.seek(start - 8)
        count = struct.unpack("<q", fh.read(8))[0]
    if count not in (n * d, n * d * 4) or os.path.getsize(file) - start != n * d * 4:
        raise ValueError(f"{file} is damaged: {n} vectors of dimension {d} are not where they belong")
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return np.zeros((0, d), np.float32)
    if rows.min() < 0 or rows.max() >= n:
        raise IndexError(f"rows {rows.min()}..{rows.max()} out of range for {n} vectors in {file}")
    block = np.memmap(file, dtype=np.float32, mode="r", offset=start, shape=(n, d))  # unmapped on return
    return np.array(block[rows])


def live_bitmap(live: np.ndarray) -> np.ndarray:
    """``live`` as the bit array ``faiss.IDSelectorBitmap`` reads (bit i of byte i // 8, lowest first)."""
    return np.packbits(np.asarray(live, dtype=bool), bitorder="little")


# FAISS writes an index as its four-character type, then the dimension (int32) and the number of
# vectors (int64); these are the two types this module writes.
SAVED_KINDS = {b"IxFI": "flat", b"IHNf": "hnsw"}


def saved_header(file: Path) -> tuple[bytes, int, int] | None:
    """``(type, dimension, vectors)`` from the header of a saved index; None for a file shorter
    than a header."""
    with open(file, "rb") as fh:
        head = fh.read(16)
    if len(head) < 16:
        return None
    d, n = struct.unpack("<iq", head[4:16])
    return head[:4], d, n


def graph_bytes(file: Path) -> int:
    """Bytes of a saved index before its vectors: the header and, for HNSW, the graph.

    A flat or HNSW-over-flat index is written as its header (``saved_header``), then the graph,
    then the vectors (count x dimension float32) last. Opening reads everything before the
    vectors."""
    size = os.path.getsize(file)
    header = saved_header(file)
    if header is None:
        return size
    _, d, n = header
    return min(size, max(0, size - n * d * 4))


def prefetch(file: Path, start: int = 0, length: int | None = None, step: int = 8 << 20) -> None:
    """Ask the operating system to read ``length`` bytes of ``file`` from ``start`` (all to the
    end when None) into its page cache now, without waiting (``POSIX_FADV_WILLNEED``, asked in
    ``step`` pieces: the kernel reads at most its read-ahead window per request).

    Opening a mapped index reads its graph through the map, page by page: without this hint,
    opening the 520,000-vector segment of the million-chunk benchmark (``docs/bench/scale.py``)
    with nothing cached took 2.2-2.8 s for its 135 MB graph (reading the whole 897 MB file took
    2.1-3.2 s), and 0.2-0.4 s with it. A hint only: a file that cannot be opened is left to the
    read that follows to report."""
    try:
        fd = os.open(file, os.O_RDONLY)
    except OSError:
        return
    try:
        end = os.fstat(fd).st_size if length is None else min(start + length, os.fstat(fd).st_size)
        for at in range(start, end, step):
            os.posix_fadvise(fd, at, min(step, end - at), os.POSIX_FADV_WILLNEED)
    finally:
        os.close(fd)
