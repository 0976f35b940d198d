"""Retrieval alone over a BEIR set: dense, BM25 and hybrid (RRF) side by side, as BEIR scores them."""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import mean
from typing import Sequence

from index import Index
from qa.eval import metrics
from qa.eval.datasets import BeirSet, load_beir
from qa.eval.run import EvalConfig, progress_bar, default_index_cache, sync_index
from qa.retrieval import retrieve


@dataclass(frozen=True)
class BeirReport:
    """nDCG@10 / recall per retrieval method over a BEIR set, and per-query figures."""

    name: str
    dataset: str
    config: dict
    figures: dict  # method -> {ndcg@10, recall@10, recall@100, latency...}
    per_query: tuple[dict, ...] = field(repr=False)
    started: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "dataset": self.dataset, "config": self.config, "figures": self.figures,
                "started": self.started}


def beir_document_text(title: str, text: str) -> str:
    """Title and abstract as one text (BEIR joins them with a space; a full stop keeps the title a sentence)."""
    title, text = title.strip(), text.strip()
    if not title:
        return text
    return f"{title}{'' if title[-1] in '.?!' else '.'} {text}"


def evaluate_beir(folder: str | Path | BeirSet, config: EvalConfig | None = None, embedder=None, **overrides) -> BeirReport:
    """Retrieval only over a BEIR set: dense, BM25 and hybrid (RRF) side by side.

    Documents are chunked and indexed like any other; a document's rank is that of its best chunk.
    """
    config = replace(config or EvalConfig(), **overrides)
    beir = folder if isinstance(folder, BeirSet) else load_beir(folder)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    prefix = f"{beir.name}:"
    documents = {prefix + d: beir_document_text(t, x) for d, (t, x) in beir.corpus.items() if (t or x).strip()}
    setup_began = time.perf_counter()
    if config.index:
        index = Index.open(config.index, embedder=embedder)
    else:
        cache = Path(config.index_cache) if config.index_cache else default_index_cache(documents, beir.name, embedder=embedder)
        index = sync_index(cache, documents, embedder=embedder, progress=config.progress)
    chunk_source: dict[int, str] = {}
    for info in index.documents():
        for c in index.chunks_of(info.source):
            chunk_source[c.id] = info.source[len(prefix):] if info.source.startswith(prefix) else info.source
    setup_seconds = time.perf_counter() - setup_began
    query_ids = list(beir.queries)
    if config.limit:
        query_ids = sorted(random.Random(config.seed).sample(query_ids, min(config.limit, len(query_ids))), key=query_ids.index)
    k = config.beir_candidates
    settings = config.qa_settings()
    methods = ("dense", "bm25", "hybrid")
    per_query: list[dict] = []
    latency: dict[str, list[float]] = {m: [] for m in methods}
    for qid in progress_bar(query_ids, config.progress, f"{beir.name} retrieval"):
        text = beir.queries[qid]
        rankings: dict[str, list[str]] = {}
        t0 = time.perf_counter()
        vector = index.embed([text])[0]
        t_embed = time.perf_counter() - t0
        t0 = time.perf_counter()
        dense = index.search_dense(vector, k)
        latency["dense"].append((t_embed + time.perf_counter() - t0) * 1000)
        rankings["dense"] = best_chunk_ranking([chunk_source[c] for c, _ in dense if c in chunk_source])
        t0 = time.perf_counter()
        terms = index.search_terms(text, k)
        latency["bm25"].append((time.perf_counter() - t0) * 1000)
        rankings["bm25"] = best_chunk_ranking([chunk_source[c] for c, _ in terms if c in chunk_source])
        t0 = time.perf_counter()
        passages = retrieve(index, text, top_k=k, retrieve_k=k, rrf_k=settings.rrf_k, question_vector=vector)
        latency["hybrid"].append((t_embed + time.perf_counter() - t0) * 1000)
        rankings["hybrid"] = best_chunk_ranking([chunk_source.get(p.chunk_id, p.source) for p in passages])
        row: dict = {"query_id": qid, "query": text, "relevant": " ".join(sorted(beir.qrels[qid]))}
        for m in methods:
            row[f"{m}_ndcg@10"] = metrics.ndcg_at_k(rankings[m], beir.qrels[qid], 10)
            row[f"{m}_recall@10"] = metrics.recall_at_k_docs(rankings[m], beir.qrels[qid], 10)
            row[f"{m}_recall@100"] = metrics.recall_at_k_docs(rankings[m], beir.qrels[qid], 100)
            row[f"{m}_top10"] = " ".join(rankings[m][:10])
        per_query.append(row)
    figures: dict = {"queries": len(per_query), "documents": len(documents), "chunks": index.count(),
                     "setup_seconds": round(setup_seconds, 1)}
    for m in methods:
        figures[m] = {
            "ndcg@10": round(mean(r[f"{m}_ndcg@10"] for r in per_query), 4) if per_query else None,
            "recall@10": round(mean(r[f"{m}_recall@10"] for r in per_query), 4) if per_query else None,
            "recall@100": round(mean(r[f"{m}_recall@100"] for r in per_query), 4) if per_query else None,
            "latency_p50_ms": round(metrics.percentile(latency[m], 50), 1),
            "latency_p95_ms": round(metrics.percentile(latency[m], 95), 1),
        }
    name = f"{beir.name}-retrieval" + (f"-n{config.limit}-s{config.seed}" if config.limit else "")
    return BeirReport(name=name, dataset=str(folder if not isinstance(folder, BeirSet) else beir.name),
                      config=asdict(config), figures=figures, per_query=tuple(per_query), started=started)


def best_chunk_ranking(chunk_sources: Sequence[str]) -> list[str]:
    """Documents ranked by their best chunk: first appearance in a best-first chunk list.

    >>> best_chunk_ranking(["a", "b", "a", "c"])
    ['a', 'b', 'c']
    """
    return list(dict.fromkeys(chunk_sources))
