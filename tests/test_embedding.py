"""The embedder: both backends give the same vectors, in input order, without blocking each other's callers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from index.embedding import Embedder, bundled_model_path, resolve_backend
from index.onnx_model import exported_model, write_atomically
from tests.conftest import REPO_ROOT, SEED_FILE


def real_sentences() -> list[str]:
    """A few dozen real texts: seed-article sentences, SQuAD contexts, and two past 256 tokens."""
    article = SEED_FILE.read_text(encoding="utf-8")
    sentences = [s.strip() for s in article.replace("\n", " ").split(". ") if len(s.strip()) > 20][:30]
    squad = json.loads((REPO_ROOT / "tests" / "data" / "squad_tiny.json").read_text(encoding="utf-8"))
    contexts = [p["context"] for a in squad["data"] for p in a["paragraphs"]][:10]
    long_texts = [article[:4000], " ".join(contexts)]
    return sentences + contexts + long_texts + ["  spaces around  ", "Line\nbreaks\n", "x", ""]


@pytest.fixture(scope="module")
def torch_embedder():
    return Embedder(backend="torch")


@pytest.fixture(scope="module")
def onnx_embedder():
    return Embedder(backend="onnx")


def test_onnx_and_torch_give_the_same_vectors(onnx_embedder, torch_embedder):
    texts = real_sentences()
    assert len(onnx_embedder._impl.prepare(texts[-6:-4])[0].ids) == 256  # truncated as sentence-transformers does
    a, b = onnx_embedder.encode(texts), torch_embedder.encode(texts)
    assert a.shape == b.shape == (len(texts), 384)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.9999, f"text {int(cosines.argmin())} differs: cosine {cosines.min():.6f}"
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_int8_stays_close_to_fp32(onnx_embedder):
    texts = real_sentences()
    cosines = (Embedder(backend="onnx-int8").encode(texts) * onnx_embedder.encode(texts)).sum(axis=1)
    assert cosines.mean() > 0.99 and cosines.min() > 0.95


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_rows_follow_the_input_order_and_duplicates_match(backend, onnx_embedder, torch_embedder):
    embedder = onnx_embedder if backend == "onnx" else torch_embedder
    texts = real_sentences()[:12]
    mixed = [texts[5], texts[0], texts[11], texts[0], texts[3], texts[5], texts[5]]  # lengths out of order, repeats
    one_by_one = np.stack([embedder.encode([t])[0] for t in mixed])
    together = embedder.encode(mixed)
    assert np.allclose(together, one_by_one, atol=1e-4)
    assert np.array_equal(together[0], together[5]) and np.array_equal(together[1], together[3])


def test_batches_run_side_by_side_and_give_the_rows_of_one_at_a_time(monkeypatch):
    texts = real_sentences()
    alone, side_by_side = Embedder(backend="onnx", threads=1), Embedder(backend="onnx", threads=2)
    callers: set[int] = set()
    embed = side_by_side._impl.embed
    monkeypatch.setattr(side_by_side._impl, "embed", lambda items: (callers.add(threading.get_native_id()), embed(items))[1])
    together = side_by_side.encode(texts)
    assert len(callers) == 2 and threading.get_native_id() not in callers
    assert np.allclose(together, alone.encode(texts), atol=1e-6)
    # a question's single batch runs on the caller's own thread, never queued on the pool
    callers.clear()
    side_by_side.encode(["who measured the water quality?"])
    assert callers == {threading.get_native_id()}


def test_repeated_texts_are_embedded_once(onnx_embedder, monkeypatch):
    seen: list[str] = []
    prepare = onnx_embedder._impl.prepare
    monkeypatch.setattr(onnx_embedder._impl, "prepare", lambda texts: (seen.extend(texts), prepare(texts))[1])
    vectors = onnx_embedder.encode(["alpha beta", "gamma", "alpha beta", "gamma", "alpha beta"])
    assert sorted(seen) == ["alpha beta", "gamma"]
    assert vectors.shape == (5, 384)


def test_an_upload_is_tokenised_batch_by_batch(onnx_embedder, monkeypatch):
    # The tokenizer's thread pool is the process's: one call over a whole upload would keep a
    # question's tokenising waiting until it finished.
    sizes: list[int] = []
    prepare = onnx_embedder._impl.prepare
    monkeypatch.setattr(onnx_embedder._impl, "prepare", lambda texts: (sizes.append(len(texts)), prepare(texts))[1])
    texts = [f"Paragraph {i}: " + "the river basin report " * (i % 7 + 1) for i in range(100)]
    vectors = onnx_embedder.encode(texts)
    assert sum(sizes) == 100 and max(sizes) <= onnx_embedder.batch_size
    monkeypatch.undo()
    assert np.allclose(vectors[[0, 57, 99]], onnx_embedder.encode([texts[0], texts[57], texts[99]]), atol=1e-4)


def test_no_texts_give_an_empty_matrix(onnx_embedder):
    assert onnx_embedder.encode([]).shape == (0, 384)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_a_question_is_not_queued_behind_a_large_upload(backend, onnx_embedder, torch_embedder):
    embedder = onnx_embedder if backend == "onnx" else torch_embedder
    upload = [f"Paragraph {i} of a long report on water quality in the river basin." for i in range(600)]
    finished: list[str] = []
    started = threading.Event()
    embed = embedder._impl.embed

    def embed_and_signal(items):
        started.set()
        return embed(items)

    def ingest():
        embedder.encode(upload)
        finished.append("upload")

    embedder._impl.embed = embed_and_signal
    try:
        worker = threading.Thread(target=ingest)
        worker.start()
        assert started.wait(timeout=600)
        vector = embedder.encode(["who measured the water quality?"])
        finished.append("question")
        worker.join()
    finally:
        del embedder._impl.embed
    assert finished == ["question", "upload"]
    assert vector.shape == (1, 384)


def test_export_is_written_once_and_reused(tmp_path, monkeypatch):
    import index.onnx_model as onnx_model

    first = exported_model(bundled_model_path(), cache_dir=tmp_path)
    stat = first.stat()
    monkeypatch.setattr(onnx_model, "export_fp32", lambda *a: pytest.fail("exported a second time"))
    again = exported_model(bundled_model_path(), cache_dir=tmp_path)
    assert again == first and again.stat().st_ino == stat.st_ino and again.stat().st_mtime_ns == stat.st_mtime_ns
    assert [p.name for p in first.parent.iterdir()] == ["model.onnx"]  # no temporary file left behind
    vectors = Embedder(backend="onnx", cache_dir=tmp_path).encode(["the export runs"])
    assert vectors.shape == (1, 384)


def test_a_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "model.onnx"

    def half_written(tmp):
        tmp.write_bytes(b"partial graph")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, half_written)
    assert list(tmp_path.iterdir()) == []


def test_auto_falls_back_to_torch_when_no_onnx_model_can_be_made(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.warns(UserWarning, match="exporting the model to ONNX failed"):
        assert resolve_backend("auto", tmp_path, cache_dir=tmp_path / "cache") == "torch"


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend must be one of auto, onnx, onnx-int8, torch. Currently, backend is 'tf'"):
        Embedder(backend="tf")


def test_onnx_path_imports_no_torch():
    code = ("import sys; from index.embedding import Embedder; Embedder(backend='onnx').encode(['hello']); "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
