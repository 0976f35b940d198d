"""End to end: python -m qa.eval on the seed test set (open and closed), a tiny SQuAD file and a tiny BEIR set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from qa.eval.__main__ import main
from qa.eval.report import write_report
from qa.eval.beir import evaluate_beir
from qa.eval.run import evaluate, sync_index

DATA = Path(__file__).resolve().parent / "data"
SEED_SET = DATA / "seed_questions.jsonl"


def _figures(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())["figures"]


def _check_sane(fig: dict) -> None:
    for key in ("exact_match", "f1", "sentence_accuracy", "citation_accuracy", "always_answer_f1", "best_f1"):
        assert 0.0 <= fig[key] <= 100.0, key
    assert fig["exact_match"] <= fig["f1"]
    assert fig["best_f1"] >= fig["f1"] - 1e-9  # the best threshold is at least as good as the default
    assert fig["latency_p50_ms"] > 0 and fig["latency_p95_ms"] >= fig["latency_p50_ms"]
    assert fig["questions_per_second"] > 0


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_cli_on_the_seed_set_writes_every_report_file(mode, tmp_path, embedder, capsys):
    out = tmp_path / "out"
    argv = [str(SEED_SET), "--reader", "sentence", "--limit", "6", "--seed", "1", "--quiet",
            "--out", str(out), "--index-cache", str(tmp_path / "index")]
    assert main(argv + (["--closed"] if mode == "closed" else [])) == 0
    table = capsys.readouterr().out
    assert "EM" in table and "sentence accuracy" in table
    for name in ("report.json", "questions.csv", "f1_vs_threshold.png", "latency.png"):
        assert (out / name).stat().st_size > 0, name
    fig = _figures(out)
    assert fig["questions"] == 6 and fig["threshold"] == 0.5
    _check_sane(fig)
    if mode == "open":
        assert fig["recall@1"] == 100.0  # one document: its passage is always the first retrieved
    else:
        assert "recall@1" not in fig
    rows = list(csv.DictReader(open(out / "questions.csv", encoding="utf-8")))
    assert len(rows) == 6 and {"prediction", "answers", "em", "f1", "score", "latency_ms"} <= set(rows[0])


def test_open_mode_reuses_the_cached_index(tmp_path, embedder):
    docs = {"a": "Mount Etna is in Sicily.", "b": "Vesuvius destroyed Pompeii."}
    first = sync_index(tmp_path / "idx", docs, embedder=embedder, progress=False).status()["generation"]
    again = sync_index(tmp_path / "idx", docs, embedder=embedder, progress=False)
    assert again.status()["generation"] == first  # nothing re-embedded
    changed = sync_index(tmp_path / "idx", {"a": docs["a"]}, embedder=embedder, progress=False)
    assert [d.source for d in changed.documents()] == ["a"]  # the index holds exactly the test set's documents


def test_closed_mode_on_squad_v2_scores_abstentions(tmp_path, embedder):
    report = evaluate(DATA / "squad_tiny.json", mode="closed", reader="sentence", progress=False, embedder=embedder)
    fig = report.figures
    assert (fig["questions"], fig["answerable"], fig["unanswerable"]) == (7, 5, 2)
    for r in report.results:
        if not r.answerable:
            assert r.sentence_correct is None and r.em == float(not r.answered)
    # the curve starts at threshold 0 (never abstaining) and ends at 1.0
    assert report.curve[0]["threshold"] == 0.0 and report.curve[-1]["threshold"] == 1.0
    assert report.curve[0]["f1"] == pytest.approx(fig["always_answer_f1"], abs=0.01)
    assert report.curve[0]["no_ans_accuracy"] == 0.0  # a reader that always answers gets every NoAns wrong
    written = write_report(report, tmp_path / "r")
    assert {p.name for p in written} == {"report.json", "questions.csv", "f1_vs_threshold.png", "latency.png"}


def test_beir_retrieval_reports_dense_bm25_and_hybrid(tmp_path, embedder):
    root = tmp_path / "tinybeir"
    (root / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Cats", "text": "Cats are small domesticated carnivorous mammals that purr."},
        {"_id": "d2", "title": "Dogs", "text": "Dogs are loyal animals descended from wolves."},
        {"_id": "d3", "title": "Volcanoes", "text": "A volcano erupts lava and ash from the crust of the earth."},
    ]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n")
    queries = [{"_id": "1", "text": "volcano lava ash"}, {"_id": "2", "text": "dogs descended from wolves"},
               {"_id": "3", "text": "a query nobody judged"}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td3\t1\n2\td2\t1\n")
    report = evaluate_beir(root, index_cache=str(tmp_path / "idx"), progress=False, embedder=embedder)
    assert report.figures["queries"] == 2  # unjudged queries are left out, as in BEIR
    for method in ("dense", "bm25", "hybrid"):
        assert report.figures[method]["ndcg@10"] == 1.0, method
        assert report.figures[method]["recall@100"] == 1.0
    written = write_report(report, tmp_path / "r")
    assert {p.name for p in written} == {"report.json", "queries.csv", "ndcg.png"}


def test_cli_refuses_missing_input(capsys):
    assert main([]) == 2
    assert "--beir" in capsys.readouterr().err
    assert main(["no/such/set.jsonl"]) == 2
    assert "no test set at" in capsys.readouterr().err


def test_options_work_before_and_after_the_test_set(tmp_path, monkeypatch, embedder, capsys):
    """`python -m qa.eval SET --limit 3 --quiet` and `python -m qa.eval --limit 3 --quiet SET` run the same."""
    monkeypatch.chdir(tmp_path)  # the default report and index-cache folders go under eval-output/ here
    reports = []
    for argv in ([str(SEED_SET), "--limit", "3", "--quiet"], ["--limit", "3", "--quiet", str(SEED_SET)]):
        assert main(argv) == 0
        assert "report: eval-output/seed_questions-open-n3-s0/" in capsys.readouterr().out
        reports.append(json.loads((tmp_path / "eval-output" / "seed_questions-open-n3-s0" / "report.json").read_text()))
    first, second = (r["figures"] for r in reports)
    assert first["questions"] == second["questions"] == 3
    for key in ("exact_match", "f1", "best_f1", "recall@1", "recall@5", "citation_accuracy"):
        assert first[key] == second[key], key


def test_open_mode_ranks_the_gold_passage_among_the_passages_read(tmp_path, embedder):
    report = evaluate(SEED_SET, reader="sentence", limit=6, seed=1, progress=False, embedder=embedder,
                      index_cache=str(tmp_path / "index"), top_k=3)
    fig = report.figures
    assert {k for k in fig if k.startswith("recall@")} == {"recall@1", "recall@3"}  # no k beyond the passages read
    assert "mrr@3" in fig and fig["recall@1"] <= fig["recall@3"]
    for r in report.results:
        assert r.gold_rank is None or 1 <= r.gold_rank <= 3
