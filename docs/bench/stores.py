"""Ingest and query latency of the folder index and the Milvus Lite store on the same vectors.

    python docs/bench/stores.py --scifact /path/to/beir-scifact --docs 1000 --queries 100

Every chunk is embedded once up front; both stores are then given the same vectors, so
the figures measure the stores, not the model. Both sides go through ``Index``
(``Index.add_documents``: chunking and committing every 200 documents), one opened on a
folder and one on ``milvus:FILE.db``. A query is what retrieval asks of a store: dense top
30, BM25 top 30 and the texts of the fused top 5.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from index import Index, IndexSettings  # noqa: E402
from index.chunking import chunk_document  # noqa: E402
from index.embedding import shared_embedder  # noqa: E402
from index.loaders import load_document  # noqa: E402
from index.text import terms  # noqa: E402
from index.types import Document  # noqa: E402
from qa.retrieval import reciprocal_rank_fusion  # noqa: E402


class Precomputed:
    """An embedder that answers from vectors computed before the timing starts."""

    def __init__(self, embedder, texts: list[str], cache: Path | None = None) -> None:
        self.name, self.dimension, self.backend = embedder.name, embedder.dimension, embedder.backend
        unique = sorted(set(texts))
        if cache is not None and cache.exists():
            saved = np.load(cache)
            self._vectors = dict(zip(saved["texts"].tolist(), saved["vectors"]))
            unique = [t for t in unique if t not in self._vectors]
        else:
            self._vectors = {}
        if unique:
            self._vectors.update(zip(unique, embedder.encode(unique)))
            if cache is not None:
                texts_all = sorted(self._vectors)
                np.savez(cache, texts=np.array(texts_all), vectors=np.stack([self._vectors[t] for t in texts_all]))

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32)


def scifact(folder: Path, n_docs: int, n_queries: int) -> tuple[list[Document], list[str]]:
    docs = []
    with open(folder / "corpus.jsonl") as fh:
        for line in fh:
            row = json.loads(line)
            text = f"{row['title']}\n\n{row['text']}"
            docs.append(Document(source=f"scifact/{row['_id']}", text=text, kind="txt",
                                 sha256=hashlib.sha256(text.encode()).hexdigest()))
            if len(docs) == n_docs:
                break
    with open(folder / "queries.jsonl") as fh:
        queries = [json.loads(line)["text"] for line in fh][:n_queries]
    return docs, queries


def seeds() -> tuple[list[Document], list[str]]:
    docs = [load_document(str(p)) for p in sorted((REPO / "seeds").iterdir()) if p.is_file()]
    lines = (REPO / "tests/data/seed_questions.jsonl").read_text().splitlines()
    return docs, [json.loads(line)["question"] for line in lines]


def query_times(store, questions: list[str], vectors: np.ndarray) -> list[float]:
    out = []
    for question, vector in zip(questions, vectors):
        t = time.perf_counter()
        dense = store.search_dense(vector, 30)
        bm25 = store.search_terms(question, 30)
        fused = reciprocal_rank_fusion([[i for i, _ in dense], [i for i, _ in bm25]])[:5]
        store.chunks([i for i, _ in fused])
        out.append(time.perf_counter() - t)
    return out


def df_times(store, questions: list[str]) -> list[float]:
    out = []
    for term in sorted({t for q in questions for t in terms(q)})[:50]:
        t = time.perf_counter()
        store.document_frequency(term)
        out.append(time.perf_counter() - t)
    return out


def ms(values: list[float], q: float) -> str:
    return f"{1000 * float(np.quantile(values, q)):.1f}"


def bench(name: str, docs: list[Document], questions: list[str], embedder, settings: IndexSettings, work: Path,
          cache: Path | None) -> list[str]:
    chunk_texts = [c.text for d in docs for c in chunk_document(d, settings.chunk_size, settings.chunk_overlap)]
    t = time.perf_counter()
    fake = Precomputed(embedder, chunk_texts, cache)
    embed_s = time.perf_counter() - t
    qvectors = embedder.encode(questions)
    rows = []

    t = time.perf_counter()
    index = Index.open(work / f"{name}-folder", create=True, settings=settings, embedder=fake)
    index.add_documents(docs)
    folder_ingest = time.perf_counter() - t
    folder_q = query_times(index, questions, qvectors)
    folder_df = df_times(index, questions)
    rows.append(f"| {name} | folder | {len(docs)} | {index.count()} | {folder_ingest:.2f} | "
                f"{ms(folder_q, .5)} | {ms(folder_q, .95)} | {1000 * statistics.mean(folder_df):.2f} |")

    t = time.perf_counter()
    milvus = Index.open(f"milvus:{work / (name + '.db')}", create=True, settings=settings, embedder=fake)
    milvus.add_documents(docs)
    milvus_ingest = time.perf_counter() - t
    query_times(milvus, questions[:3], qvectors[:3])       # the first searches build Milvus Lite's indexes
    milvus_q = query_times(milvus, questions, qvectors)
    milvus_df = df_times(milvus, questions)
    rows.append(f"| {name} | Milvus Lite | {len(docs)} | {milvus.count()} | {milvus_ingest:.2f} | "
                f"{ms(milvus_q, .5)} | {ms(milvus_q, .95)} | {1000 * statistics.mean(milvus_df):.2f} |")
    milvus.close()
    print(f"{name}: embedding {len(chunk_texts)} chunks took {embed_s:.1f} s (not in the table)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scifact", type=Path, required=True, help="folder with BEIR SciFact corpus.jsonl and queries.jsonl")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--cache", type=Path, help="an .npz file keeping the chunk vectors between runs")
    args = parser.parse_args()
    embedder = shared_embedder()
    settings = IndexSettings(show_progress=False)
    header = ["| data | store | documents | chunks | ingest s | query p50 ms | query p95 ms | df ms (uncached) |",
              "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench("seeds", *seeds(), embedder, settings, Path(tmp), args.cache)
        rows += bench(f"SciFact {args.docs}", *scifact(args.scifact, args.docs, args.queries), embedder, settings,
                      Path(tmp), args.cache)
    print("\n".join(header + rows))


if __name__ == "__main__":
    main()
