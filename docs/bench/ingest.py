"""Ingestion speed against the LangChain baseline, on the first N BEIR SciFact abstracts.

Each abstract becomes one .txt file in a temporary folder. Then, alternating, each side runs as a
fresh process (model load included) and is timed from process start to exit:

- baseline: ``langchain_ingest.py FOLDER`` (RecursiveCharacterTextSplitter 1000/100 ->
  sentence-transformers MiniLM, batch 32 -> FAISS flat);
- ours: ``Index.open(DIR, create=True).build(FOLDER)`` (loaders, chunking 800/100, the embedder,
  FAISS, SQLite catalog, BM25, the saved store).

``--profile`` adds a breakdown inside one process per configuration (imports, model load, reading,
chunking, embedding, FAISS) for each embedding backend and chunk size, run through the same
embedder and FAISS flat index as the build, without the catalog and BM25. ``--calls`` times the
embedding of the chunks alone for given texts a model call and calls side by side.

Usage:
    python docs/bench/ingest.py [--docs 1000] [--pairs 3] [--profile]
    python docs/bench/ingest.py --skip-compare --calls onnx:1:2 onnx:4:2 onnx:1:1 onnx-int8:1:2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path("/work/shared/data/beir-scifact/corpus.jsonl")
BASELINE = Path("/work/shared/bench/langchain_ingest.py")

OURS = """
import dataclasses, sys
from index import Index, IndexSettings
kw = {}
if sys.argv[3] != "default":
    if "embedder" not in {f.name for f in dataclasses.fields(IndexSettings)}:
        sys.exit("IndexSettings has no embedder setting here; run with --embedder default")
    kw["embedder"] = sys.argv[3]
report = Index.open(sys.argv[1], IndexSettings(**kw), create=True).build(sys.argv[2], quiet=True)
print(len(report.indexed) if hasattr(report, "indexed") else report)
"""

PROFILE = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
import faiss, numpy as np
from index.chunking import chunk_document
from index.embedding import Embedder
from index.loaders import load_document
t_import = time.perf_counter()
emb = Embedder(backend=sys.argv[2])
t_load = time.perf_counter()
docs = [load_document(str(p)) for p in sorted(Path(sys.argv[1]).glob("*.txt"))]
t_read = time.perf_counter()
size, overlap = int(sys.argv[3]), int(sys.argv[4])
texts = [c.text for d in docs for c in chunk_document(d, size, overlap)]
t_chunk = time.perf_counter()
vectors = emb.encode(texts)
t_embed = time.perf_counter()
index = faiss.IndexFlatIP(vectors.shape[1]); index.add(vectors)
t_faiss = time.perf_counter()
tokens = None
if emb.backend != "torch":
    tokens = sum(len(e.ids) for e in emb._impl.prepare(list(dict.fromkeys(texts))))
print(json.dumps({"backend": emb.backend, "chunk_size": size, "chunks": len(texts), "tokens": tokens,
                  "imports": t_import - t0, "model_load": t_load - t_import, "read": t_read - t_load,
                  "chunk": t_chunk - t_read, "embed": t_embed - t_chunk, "faiss": t_faiss - t_embed,
                  "in_process": t_faiss - t0}))
"""

EMBED_ALONE = """
import json, sys, time
from pathlib import Path
from index.chunking import chunk_document
from index.embedding import Embedder
from index.loaders import load_document
texts = [c.text for p in sorted(Path(sys.argv[1]).glob("*.txt")) for c in chunk_document(load_document(str(p)), 800, 100)]
emb = Embedder(backend=sys.argv[2], batch_size=int(sys.argv[3]), threads=int(sys.argv[4]))
emb.encode(["warm up"])
t0 = time.perf_counter()
emb.encode(texts)
print(json.dumps({"chunks": len(texts), "embed": time.perf_counter() - t0}))
"""


@dataclasses.dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    stdout: str


def run_measured(argv: list[str]) -> Run:
    """Run ``argv`` to completion: its wall time from start to exit and its own peak RSS.

    ``os.wait4`` gives the child's rusage alone (``getrusage(RUSAGE_CHILDREN)`` keeps the largest
    child so far, which would mix the two sides).
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])} failed ({proc.returncode}):\n{err.read()[-2000:]}")
        return Run(seconds, usage.ru_maxrss / 1024, out.read().strip())


def write_corpus(folder: Path, n: int) -> int:
    """The first ``n`` SciFact abstracts as ``<id>.txt`` (title, blank line, abstract); returns characters."""
    chars = 0
    with CORPUS.open(encoding="utf-8") as f:
        for _, line in zip(range(n), f):
            doc = json.loads(line)
            text = f"{doc['title']}\n\n{doc['text']}\n" if doc.get("title") else doc["text"] + "\n"
            (folder / f"{doc['_id']}.txt").write_text(text, encoding="utf-8")
            chars += len(text)
    return chars


def compare(folder: Path, pairs: int, embedder: str) -> list[dict]:
    rows = []
    for i in range(pairs):
        base = run_measured([sys.executable, str(BASELINE), str(folder)])
        with tempfile.TemporaryDirectory() as ix:
            ours = run_measured([sys.executable, "-c", OURS, str(Path(ix) / "index"), str(folder), embedder])
        row = {"pair": i + 1, "baseline_s": base.seconds, "baseline_self_s": float(base.stdout.split()[0]),
               "baseline_chunks": int(base.stdout.split()[1]), "baseline_rss_mb": base.peak_rss_mb,
               "ours_s": ours.seconds, "ours_rss_mb": ours.peak_rss_mb, "ratio": base.seconds / ours.seconds}
        rows.append(row)
        print(f"pair {i + 1}: baseline {base.seconds:6.1f} s ({row['baseline_chunks']} chunks, "
              f"{base.peak_rss_mb:.0f} MB)  ours {ours.seconds:6.1f} s ({ours.peak_rss_mb:.0f} MB)  "
              f"ratio {row['ratio']:.2f}x", flush=True)
    med_b = statistics.median(r["baseline_s"] for r in rows)
    med_o = statistics.median(r["ours_s"] for r in rows)
    print(f"median: baseline {med_b:.1f} s, ours {med_o:.1f} s, ratio of medians {med_b / med_o:.2f}x, "
          f"median ratio {statistics.median(r['ratio'] for r in rows):.2f}x")
    return rows


def profile(folder: Path, backends: list[str], sizes: list[tuple[int, int]]) -> list[dict]:
    rows = []
    for size, overlap in sizes:
        for backend in backends:
            run = run_measured([sys.executable, "-c", PROFILE, str(folder), backend, str(size), str(overlap)])
            row = json.loads(run.stdout.splitlines()[-1]) | {"process_s": run.seconds, "rss_mb": run.peak_rss_mb}
            rows.append(row)
            tps = f"{row['tokens'] / row['embed']:.0f} tokens/s" if row["tokens"] else ""
            print(f"{backend:9} {size}/{overlap}: {row['chunks']} chunks, process {run.seconds:5.1f} s = "
                  f"imports {row['imports']:.1f} + model {row['model_load']:.1f} + read {row['read']:.1f} + "
                  f"chunk {row['chunk']:.1f} + embed {row['embed']:.1f} + faiss {row['faiss']:.2f} "
                  f"(+ interpreter {run.seconds - row['in_process']:.1f}); {tps}", flush=True)
    return rows


def embed_alone(folder: Path, calls: list[str]) -> list[dict]:
    """The chunks embedded alone, per backend, texts a model call and calls side by side
    (``Embedder(backend=B, batch_size=N, threads=T).encode``), one process each."""
    rows = []
    for call in calls:
        backend, texts, threads = call.split(":")
        run = run_measured([sys.executable, "-c", EMBED_ALONE, str(folder), backend, texts, threads])
        row = json.loads(run.stdout.splitlines()[-1]) | {"backend": backend, "texts_a_call": int(texts),
                                                         "side_by_side": int(threads), "rss_mb": run.peak_rss_mb}
        rows.append(row)
        print(f"{backend:9} {texts} texts a call, {threads} side by side: {row['chunks']} chunks in "
              f"{row['embed']:.1f} s, peak {run.peak_rss_mb:.0f} MB", flush=True)
    return rows


def count_tokens(folder: Path) -> list[dict]:
    """Chunks and model tokens (after truncation at 256) per chunking: what the embedding computes on."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from tokenizers import Tokenizer

    sys.path.insert(0, str(REPO))
    from index.chunking import chunk_document
    from index.embedding import bundled_model_path
    from index.loaders import load_document

    tokenizer = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.no_padding()  # tokenizer.json pads every text to 128
    docs = [load_document(str(p)) for p in sorted(folder.glob("*.txt"))]
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=100)
    chunkings = {"ours 800/100": [c.text for d in docs for c in chunk_document(d, 800, 100)],
                 "ours 1000/100": [c.text for d in docs for c in chunk_document(d, 1000, 100)],
                 "baseline splitter 1000/100": [t for d in docs for t in splitter.split_text(d.text)]}
    rows = []
    for name, texts in chunkings.items():
        lengths = [len(e.ids) for e in tokenizer.encode_batch(texts)]
        rows.append({"chunking": name, "chunks": len(texts), "tokens": sum(lengths),
                     "truncated": sum(n >= 256 for n in lengths)})
        print(f"{name:27}: {len(texts)} chunks, {sum(lengths):,} tokens, {rows[-1]['truncated']} cut at 256", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1000, help="abstracts to ingest (default 1000)")
    parser.add_argument("--pairs", type=int, default=3, help="alternating baseline/ours pairs (default 3)")
    parser.add_argument("--embedder", default="default",
                        help="IndexSettings.embedder for our side (default: the Index's own default)")
    parser.add_argument("--profile", action="store_true", help="also break the time down per stage and backend")
    parser.add_argument("--tokens", action="store_true", help="also count chunks and tokens per chunking")
    parser.add_argument("--calls", nargs="+", metavar="BACKEND:TEXTS:SIDE_BY_SIDE", default=[],
                        help="also embed the chunks alone per backend, texts a model call and calls side by side, "
                             "e.g. onnx:1:2 onnx:4:1")
    parser.add_argument("--skip-compare", action="store_true", help="skip the baseline comparison (with --tokens, --calls or --profile)")
    parser.add_argument("--json", metavar="FILE", help="write every measurement to FILE")
    args = parser.parse_args(argv)
    if args.docs <= 0 or args.pairs <= 0:
        parser.error("--docs and --pairs must be greater than 0")
    for needed in (CORPUS, BASELINE):
        if not needed.exists():
            parser.error(f"{needed} is missing")
    results: dict = {"docs": args.docs, "cpus": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "scifact"
        folder.mkdir()
        results["characters"] = write_corpus(folder, args.docs)
        print(f"{args.docs} SciFact abstracts, {results['characters']:,} characters, "
              f"{results['cpus']} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
        if args.tokens:
            results["tokens"] = count_tokens(folder)
        if not args.skip_compare:
            results["compare"] = compare(folder, args.pairs, args.embedder)
        if args.calls:
            results["calls"] = embed_alone(folder, args.calls)
        if args.profile:
            results["profile"] = profile(folder, ["torch", "onnx", "onnx-int8"], [(800, 100), (1000, 100)])
        results["load_average_after"] = os.getloadavg()[0]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
