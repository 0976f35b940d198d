"""The readers at answer time: the neural reader (shipped weights, checksums, windows, spans,
abstention, precision), the rule-based reader and the typed spans both use."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from qa.readers import neural
from qa.readers.neural import MODEL_DIR, NeuralReader, ReaderIntegrityError, is_available, verify_checksums
from qa.readers.sentence import SentenceReader
from qa.readers.spans import extract_span, question_terms, question_type, question_words
from qa.types import Passage
from tests.conftest import REPO_ROOT, SEED_FILE


def _passage(text: str, doc_prefix: str = "", chunk_id: int = 0) -> tuple[str, Passage]:
    """A document ``doc_prefix + text`` and the passage covering ``text`` inside it."""
    doc = doc_prefix + text
    start = len(doc_prefix)
    return doc, Passage(chunk_id=chunk_id, source=f"doc{chunk_id}.txt", start=start, end=len(doc), text=text, score=0.5)


WESTPHALIA = "The Treaty of Westphalia was signed in 1648, ending the Thirty Years' War in Europe."
BANANAS = "Bananas are rich in potassium and are grown in tropical regions around the world."


def test_shipped_weights_pass_checksum_and_are_small():
    verify_checksums(MODEL_DIR)
    size = (MODEL_DIR / "model.safetensors").stat().st_size
    assert size < 50 * 1024 * 1024
    cfg = json.loads((MODEL_DIR / "reader.json").read_text())
    assert 0 < cfg["calib_a"] and 0 <= cfg["threshold"] <= 1


def test_corrupted_copy_is_refused(tmp_path):
    bad = tmp_path / "reader"
    shutil.copytree(MODEL_DIR, bad)
    weights = bad / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ReaderIntegrityError, match="(?i)reinstall|retrain"):
        NeuralReader.load(bad, cached=False)


def test_missing_weights_say_what_to_do(tmp_path):
    assert not is_available(tmp_path)
    with pytest.raises(FileNotFoundError, match="train_reader"):
        NeuralReader.load(tmp_path, cached=False)


@pytest.mark.parametrize(
    "question,text,expected",
    [
        (
            "When was the Eiffel Tower completed?",
            "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 and was designed "
            "by the engineering company of Gustave Eiffel. It is 330 metres tall.",
            "1889",
        ),
        (
            "Who designed the bridge?",
            "The old bridge was closed for repairs last winter. The new bridge, which opened in 2004, was designed "
            "by the architect Maria Lopez. Traffic across the river doubled after it opened.",
            "Maria Lopez",
        ),
        (
            "What is the capital of Australia?",
            "Australia is a country in the southern hemisphere. Its largest city is Sydney, but the capital of "
            "Australia is Canberra, which was chosen as a compromise between Sydney and Melbourne.",
            "Canberra",
        ),
    ],
)
def test_finds_answer_span_with_exact_offsets(reader, question, text, expected):
    doc, p = _passage(text, doc_prefix="Header line.\n\n")
    cands = reader.extract(question, [p])
    assert cands, "the reader should answer"
    best = cands[0]
    assert expected in best.answer
    assert len(best.answer) <= len(expected) + 12
    assert doc[best.answer_start : best.answer_end] == best.answer
    assert doc[best.sentence_start : best.sentence_end] == best.sentence
    assert best.sentence_start <= best.answer_start < best.answer_end <= best.sentence_end
    assert 0.2 < best.score <= 1.0 and best.reader == "neural"


def test_prefers_the_passage_that_answers(reader):
    _, p1 = _passage("Bananas are rich in potassium and are grown in tropical regions around the world.", chunk_id=1)
    _, p2 = _passage("The Treaty of Westphalia was signed in 1648, ending the Thirty Years' War in Europe.", chunk_id=2)
    cands = reader.extract("In what year was the Treaty of Westphalia signed?", [p1, p2])
    assert cands and cands[0].passage.chunk_id == 2 and "1648" in cands[0].answer
    readings = reader.score_passages("In what year was the Treaty of Westphalia signed?", [p1, p2])
    assert [r.passage.chunk_id for r in readings] == [1, 2]
    assert readings[1].margin > readings[0].margin
    assert readings[1].score > readings[0].score


class _CountingReader:
    """A real reader, recording how many passages each ``extract`` call read."""

    def __init__(self, reader):
        self.reader, self.calls = reader, []
        self.name, self.threshold, self.reads_passages_apart = reader.name, reader.threshold, reader.reads_passages_apart

    def extract(self, question, passages, question_vector=None):
        self.calls.append(len(passages))
        return self.reader.extract(question, passages, question_vector=question_vector)


def test_early_exit_reads_the_rest_only_when_unsure(reader):
    from qa.engine import read_passages

    question = "In what year was the Treaty of Westphalia signed?"
    _, answers = _passage("The Treaty of Westphalia was signed in 1648, ending the Thirty Years' War in Europe.", chunk_id=1)
    _, silent = _passage("Bananas are rich in potassium and are grown in tropical regions around the world.", chunk_id=2)
    counting = _CountingReader(reader)
    confident = read_passages(counting, question, [answers, silent], early_exit=0.5)
    assert counting.calls == [1] and confident[0].passage.chunk_id == 1 and "1648" in confident[0].answer
    counting.calls.clear()
    unsure_first = read_passages(counting, question, [silent, answers], early_exit=0.5)
    assert counting.calls == [1, 1] and "1648" in max(unsure_first, key=lambda c: c.score).answer
    counting.calls.clear()
    everything = read_passages(counting, question, [answers, silent], early_exit=1.0)
    assert counting.calls == [2] and [c.answer for c in everything][:1] == [confident[0].answer]


@pytest.mark.parametrize(
    "question,text",
    [
        (
            "Who won the 1998 World Cup?",
            "Sourdough bread is made by fermenting dough with wild yeast and lactic acid bacteria. "
            "The starter is fed with flour and water every day.",
        ),
        (
            "What is the boiling point of mercury?",
            "The committee meets on the first Monday of every month. Minutes are published on the website "
            "one week after each meeting.",
        ),
    ],
)
def test_abstains_when_passage_does_not_answer(reader, question, text):
    _, p = _passage(text)
    (reading,) = reader.score_passages(question, [p])
    assert reading.score < reader.config.threshold
    assert all(c.score < reader.config.threshold for c in reader.extract(question, [p]))


def test_long_passage_is_read_in_windows(reader):
    filler = " ".join(f"Paragraph {i} talks about the weather in a town with no name." for i in range(60))
    text = filler + " The lighthouse keeper was named Thomas Hardwick. " + filler
    _, p = _passage(text)
    cands = reader.extract("What was the name of the lighthouse keeper?", [p])
    assert cands and "Hardwick" in cands[0].answer
    assert text[cands[0].answer_start - p.start : cands[0].answer_end - p.start] == cands[0].answer


def test_empty_input(reader):
    assert reader.extract("anything?", []) == []


def test_every_precision_reads_the_same_answer():
    doc, p = _passage("The new bridge, which opened in 2004, was designed by the architect Maria Lopez.", "Intro.\n")
    got = {}
    for precision in ("fp32", "bf16", "int8"):
        r = NeuralReader.load(precision=precision, backend="torch")
        assert r.precision == precision
        (best, *_) = r.extract("Who designed the bridge?", [p])
        assert best.answer == "Maria Lopez" and doc[best.answer_start:best.answer_end] == best.answer
        got[precision] = best.score
    assert abs(got["bf16"] - got["fp32"]) < 0.05  # bf16 only rounds the products; int8 may move further
    torch_auto = NeuralReader.load(precision="auto", backend="torch")
    assert torch_auto.precision == ("bf16" if neural.cpu_has_bf16() else "fp32") and torch_auto.backend == "torch"
    assert NeuralReader.load(precision="auto", backend="onnx").precision == "fp32"  # the ONNX graph computes in fp32
    with pytest.raises(ValueError, match="precision must be one of"):
        NeuralReader.load(precision="fp8")


def test_span_logit_of_the_best_span_is_the_best_logit(reader):
    text = ("The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 and was designed "
            "by the engineering company of Gustave Eiffel.")
    (wins,) = neural.read_windows(reader.model, reader.tokenizer, "When was the tower completed?", [text], reader.config)
    logit, _, s, e = neural.best_of_windows(wins, reader.config.max_answer_tokens)
    scored = neural.span_logit(wins, s, e, reader.config.max_answer_tokens)
    assert scored is not None and scored[1:] == (s, e) and scored[0] == pytest.approx(logit)
    other = neural.span_logit(wins, text.index("Paris"), text.index("Paris") + 5, reader.config.max_answer_tokens)
    assert other is not None and other[0] < logit
    assert neural.span_logit(wins, 0, len(text), reader.config.max_answer_tokens) is None  # longer than 30 pieces


def test_typed_span_wins_only_within_the_agreement_margin(reader):
    text = ("“We are raising it at the highest diplomatic levels,” said State Department official Rob Strayer at an "
            "event at the Center for Strategic and International Studies.")
    alt = neural.typed_alternative("who is Rob Strayer?", text, text.index("State"), text.index("State") + 16)
    assert alt is not None and text[alt[0]:alt[1]] == "State Department official"
    _, p = _passage(text)
    off = NeuralReader(reader.model, reader.tokenizer, neural.ReaderConfig(**{**reader.config.__dict__, "agree_margin": 0.0}),
                       reader.path)
    wide = NeuralReader(reader.model, reader.tokenizer, neural.ReaderConfig(**{**reader.config.__dict__, "agree_margin": 50.0}),
                        reader.path)
    (r_off,) = off.score_passages("who is Rob Strayer?", [p])
    (r_wide,) = wide.score_passages("who is Rob Strayer?", [p])
    assert r_wide.answer == "State Department official"
    assert r_wide.span_logit <= r_off.span_logit  # the typed span never scores above the model's best
    assert text[r_wide.answer_start - p.start : r_wide.answer_end - p.start] == r_wide.answer




# ---- windows ------------------------------------------------------------------------------------


def _sliding_windows(tokenizer, question: str, context: str, cfg: neural.ReaderConfig) -> list[tuple[list, list]]:
    """Reference windows written out by hand: ``[CLS] question [SEP] piece [SEP]``, pieces of
    ``max_length - len(question) - 3`` context tokens starting every ``that - stride`` tokens."""
    q = tokenizer(question, add_special_tokens=False)["input_ids"][: cfg.max_question_tokens]
    enc = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
    ids, offs = enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]
    room = cfg.max_length - len(q) - 3
    starts = [0]
    while starts[-1] + room < len(ids):
        starts.append(starts[-1] + room - cfg.stride)
    return [([tokenizer.cls_token_id, *q, tokenizer.sep_token_id, *ids[s:s + room], tokenizer.sep_token_id],
             [None] * (len(q) + 2) + offs[s:s + room] + [None]) for s in starts]


@pytest.mark.parametrize("kind", ["transformers", "tokenizers"])
def test_windows_slide_over_long_passages_with_the_configured_overlap(reader, kind):
    """The seed article (several windows), its paragraphs (one each), an empty text, and a
    question longer than ``max_question_tokens``: the model sees exactly the sliding windows,
    cut by transformers' tokenizer (torch backend) or the tokenizers library (ONNX backend)."""
    article = SEED_FILE.read_text(encoding="utf-8")
    contexts = [article, *[p for p in article.split("\n\n") if p.strip()][:6], "", article[:1500]]
    questions = ["who is Rob Strayer?", " ".join(["Which telecommunications equipment makers were accused"] * 8) + "?"]
    cfg = reader.config
    reference = neural.load_tokenizer(MODEL_DIR)
    tokenizer = reference if kind == "transformers" else neural.WordPieceTokenizer(MODEL_DIR)
    for question in questions:
        enc = neural.encode_windows(tokenizer, question, contexts, cfg)
        expected = [(ci, w) for ci, c in enumerate(contexts) for w in _sliding_windows(reference, question, c, cfg)]
        assert enc["context_index"] == [ci for ci, _ in expected]
        for k, (_, (ids, offs)) in enumerate(expected):
            n = sum(enc["attention_mask"][k])
            assert n == len(ids) <= cfg.max_length
            assert enc["input_ids"][k][:n] == ids and enc["offsets"][k][:n] == offs
            q_len = ids.index(reference.sep_token_id) + 1
            assert enc["token_type_ids"][k][:n] == [0] * q_len + [1] * (n - q_len)
            assert all(o is None for o in enc["offsets"][k][n:])  # padding
        assert enc["context_index"].count(0) >= 3  # the article needs several windows
        for k in range(len(expected)):
            for o in enc["offsets"][k]:
                if o is not None:
                    text = contexts[enc["context_index"][k]]
                    assert 0 <= o[0] < o[1] <= len(text)


# ---- typed spans (both readers) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "question, kind",
    [("who is Rob Strayer?", "definition"), ("What is Huawei?", "definition"), ("Who designed the bridge?", "person"),
     ("When was the tower completed?", "date"), ("How many people does the company employ?", "number"),
     ("Where was she born?", "place"), ("Why did the bridge close?", "other")],
)
def test_question_type(question, kind):
    assert question_type(question) == kind


@pytest.mark.parametrize(
    "question, sentence, answer, typed",
    [
        ("who is Rob Strayer?", "“We are raising it at the highest levels,” said State Department official Rob Strayer "
         "at an event.", "State Department official", True),
        ("What is Huawei?", "Huawei, a Chinese telecom company, denies the charges.", "a Chinese telecom company", True),
        ("When was the tower completed?", "The tower was completed in 1889 and designed by Gustave Eiffel.", "1889", True),
        ("How many people does the company employ?", "The company employs 4,500 people in three countries.", "4,500",
         True),
        ("Where was she born?", "She was born in Lyon and moved to Paris in 1990.", "Lyon", True),
        ("Who designed the bridge?", "The new bridge was designed by the architect Maria Lopez in 2004.", "Maria Lopez",
         True),
        ("Why did the bridge close?", "The bridge closed because the cables had rusted.", "cables had rusted", False),
    ],
)
def test_typed_span_inside_a_sentence(question, sentence, answer, typed):
    span, is_typed = extract_span(question, sentence, set(question_terms(question)), question_words(question),
                                  question_type(question))
    assert span is not None and sentence[span[0]:span[1]] == answer and is_typed is typed


def test_neural_reader_and_runtime_do_not_import_what_they_must_not():
    """The neural reader shares span helpers with the rule-based reader through
    ``qa.readers.spans``, not by importing it; no runtime module imports training or evaluation."""
    qa_dir = REPO_ROOT / "qa"
    runtime = [p for p in qa_dir.rglob("*.py") if not {"training", "eval"} & set(p.relative_to(qa_dir).parts)
               and p.name != "train_reader.py"]  # train_reader.py: the training CLI's old name
    assert len(runtime) > 10

    def imported(path: Path) -> set[str]:
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        return names

    for path in runtime:
        bad = {m for m in imported(path) if m.startswith(("qa.training", "qa.eval"))}
        if "neural" in path.parts:
            bad |= {m for m in imported(path) if m == "qa.readers.sentence"}
        assert not bad, f"{path.relative_to(REPO_ROOT)} imports {bad}"


# ---- the rule-based reader ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentence_reader(embedder) -> SentenceReader:
    return SentenceReader(embed=embedder.encode)


def test_sentence_reader_picks_the_answering_sentence_and_span(sentence_reader):
    doc, answers = _passage("The war had lasted three decades. " + WESTPHALIA + " Trade recovered slowly.",
                            "Notes on Europe.\n\n", chunk_id=2)
    _, silent = _passage(BANANAS, chunk_id=1)
    question = "In what year was the Treaty of Westphalia signed?"
    best, *rest = sentence_reader.extract(question, [silent, answers])
    assert best.passage.chunk_id == 2 and best.sentence == WESTPHALIA and best.answer == "1648"
    assert doc[best.sentence_start:best.sentence_end] == best.sentence
    assert doc[best.answer_start:best.answer_end] == "1648"
    assert best.score >= sentence_reader.threshold > max(c.score for c in rest if c.passage.chunk_id == 1)
    assert [c.score for c in [best, *rest]] == sorted((c.score for c in [best, *rest]), reverse=True)


def test_sentence_reader_uses_a_given_question_vector(sentence_reader, embedder):
    _, p = _passage(WESTPHALIA)
    question = "When was the Treaty of Westphalia signed?"
    given = sentence_reader.extract(question, [p], question_vector=embedder.encode([question])[0])
    own = sentence_reader.extract(question, [p])
    assert [(c.answer, round(c.score, 5)) for c in given] == [(c.answer, round(c.score, 5)) for c in own]
    assert given[0].answer == "1648"


def test_sentence_reader_weighs_terms_over_the_index_as_it_is_now():
    """``corpus_size`` is asked at every question. In 600 chunks a word found in 500 of them is
    common and weighs little; in 100,000 it is rare, so a sentence without it covers less of the question."""
    size = {"chunks": 600}
    reader = SentenceReader(document_frequency=lambda term: 2 if term.startswith("westph") else 500,
                            corpus_size=lambda: size["chunks"])
    _, p = _passage(WESTPHALIA)
    question = "Westphalia potassium?"
    small = reader.extract(question, [p])[0].score
    size["chunks"] = 100_000
    assert reader.extract(question, [p])[0].score < small


def test_early_exit_applies_only_to_readers_that_read_passages_apart(sentence_reader):
    from qa.engine import read_passages

    _, answers = _passage(WESTPHALIA, chunk_id=1)
    _, silent = _passage(BANANAS, chunk_id=2)
    counting = _CountingReader(sentence_reader)
    read_passages(counting, "In what year was the Treaty of Westphalia signed?", [answers, silent], early_exit=0.1)
    assert counting.calls == [2]  # its sentences compete across passages: read together
