"""How the folder store behaves at scale: updates, dense and BM25 latency, recall, opening, memory.

    python docs/bench/scale.py --chunks 1000000 --out scale-1m.json
    python docs/bench/scale.py --chunks 100000 --out scale-100k.json --data ../shared/data

Text: paragraphs of the shared data sets (SQuAD dev contexts and BEIR SciFact abstracts under
``--data``), cut to 800 characters, repeated under distinct ids until there are ``--chunks``
chunks, ``--per-doc`` chunks a document. Vectors: real all-MiniLM-L6-v2 embeddings of
``--sample`` of those paragraphs, each chunk taking one with small gaussian noise
(``--noise`` per component), renormalised. Uniform random vectors would flatter approximate
search; these have the neighbourhoods of real text (near-duplicates included). A chunk's
vector is not its text's: the store's costs do not depend on that pairing.

Measured (the model is loaded before and never timed):

* ``build_s``: writing the store in commits of ``--batch`` chunks, and ``build_commits``: each
  commit's seconds and whether it merged segments (a merge into HNSW builds the graph).
* ``add_file_s`` / ``remove_file_s``: committing one more document of ``--per-doc`` chunks,
  then removing one document, repeated ``--repeat`` times (median and max).
* in a fresh process, as a reader would: ``open_s`` (``FolderStore.open`` and a count),
  dense top-10 latency (p50, p95) and recall@10 against exact search over the live
  vectors, BM25 top-10 latency for SQuAD questions, and that process's peak resident memory.
* ``builder_peak_rss_mb``: the building process's peak (the model included).

``--reader INDEX QUERIES`` runs only the reader's part over a store built before (``--work``
keeps it). With ``--cold`` it first drops every file of the store from the operating system's
page cache (``posix_fadvise(DONTNEED)``: no root needed, clean pages only; ``cold.cached_mb``
says what stayed cached, measured with ``mincore``), as after a reboot, and reports what a
first question pays: ``open_s`` and the bytes the open read from disk (``open_read_mb``),
the first dense and first BM25 query (``first_dense_ms``, ``first_bm25_ms``), the next
queries' p50 and p95, and resident memory after the open and after the queries. Before that it
measures the disk: the store's vector files read whole, cold, in 8 MiB reads
(``cold.disk_read_mb_s``), then dropped again.

The JSON printed (and written to ``--out``) holds every figure and the settings.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import mmap
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from index import vectors as vector_rules  # noqa: E402
from index.backends.folder import FolderStore  # noqa: E402
from index.types import Chunk, Document  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MAX_CHARS = 800


def paragraphs(data: Path) -> list[str]:
    """Distinct paragraphs of the SQuAD dev sets and the SciFact corpus, at most 800 characters each."""
    found: list[str] = []
    for name in ("squad/dev-v1.1.json", "squad/dev-v2.0.json"):
        path = data / name
        if path.exists():
            found += [p["context"] for a in json.loads(path.read_text())["data"] for p in a["paragraphs"]]
    scifact = data / "beir-scifact" / "corpus.jsonl"
    if scifact.exists():
        with open(scifact) as fh:
            found += [json.loads(line)["text"] for line in fh]
    found = [p.strip()[:MAX_CHARS] for p in dict.fromkeys(found) if len(p.strip()) > 50]
    if not found:
        raise SystemExit(f"no paragraphs under {data}: pass --data with the shared data sets (squad/, beir-scifact/)")
    return found


def questions(data: Path, n: int) -> list[str]:
    path = data / "squad" / "dev-v1.1.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: pass --data with the shared data sets")
    qs = [q["question"] for a in json.loads(path.read_text())["data"] for p in a["paragraphs"] for q in p["qas"]]
    return qs[:: max(1, len(qs) // n)][:n]


class Corpus:
    """Chunk ``i``: text ``texts[i % len(texts)]``, vector ``base[i % len(base)]`` plus noise."""

    def __init__(self, texts: list[str], base: np.ndarray, noise: float, per_doc: int) -> None:
        self.texts, self.base, self.noise, self.per_doc = texts, base, noise, per_doc

    def vectors(self, start: int, stop: int) -> np.ndarray:
        rng = np.random.default_rng(start)
        v = self.base[np.arange(start, stop) % len(self.base)]
        v = v + rng.normal(0, self.noise, v.shape).astype(np.float32)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def document(self, number: int, tag: str = "") -> tuple[Document, list[Chunk], np.ndarray]:
        first = number * self.per_doc
        pieces = [self.texts[i % len(self.texts)] for i in range(first, first + self.per_doc)]
        text = "\n".join(pieces)
        source = f"/scale{tag}/doc{number:07d}.txt"
        chunks, at = [], 0
        for piece in pieces:
            chunks.append(Chunk(0, source, at, at + len(piece), piece))
            at += len(piece) + 1
        doc = Document(source=source, text=text, sha256=hashlib.sha256(text.encode()).hexdigest(), kind="txt")
        return doc, chunks, self.vectors(first, first + self.per_doc)


class Exact:
    """The exact top ``k`` chunk ids of each query over every vector it was shown."""

    def __init__(self, queries: np.ndarray, k: int = 10) -> None:
        self.queries, self.k = queries, k
        self.scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        self.ids = np.zeros((len(queries), 0), dtype=np.int64)

    def update(self, ids: list[int], vectors: np.ndarray) -> None:
        scores = np.concatenate([self.scores, self.queries @ vectors.T], axis=1)
        ids = np.concatenate([self.ids, np.tile(np.asarray(ids, dtype=np.int64), (len(self.queries), 1))], axis=1)
        keep = np.argsort(-scores, axis=1, kind="stable")[:, :self.k]
        self.scores, self.ids = np.take_along_axis(scores, keep, 1), np.take_along_axis(ids, keep, 1)


def build(store: FolderStore, corpus: Corpus, n_docs: int, batch_docs: int, exact: Exact) -> list[dict]:
    """Commit ``n_docs`` documents in batches of ``batch_docs``; returns each commit's time and
    whether it merged."""
    manifest = {"model": MODEL, "dimension": corpus.base.shape[1]}
    commits = []
    for start in range(0, n_docs, batch_docs):
        ids, vectors = [], []
        before = {s["name"] for s in store.segments()}
        t = time.perf_counter()
        with store.writer(manifest) as w:
            for number in range(start, min(n_docs, start + batch_docs)):
                doc, chunks, vecs = corpus.document(number)
                ids += w.add(doc, chunks, vecs)
                vectors.append(vecs)
        commits.append({"chunks": store.count(), "s": time.perf_counter() - t,
                        "merged": any(s["name"].endswith("-m") and s["name"] not in before for s in store.segments())})
        exact.update(ids, np.concatenate(vectors))
        print(f"  {store.count():,} chunks, {len(store.segments())} segments", file=sys.stderr, flush=True)
    return commits


def updates(store: FolderStore, corpus: Corpus, n_docs: int, repeat: int, exact: Exact) -> dict:
    manifest = {"model": MODEL, "dimension": corpus.base.shape[1]}
    adds, removes = [], []
    for r in range(repeat):
        doc, chunks, vecs = corpus.document(n_docs + r, tag="-added")
        t = time.perf_counter()
        with store.writer(manifest) as w:
            ids = w.add(doc, chunks, vecs)
        adds.append(time.perf_counter() - t)
        exact.update(ids, vecs)
        t = time.perf_counter()
        with store.writer(manifest) as w:
            w.remove(f"/scale/doc{r * 7:07d}.txt")
        removes.append(time.perf_counter() - t)
    return {"add_file_s": {"median": statistics.median(adds), "max": max(adds)},
            "remove_file_s": {"median": statistics.median(removes), "max": max(removes)}}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def reader(location: str, queries_file: str, cold: bool = False, passes: int = 1) -> dict:
    """Run in a fresh process: open the store, query it, report latencies, recall and memory.

    ``cold``: drop the store's files from the page cache first (see the module docstring).
    ``passes``: run the queries this many times; ``later_passes`` has each further pass's p50
    and p95 (the first pass also pays for paging the store in)."""
    result: dict = {}
    if cold:
        files = sorted(p for p in Path(location).rglob("*") if p.is_file())
        vector_files = [p for p in files if p.name == "vectors.faiss"]
        result["cold"] = {"disk_read_mb": sum(p.stat().st_size for p in vector_files) / 2**20,
                          "disk_read_mb_s": read_bandwidth(vector_files)}
        evict(files)
        result["cold"]["cached_mb"] = cached_bytes(files) / 2**20
    read_before = disk_read_bytes()
    t = time.perf_counter()
    store = FolderStore.open(location)
    count = store.count()
    opened = time.perf_counter() - t
    result["open_read_mb"] = (disk_read_bytes() - read_before) / 2**20
    result["rss_after_open_mb"] = rss_mb()
    saved = np.load(queries_file, allow_pickle=False)
    qvecs, exact, texts = saved["vectors"], saved["exact"], saved["texts"].tolist()
    removed = set(saved["removed"].tolist())
    dense, recalls = [], []
    for q, truth in zip(qvecs, exact):
        t = time.perf_counter()
        hits = store.search_dense(q, 10)
        dense.append(time.perf_counter() - t)
        live_truth = [c for c in truth.tolist() if c not in removed]
        found = {c for c, _ in hits}
        assert not found & removed, "a removed chunk was returned"
        recalls.append(len(found & set(live_truth)) / max(1, len(live_truth)))
    bm25 = []
    t = time.perf_counter()
    store.search_terms(texts[0], 10)   # the first query also sums the live lengths, once per generation
    first_bm25 = time.perf_counter() - t
    for text in texts:
        t = time.perf_counter()
        store.search_terms(text, 10)
        bm25.append(time.perf_counter() - t)
    result.update({"chunks": count, "segments": store.segments(), "open_s": opened,
                   "first_dense_ms": dense[0] * 1000, "first_bm25_ms": first_bm25 * 1000,
                   "dense_ms": {"p50": percentile(dense[1:], 50), "p95": percentile(dense[1:], 95)},
                   "recall_at_10": float(np.mean(recalls)),
                   "bm25_ms": {"p50": percentile(bm25, 50), "p95": percentile(bm25, 95)},
                   "rss_after_queries_mb": rss_mb(), "reader_peak_rss_mb": peak_rss_mb()})
    result["later_passes"] = [again(store, qvecs, texts) for _ in range(passes - 1)]
    return result


def again(store: FolderStore, qvecs: np.ndarray, texts: list[str]) -> dict:
    """Dense and BM25 p50 and p95 of one more pass over the queries."""
    dense, bm25 = [], []
    for q in qvecs:
        t = time.perf_counter()
        store.search_dense(q, 10)
        dense.append(time.perf_counter() - t)
    for text in texts:
        t = time.perf_counter()
        store.search_terms(text, 10)
        bm25.append(time.perf_counter() - t)
    return {"dense_ms": {"p50": percentile(dense, 50), "p95": percentile(dense, 95)},
            "bm25_ms": {"p50": percentile(bm25, 50), "p95": percentile(bm25, 95)}}


def evict(files: list[Path]) -> None:
    """Drop ``files`` from the page cache (their clean pages; nothing here writes them)."""
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cached_bytes(files: list[Path]) -> int:
    """Bytes of ``files`` now in the page cache (``mincore`` over a read-only map of each)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    page, total = mmap.PAGESIZE, 0
    for path in files:
        size = path.stat().st_size
        if not size:
            continue
        with open(path, "rb") as fh:
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fh.fileno(), 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), f"mmap {path}")
        try:
            pages = ctypes.create_string_buffer((size + page - 1) // page)
            if libc.mincore(addr, size, pages) != 0:
                raise OSError(ctypes.get_errno(), f"mincore {path}")
            total += sum(b & 1 for b in pages.raw) * page
        finally:
            libc.munmap(addr, size)
    return min(total, sum(p.stat().st_size for p in files))


def read_bandwidth(files: list[Path]) -> float:
    """MiB/s reading ``files`` whole from disk, one after another in 8 MiB reads (dropped from
    the cache before and after)."""
    evict(files)
    t, n = time.perf_counter(), 0
    for path in files:
        with open(path, "rb", buffering=0) as fh:
            while block := fh.read(8 << 20):
                n += len(block)
    seconds = time.perf_counter() - t
    evict(files)
    return n / 2**20 / seconds


def disk_read_bytes() -> int:
    """Bytes this process has caused to be read from storage (``/proc/self/io``; 0 where missing)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb() -> dict[str, float]:
    """This process's resident memory now, MiB: ``total`` (VmRSS), ``private`` (RssAnon: its own
    pages) and ``file`` (RssFile: pages of mapped files it touched, the store's included, which
    are shared page cache the system may drop and read again)."""
    keys = {"VmRSS:": "total", "RssAnon:": "private", "RssFile:": "file"}
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(maxsplit=1)[0] if line else ""
        if key in keys:
            out[keys[key]] = int(line.split()[1]) / 1024
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM (reset by exec, unlike getrusage's ru_maxrss,
    which a child started by exec inherits from its parent), else getrusage."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=1_000_000, help="chunks in the store (default 1,000,000)")
    parser.add_argument("--out", type=Path, help="write the JSON here too")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                        help="the shared data sets (default ../shared/data beside the repository)")
    parser.add_argument("--sample", type=int, default=3000, help="paragraphs embedded for the vectors (3000)")
    parser.add_argument("--noise", type=float, default=0.02, help="gaussian noise per vector component (0.02)")
    parser.add_argument("--per-doc", type=int, default=5, help="chunks per document (5)")
    parser.add_argument("--batch", type=int, default=20_000, help="chunks per build commit (20,000)")
    parser.add_argument("--queries", type=int, default=200, help="queries timed (200)")
    parser.add_argument("--repeat", type=int, default=5, help="single-file adds and removes timed (5)")
    parser.add_argument("--hnsw-threshold", type=int, default=None,
                        help=f"segments above this many vectors use HNSW (default {vector_rules.HNSW_THRESHOLD:,})")
    parser.add_argument("--work", type=Path, help="where the store is built (default: a temporary folder, removed)")
    parser.add_argument("--reader", nargs=2, metavar=("INDEX", "QUERIES"),
                        help="only open and query a store built before (--work keeps INDEX and QUERIES)")
    parser.add_argument("--cold", action="store_true",
                        help="with --reader: drop the store's files from the page cache first")
    parser.add_argument("--passes", type=int, default=1,
                        help="with --reader: run the queries this many times (1)")
    args = parser.parse_args(argv)
    if args.hnsw_threshold is not None:
        vector_rules.HNSW_THRESHOLD = args.hnsw_threshold
    if args.reader:
        print(json.dumps(reader(*args.reader, cold=args.cold, passes=args.passes)))
        return {}

    from index.embedding import shared_embedder

    texts = paragraphs(args.data)
    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.choice(len(texts), min(args.sample, len(texts)), replace=False)]
    embedder = shared_embedder()
    t = time.perf_counter()
    base = embedder.encode(sample)
    embed_s = time.perf_counter() - t
    qtexts = questions(args.data, args.queries)
    qvecs = embedder.encode(qtexts)
    corpus = Corpus(texts, base, args.noise, args.per_doc)
    n_docs = max(1, args.chunks // args.per_doc)
    work = args.work or Path(tempfile.mkdtemp(prefix="scale-"))
    location = work / "index"
    shutil.rmtree(location, ignore_errors=True)
    store = FolderStore.open(location, create=True)
    t = time.perf_counter()
    exact = Exact(qvecs)
    commits = build(store, corpus, n_docs, max(1, args.batch // args.per_doc), exact)
    build_s = time.perf_counter() - t
    result = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                           if k not in ("reader", "cold", "passes")},
              "hnsw_threshold": vector_rules.HNSW_THRESHOLD, "paragraphs": len(texts),
              "sample_embed_s": embed_s, "build_s": build_s, "build_commits": commits}
    removed = {c.id for r in range(args.repeat) for c in store.chunks_of(f"/scale/doc{r * 7:07d}.txt")}
    result.update(updates(store, corpus, n_docs, args.repeat, exact))
    queries_file = work / "queries.npz"
    np.savez(queries_file, vectors=qvecs, exact=exact.ids, texts=np.array(qtexts), removed=np.array(sorted(removed)))
    command = [sys.executable, __file__, "--reader", str(location), str(queries_file)]
    if args.hnsw_threshold is not None:
        command += ["--hnsw-threshold", str(args.hnsw_threshold)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result.update(json.loads(done.stdout))
    result["builder_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["disk_mb"] = sum(p.stat().st_size for p in location.rglob("*") if p.is_file()) / 2**20
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
