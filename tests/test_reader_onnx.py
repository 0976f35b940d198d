"""The neural reader on ONNX Runtime: the same windows, spans and scores as the torch reference,
without importing torch or transformers; torch still answers when the export is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import sys

import numpy as np
import pytest

from qa import Engine, QASettings
from qa.readers import neural
from qa.readers.neural import MODEL_DIR, NeuralReader
from qa.readers.neural.export import ONNX_FILE, exported_reader, onnx_dir
from qa.types import Passage
from tests.conftest import REPO_ROOT, SEED_FILE

SEED_QUESTIONS = [json.loads(line)["question"]
                  for line in (REPO_ROOT / "tests" / "data" / "seed_questions.jsonl").read_text().splitlines() if line]


@pytest.fixture(scope="module")
def onnx_reader() -> NeuralReader:
    return NeuralReader.load(backend="onnx")


@pytest.fixture(scope="module")
def torch_reader() -> NeuralReader:
    return NeuralReader.load(backend="torch", precision="fp32")


def real_passages() -> list[str]:
    """The seed article whole and its second half (several windows each), its paragraphs, SQuAD
    contexts, accented and non-Latin text (offsets past the normaliser), and an empty text."""
    article = SEED_FILE.read_text(encoding="utf-8")
    squad = json.loads((REPO_ROOT / "tests" / "data" / "squad_tiny.json").read_text(encoding="utf-8"))
    contexts = [p["context"] for a in squad["data"] for p in a["paragraphs"]]
    mixed = "Café Zürich, naïve façade — 東京 and Ångström units 🚀 in “quotes”; Œuvre ﬁnale."
    return [article, *[p for p in article.split("\n\n") if p.strip()], *contexts, mixed,
            article[len(article) // 2:], ""]


def test_both_tokenizers_cut_the_same_windows(onnx_reader, torch_reader):
    assert isinstance(onnx_reader.tokenizer, neural.WordPieceTokenizer)
    passages = real_passages()
    long_question = " ".join(["Which telecommunications equipment makers were accused of stealing secrets"] * 6) + "?"
    for question in ["who is Rob Strayer?", "What is the capital of Normandy?", long_question]:
        fast = neural.encode_windows(onnx_reader.tokenizer, question, passages, onnx_reader.config)
        ref = neural.encode_windows(torch_reader.tokenizer, question, passages, torch_reader.config)
        assert fast == ref  # token ids, mask, token types, offsets, padding and window order
        windows_per_passage = np.bincount(fast["context_index"], minlength=len(passages))
        assert windows_per_passage[0] >= 3 and windows_per_passage[-2] >= 2  # long passages slide
        assert windows_per_passage[-1] == 1  # the empty text still gets its one window


def test_onnx_and_torch_read_the_same_spans_and_scores(seed_index, onnx_reader, torch_reader):
    assert (onnx_reader.backend, torch_reader.backend) == ("onnx", "torch")
    engine = Engine(seed_index, QASettings(reader="neural"))
    read = 0
    for question in SEED_QUESTIONS:
        passages = engine.retrieve(question)
        for a, b in zip(onnx_reader.score_passages(question, passages), torch_reader.score_passages(question, passages)):
            assert (a.answer_start, a.answer_end, a.answer) == (b.answer_start, b.answer_end, b.answer), question
            assert a.score == pytest.approx(b.score, abs=1e-4) and a.margin == pytest.approx(b.margin, abs=1e-3)
            read += 1
    assert read >= len(SEED_QUESTIONS) * 3


def test_engine_answers_the_same_on_both_backends(seed_index):
    engine = Engine(seed_index, QASettings(reader="neural"))
    found = 0
    for question in SEED_QUESTIONS[::3]:  # every passage of every question is compared above
        a = engine.ask(question, reader_backend="onnx")
        b = engine.ask(question, reader_backend="torch", reader_precision="fp32")
        assert (a.found, a.text) == (b.found, b.text), question
        assert a.score == pytest.approx(b.score, abs=1e-4)
        assert [(c.source, c.start, c.end, c.answer_start) for c in a.citations] == \
               [(c.source, c.start, c.end, c.answer_start) for c in b.citations]
        found += a.found
    assert found >= len(SEED_QUESTIONS[::3]) // 2
    assert engine.reader("neural", backend="onnx").backend == "onnx"


def test_answering_on_onnx_imports_neither_torch_nor_transformers(seed_index):
    script = (
        "import sys\n"
        "from qa import Engine\n"
        f"engine = Engine({str(seed_index.path)!r})\n"
        "answer = engine.ask('who is Rob Strayer?')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'transformers', 'sentence_transformers', 'safetensors'})\n"
        "print(engine.reader('auto').backend, answer.text, heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "onnx State Department official []"


def test_without_the_export_auto_reads_with_torch_and_onnx_exports_it(tmp_path):
    cache = tmp_path / "models"
    assert exported_reader(cache_dir=cache, create=False) is None
    assert neural.resolve_backend("auto", "auto", MODEL_DIR, cache) == "torch"
    fallback = NeuralReader.load(cache_dir=cache, cached=False, precision="fp32")
    assert fallback.backend == "torch"
    text = "The new bridge, which opened in 2004, was designed by the architect Maria Lopez."
    passage = Passage(chunk_id=0, source="bridge.txt", start=0, end=len(text), text=text, score=1.0)
    assert fallback.extract("Who designed the bridge?", [passage])[0].answer == "Maria Lopez"

    exported = NeuralReader.load(cache_dir=cache, cached=False, backend="onnx")  # exports on demand
    assert exported.backend == "onnx" and exported.model.onnx_file == onnx_dir(MODEL_DIR, cache) / ONNX_FILE
    assert [p.name for p in exported.model.onnx_file.parent.iterdir()] == [ONNX_FILE]  # no temporary file left
    assert neural.resolve_backend("auto", "auto", MODEL_DIR, cache) == "onnx"
    assert neural.resolve_backend("auto", "bf16", MODEL_DIR, cache) == "torch"  # only torch computes bf16
    (best, *_) = exported.extract("Who designed the bridge?", [passage])
    (ref, *_) = fallback.extract("Who designed the bridge?", [passage])
    assert best.answer == "Maria Lopez" and best.score == pytest.approx(ref.score, abs=1e-4)


def test_the_export_is_keyed_by_the_reader_files(tmp_path):
    copy = tmp_path / "reader"
    shutil.copytree(MODEL_DIR, copy)
    assert onnx_dir(copy, tmp_path) == onnx_dir(MODEL_DIR, tmp_path)  # the same files share one export
    config = json.loads((copy / "config.json").read_text())
    config["layer_norm_eps"] = config.get("layer_norm_eps", 1e-12) * 10
    (copy / "config.json").write_text(json.dumps(config))
    neural.write_checksums(copy)
    assert onnx_dir(copy, tmp_path) != onnx_dir(MODEL_DIR, tmp_path)  # other files: another export


def test_int8_graph_reads_the_same_answer(onnx_reader):
    doc = "Intro.\nThe new bridge, which opened in 2004, was designed by the architect Maria Lopez."
    passage = Passage(chunk_id=0, source="bridge.txt", start=7, end=len(doc), text=doc[7:], score=1.0)
    int8 = NeuralReader.load(precision="int8")
    assert (int8.backend, int8.precision) == ("onnx", "int8") and int8.model.onnx_file.name == "model-int8.onnx"
    (best, *_) = int8.extract("Who designed the bridge?", [passage])
    (ref, *_) = onnx_reader.extract("Who designed the bridge?", [passage])
    assert best.answer == "Maria Lopez" and doc[best.answer_start:best.answer_end] == best.answer
    assert abs(best.score - ref.score) < 0.05  # quantised weights move the logits a little


def test_onnx_refuses_what_only_torch_computes():
    with pytest.raises(ValueError, match="reader_backend='torch'"):
        NeuralReader.load(precision="bf16", backend="onnx")
    with pytest.raises(ValueError, match="reader_backend must be one of"):
        NeuralReader.load(backend="tensorrt")
    with pytest.raises(ValueError, match="reader_backend must be one of"):
        QASettings(reader_backend="gpu")


def test_best_span_is_the_best_legal_pair(onnx_reader):
    """The numpy decoding finds the pair a brute-force search over every (start, end) finds."""
    article = SEED_FILE.read_text(encoding="utf-8")
    (windows,) = neural.read_windows(onnx_reader.model, onnx_reader.tokenizer, "who is Rob Strayer?", [article],
                                     onnx_reader.config)
    longest = onnx_reader.config.max_answer_tokens
    for w in windows:
        idx = [i for i, o in enumerate(w.offsets) if o is not None]
        brute = max((float(w.start[i] + w.end[j]), w.offsets[i][0], w.offsets[j][1])
                    for i in idx for j in idx if 0 <= j - i < longest)
        logit, s, e = neural.best_span(w, longest)
        assert (s, e) == brute[1:] and logit == pytest.approx(brute[0])


def test_reading_windows_one_by_one_gives_what_a_padded_batch_gives(onnx_reader):
    """The ONNX reader runs each window alone at its own length (faster than a padded batch);
    the logits of every real token, and so every span and score, are those of one padded batch."""
    assert neural.default_batch_size(onnx_reader.model) == 1 and onnx_reader.batch_size is None
    passages = real_passages()
    for question in ["who is Rob Strayer?", "What is the capital of Normandy?", "When did the war end?"]:
        alone = neural.read_windows(onnx_reader.model, onnx_reader.tokenizer, question, passages, onnx_reader.config)
        batched = neural.read_windows(onnx_reader.model, onnx_reader.tokenizer, question, passages, onnx_reader.config,
                                      batch_size=64)
        widths = set()
        for a_windows, b_windows in zip(alone, batched):
            assert len(a_windows) == len(b_windows)
            for a, b in zip(a_windows, b_windows):
                n = len(a.start)
                widths.add(n)
                assert a.offsets == b.offsets[:n] and not any(b.offsets[n:])  # b's extra tokens are padding
                np.testing.assert_allclose(a.start, b.start[:n], rtol=0, atol=1e-5)
                np.testing.assert_allclose(a.end, b.end[:n], rtol=0, atol=1e-5)
        assert len(widths) > 3  # windows of many lengths, most of them padded in the batch
    one_by_one = NeuralReader(onnx_reader.model, onnx_reader.tokenizer, onnx_reader.config, onnx_reader.path)
    padded = NeuralReader(onnx_reader.model, onnx_reader.tokenizer, onnx_reader.config, onnx_reader.path, batch_size=16)
    texts = passages[:-1]  # every passage but the empty one
    cut = [Passage(chunk_id=i, source="p.txt", start=0, end=len(t), text=t, score=1.0) for i, t in enumerate(texts)]
    for question in SEED_QUESTIONS[:8]:
        for a, b in zip(one_by_one.score_passages(question, cut), padded.score_passages(question, cut)):
            assert (a.answer_start, a.answer_end, a.answer) == (b.answer_start, b.answer_end, b.answer), question
            assert a.score == pytest.approx(b.score, abs=1e-6)


def test_windows_read_side_by_side_give_the_logits_of_one_at_a_time(monkeypatch):
    """Several windows run side by side on a one-thread session, one core each; their logits,
    in order, are those of the same windows read one after another on every core."""
    model = neural.OnnxReaderModel(exported_reader(MODEL_DIR, create=True), threads=2)
    reader = NeuralReader.load(backend="onnx")
    enc = neural.encode_windows(reader.tokenizer, "who is Rob Strayer?", real_passages()[:-1], reader.config)
    batches = []
    for ids, mask, types in zip(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]):
        n = sum(mask)
        batches.append(tuple(np.asarray([row[:n]], dtype=np.int64) for row in (ids, mask, types)))
    assert len(batches) > 5
    callers: list[tuple[int, object]] = []
    run = neural.OnnxReaderModel._run
    monkeypatch.setattr(neural.OnnxReaderModel, "_run",
                        staticmethod(lambda session, *a: (callers.append((threading.get_native_id(), session)), run(session, *a))[1]))
    one_at_a_time = [model(*b) for b in batches]
    assert {c for c, _ in callers} == {threading.get_native_id()}
    callers.clear()
    side_by_side = model.map(batches)
    assert len({c for c, _ in callers}) == 2 and threading.get_native_id() not in {c for c, _ in callers}
    assert {s for _, s in callers} == {model._side_by_side[0]}  # not the session of every core
    for (a_start, a_end), (b_start, b_end) in zip(one_at_a_time, side_by_side):
        np.testing.assert_allclose(a_start, b_start, rtol=0, atol=1e-4)
        np.testing.assert_allclose(a_end, b_end, rtol=0, atol=1e-4)
    callers.clear()
    model.map(batches[:1])  # one window keeps every core, on the calling thread
    assert callers == [(threading.get_native_id(), model._session)]
