"""One segment's BM25 postings: for each stemmed term, the chunks holding it and how often.

Postings are a CSR matrix in plain NumPy arrays (no scipy, no pickle): ``indptr`` over the
segment's vocabulary, ``positions`` (the chunk's row in its segment, int32) and ``tfs`` (term
frequency, uint16) per posting, and ``lengths`` (terms per chunk). They hold no global statistic:
``index.bm25`` scores over the live chunks of every segment at query time, so adding or
removing chunks never rewrites other segments' postings, and merging concatenates postings
without reading chunk texts again.

Each term also keeps its largest tf and the shortest chunk among its postings (``max_tfs``,
``min_lengths``): since a posting's BM25 contribution grows with tf and shrinks with the
chunk's length, the two bound what the term can add to any chunk's score, which lets
``index.bm25`` skip postings that cannot change the top k.

Terms are ``index.text.terms`` (stemmed, stop words dropped). A chunk with no term counts
one empty term, as bm25s does with its ``[""]`` placeholder, so document lengths and average
length agree with a bm25s index over the same chunks.

On disk, ``terms/postings.npz``: ``vocab`` (the terms, UTF-8, newline-separated, as bytes),
``indptr``, ``positions``, ``tfs``, ``lengths``, ``max_tfs``, ``min_lengths`` (files written
before the last two existed have none: ``bound`` then computes a term's on first use).
``load`` reads the vocabulary and maps the arrays over ``MAP_BYTES`` (the postings and
lengths of all but small segments) from the file (an ``.npz`` is an uncompressed zip, each
array stored whole), so opening a segment reads its vocabulary, not its postings: a query
pages in the postings of its terms. The file is never changed after it is written (see
``index.backends.segments``), which is what makes the map safe.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from array import array
from collections import Counter
from itertools import repeat
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from index.text import terms as text_terms

MAP_BYTES = 1 << 20  # arrays of a saved segment larger than this are mapped from the file, smaller ones read
MERGE_BLOCK = 1 << 20  # postings of a part a merge handles at once (about 30 bytes each while they are)


class TermIndex:
    """Postings of one segment's chunks, rows ``0..count()-1`` in segment order.

    Example:
        >>> t = TermIndex.build(["red lamps and red potatoes", "a fire"])
        >>> t.postings("red")
        (array([0], dtype=int32), array([2], dtype=uint16))
    """

    DIRNAME = "terms"
    FILENAME = "postings.npz"

    def __init__(self, vocab: list[str], indptr: np.ndarray, positions: np.ndarray, tfs: np.ndarray,
                 lengths: np.ndarray, max_tfs: np.ndarray | None = None,
                 min_lengths: np.ndarray | None = None) -> None:
        self.vocab = vocab
        self._rows = {t: i for i, t in enumerate(vocab)}
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.positions = np.asarray(positions, dtype=np.int32)
        tfs = np.asarray(tfs)
        self.tfs = tfs if tfs.dtype == np.uint16 else np.minimum(tfs, np.iinfo(np.uint16).max).astype(np.uint16)
        self.lengths = np.asarray(lengths, dtype=np.int32)
        if (max_tfs is None) != (min_lengths is None):
            raise ValueError("max_tfs and min_lengths go together: give both or neither")
        self.max_tfs = None if max_tfs is None else np.asarray(max_tfs, dtype=np.uint16)
        self.min_lengths = None if min_lengths is None else np.asarray(min_lengths, dtype=np.int32)
        self._bounds: dict[int, tuple[int, int]] = {}  # computed per term when the file has no bounds

    @classmethod
    def build(cls, texts: Iterable[str]) -> TermIndex:
        """Postings of ``texts``, one chunk each, in order."""
        # Typed arrays, not lists: 4 + 4 + 4 bytes a posting instead of three Python ints (about
        # 100 bytes), which is what a file of tens of thousands of chunks holds until its commit.
        vocab: dict[str, int] = {}
        rows, cols, tfs, lengths = array("i"), array("i"), array("i"), array("i")
        for position, text in enumerate(texts):
            counts = Counter(text_terms(text))
            lengths.append(max(sum(counts.values()), 1))
            rows.extend(vocab.setdefault(term, len(vocab)) for term in counts)
            cols.extend(repeat(position, len(counts)))
            tfs.extend(counts.values())
        as_array = (lambda a: np.frombuffer(a, dtype=np.int32))  # noqa: E731
        return cls._from_coo(list(vocab), as_array(rows), as_array(cols), as_array(tfs), as_array(lengths))

    @classmethod
    def _from_coo(cls, vocab: list[str], rows: np.ndarray, cols: np.ndarray, tfs: np.ndarray,
                  lengths: np.ndarray) -> TermIndex:
        order = np.lexsort((cols, rows))
        rows, cols, tfs = rows[order], cols[order], tfs[order]
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(vocab)), out=indptr[1:])
        tfs = np.minimum(tfs, np.iinfo(np.uint16).max).astype(np.uint16)
        return cls(vocab, indptr, cols, tfs, lengths, *_term_bounds(indptr, cols, tfs, lengths))

    @classmethod
    def merge(cls, parts: Sequence[tuple[TermIndex, np.ndarray]], order: np.ndarray) -> TermIndex:
        """The postings of several segments' kept rows as one segment.

        ``parts``: each segment's postings with a bool mask of the rows kept. The kept rows
        are numbered in part order, then ``order`` (a permutation of them) gives the merged
        segment's row order: merged row ``i`` is kept row ``order[i]``.

        Postings are counted, then placed straight into the merged arrays (rows int32,
        frequencies uint16), ``MERGE_BLOCK`` postings of a part at a time, so memory is the
        merged postings plus one block, not arrays of every posting with their terms. When no
        two parts' kept rows interleave in the merged order (each part's rows form one run: the
        usual merge of segments written one after another), each term's postings are its
        parts' postings one part after another, already by row; otherwise each term's postings
        are sorted by row once placed, a block of terms at a time.
        """
        order = np.asarray(order, dtype=np.int64)
        new_row = np.empty(len(order), dtype=np.int64)
        new_row[order] = np.arange(len(order))
        vocab: dict[str, int] = {}
        mapped = []  # per part: its postings, each row's merged row (-1: not kept), each term's merged term
        offset = 0
        for terms, keep in parts:
            keep = np.asarray(keep, dtype=bool)
            rows = np.full(len(keep), -1, dtype=np.int32)
            rows[keep] = new_row[offset:offset + int(keep.sum())]
            offset += int(keep.sum())
            ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in terms.vocab), np.int64, len(terms.vocab))
            mapped.append((terms, rows, ids, keep))
        if offset != len(order):
            raise ValueError(f"order has {len(order)} rows, the parts keep {offset}")
        runs = sorted((int(rows[keep][0]), int(rows[keep][-1]), i) for i, (_, rows, _, keep) in enumerate(mapped)
                      if keep.any())
        in_runs = all(np.all(np.diff(rows[keep]) > 0) for _, rows, _, keep in mapped) and \
            all(last < first for (_, last, _), (first, _, _) in zip(runs, runs[1:]))
        counts = np.zeros(len(vocab), dtype=np.int64)
        for terms, rows, ids, _ in mapped:
            for t0, t1, bounds, kept, _ in _part_blocks(terms, rows):
                counts[ids[t0:t1]] += bounds[1:] - bounds[:-1]
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        positions = np.empty(int(indptr[-1]), dtype=np.int32)
        tfs = np.empty(int(indptr[-1]), dtype=np.uint16)
        filled = indptr[:-1].copy()
        sequence = [i for _, _, i in runs] if in_runs else range(len(mapped))
        for i in sequence:
            terms, rows, ids, _ = mapped[i]
            for t0, t1, bounds, kept, new in _part_blocks(terms, rows):
                taken = bounds[1:] - bounds[:-1]
                # where each kept posting goes: its term's next free slot plus its rank in that term
                rank = np.arange(int(bounds[-1]), dtype=np.int64) - np.repeat(bounds[:-1], taken)
                to = np.repeat(filled[ids[t0:t1]], taken) + rank
                positions[to] = new[kept]
                tfs[to] = terms.tfs[terms.indptr[t0]:terms.indptr[t1]][kept]
                filled[ids[t0:t1]] += taken
        if not in_runs:
            for t0, t1 in _term_blocks(indptr):
                a, b = indptr[t0], indptr[t1]
                by_row = np.lexsort((positions[a:b], np.repeat(np.arange(t1 - t0), np.diff(indptr[t0:t1 + 1]))))
                positions[a:b], tfs[a:b] = positions[a:b][by_row], tfs[a:b][by_row]
        kept_lengths = [terms.lengths[keep] for terms, _, _, keep in mapped]
        lengths = np.concatenate(kept_lengths)[order] if kept_lengths else np.zeros(0, np.int32)
        return cls(list(vocab), indptr, positions, tfs, lengths, *_term_bounds(indptr, positions, tfs, lengths))

    def count(self) -> int:
        """Number of chunk rows."""
        return int(len(self.lengths))

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows holding ``term`` (ascending) and the term's frequency in each."""
        row = self._rows.get(term)
        if row is None:
            return np.zeros(0, np.int32), np.zeros(0, np.uint16)
        a, b = self.indptr[row], self.indptr[row + 1]
        return self.positions[a:b], self.tfs[a:b]

    def bound(self, term: str) -> tuple[int, int]:
        """``(largest tf, shortest chunk length)`` over the postings of ``term``; ``(0, 0)`` without any."""
        row = self._rows.get(term)
        if row is None:
            return 0, 0
        if self.max_tfs is not None:
            return int(self.max_tfs[row]), int(self.min_lengths[row])
        found = self._bounds.get(row)
        if found is None:
            a, b = self.indptr[row], self.indptr[row + 1]
            found = (int(self.tfs[a:b].max()), int(self.lengths[self.positions[a:b]].min())) if b > a else (0, 0)
            self._bounds[row] = found
        return found

    def bounds_agree(self) -> bool:
        """Whether the saved per-term bounds are those of the postings (True when none are saved).
        A bound below the truth would make ``index.bm25`` prune chunks that belong in a top k."""
        if self.max_tfs is None:
            return True
        max_tfs, min_lengths = _term_bounds(self.indptr, self.positions, self.tfs, self.lengths)
        return bool(np.array_equal(self.max_tfs, max_tfs) and np.array_equal(self.min_lengths, min_lengths))

    def save(self, path: Path) -> None:
        folder = Path(path) / self.DIRNAME
        folder.mkdir(parents=True, exist_ok=True)
        vocab = np.frombuffer("\n".join(self.vocab).encode("utf-8"), dtype=np.uint8)
        bounds = {} if self.max_tfs is None else {"max_tfs": self.max_tfs, "min_lengths": self.min_lengths}
        with open(folder / self.FILENAME, "wb") as fh:
            np.savez(fh, vocab=vocab, indptr=self.indptr, positions=self.positions, tfs=self.tfs, lengths=self.lengths,
                     **bounds)

    @classmethod
    def load(cls, path: Path) -> TermIndex:
        file = Path(path) / cls.DIRNAME / cls.FILENAME
        z = mapped_npz(file, MAP_BYTES)
        text = z["vocab"].tobytes().decode("utf-8")
        vocab = text.split("\n") if text or len(z["indptr"]) > 1 else []
        index = cls(vocab, np.array(z["indptr"]), z["positions"], z["tfs"], z["lengths"], z.get("max_tfs"),
                    z.get("min_lengths"))
        if len(index.indptr) != len(vocab) + 1 or index.indptr[-1] != len(index.positions):
            raise ValueError(f"{file} is inconsistent (vocabulary and postings differ)")
        if index.max_tfs is not None and not len(index.max_tfs) == len(index.min_lengths) == len(vocab):
            raise ValueError(f"{file} is inconsistent (vocabulary and per-term bounds differ); rebuild the index")
        return index


def _term_bounds(indptr: np.ndarray, positions: np.ndarray, tfs: np.ndarray,
                 lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each term's largest tf and the shortest chunk among its postings (``max_tfs``, ``min_lengths``)."""
    return _per_term(np.maximum, tfs, indptr), _per_term(np.minimum, lengths[positions], indptr)


def _per_term(op: np.ufunc, values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """``op`` reduced over each term's postings of ``values`` (0 for a term without postings)."""
    out = np.zeros(len(indptr) - 1, dtype=values.dtype)
    starts = indptr[:-1]
    some = indptr[1:] > starts
    if some.any():   # a reduceat from each non-empty term's start runs to the next one's: only its own postings
        out[some] = op.reduceat(values, starts[some])
    return out


def _term_blocks(indptr: np.ndarray) -> Iterable[tuple[int, int]]:
    """Consecutive term ranges ``[t0, t1)`` holding about ``MERGE_BLOCK`` postings each (a term
    with more is a block alone)."""
    t0, terms = 0, len(indptr) - 1
    while t0 < terms:
        t1 = int(np.searchsorted(indptr, indptr[t0] + MERGE_BLOCK, side="right")) - 1
        t1 = min(max(t1, t0 + 1), terms)
        yield t0, t1
        t0 = t1


def _part_blocks(terms: TermIndex, rows: np.ndarray) -> Iterable[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
    """A part's postings a block of terms at a time, for ``TermIndex.merge``: ``(t0, t1, bounds,
    kept, new)`` with the kept postings per term as cumulative ``bounds`` (one more than the
    terms), which postings of the block are kept, and each posting's merged row (``rows``)."""
    for t0, t1 in _term_blocks(terms.indptr):
        a, b = terms.indptr[t0], terms.indptr[t1]
        new = rows[terms.positions[a:b]]
        kept = new >= 0
        before = np.zeros(b - a + 1, dtype=np.int64)
        np.cumsum(kept, out=before[1:])
        yield t0, t1, before[terms.indptr[t0:t1 + 1] - a], kept, new


def mapped_npz(file: Path, small: int = MAP_BYTES) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` ``file``: those over ``small`` bytes mapped read-only from the
    file (``np.load`` would read them whole), smaller ones read; a member stored compressed is
    read too.

    Headers and small arrays are read without read-ahead (``POSIX_FADV_RANDOM``): otherwise each
    of these small reads would make the kernel read megabytes beyond it."""
    out: dict[str, np.ndarray] = {}
    fd = os.open(file, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        with open(fd, "rb", closefd=False) as fh, zipfile.ZipFile(fh) as archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                if info.compress_type != zipfile.ZIP_STORED:
                    with archive.open(info) as member:
                        out[name] = np.lib.format.read_array(member, allow_pickle=False)
                    continue
                local = os.pread(fd, 30, info.header_offset)
                if local[:4] != b"PK\x03\x04":
                    raise ValueError(f"{file} is damaged (member {info.filename})")
                name_length, extra_length = struct.unpack("<HH", local[26:30])
                at = info.header_offset + 30 + name_length + extra_length
                head = os.pread(fd, 12, at)
                major = head[6] if len(head) == 12 else 0
                if major not in (1, 2) or head[7] != 0:
                    raise ValueError(f"{file}: member {info.filename} is not a .npy array of version 1 or 2")
                size = 10 + struct.unpack("<H", head[8:10])[0] if major == 1 else 12 + struct.unpack("<I", head[8:12])[0]
                header = io.BytesIO(os.pread(fd, size, at))
                np.lib.format.read_magic(header)
                read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(header)
                if dtype.hasobject:
                    raise ValueError(f"{file}: member {info.filename} holds Python objects")
                order = "F" if fortran else "C"
                nbytes = int(np.prod(shape)) * dtype.itemsize
                if nbytes > small:
                    out[name] = np.memmap(file, dtype=dtype, mode="r", offset=at + size, shape=shape, order=order)
                else:
                    data = os.pread(fd, nbytes, at + size)
                    out[name] = np.frombuffer(data, dtype=dtype).reshape(shape, order=order)
    finally:
        os.close(fd)
    return out
