"""The trained neural reader: an extractive span reader on the bundled MiniLM encoder.

The weights are trained by ``python -m qa.train_reader`` and shipped in
``qa/models/reader/`` (fp16 safetensors, SHA-256 checked at load). Loading never
touches the network.

How scores work (for fusing with retrieval):
    For every passage the model gives a best span logit ``span_logit`` (start logit +
    end logit of the best legal span) and a no-answer logit ``null_logit`` (start + end
    logit of the [CLS] token). ``margin = span_logit - null_logit`` is the raw evidence
    that the passage answers the question. ``score = sigmoid(a * margin + b)`` with
    ``a, b`` fitted on held-out training data (logistic regression of "the span is right"
    on the margin), so ``score`` estimates the probability that the span is a correct
    answer; 0.5 is the natural "found" threshold. ``NeuralReader.score_passages`` returns
    all of these per passage as ``PassageReading`` records.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from qa.readers.sentences import split_sentences, strip_span
from qa.settings import PRECISIONS
from qa.types import Candidate, Passage

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "reader"
WEIGHTS_FILE = "model.safetensors"
CHECKSUM_FILE = "SHA256SUMS"
READER_CONFIG_FILE = "reader.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


class ReaderIntegrityError(RuntimeError):
    """The shipped reader files are missing or do not match their checksums."""


@dataclass(frozen=True)
class ReaderConfig:
    """Inference settings stored next to the weights in ``reader.json``.

    Args:
        max_length: tokens per window (question + context + 3 special tokens).
        stride: context tokens shared by consecutive windows of a long passage.
        max_question_tokens: questions are cut to this many word pieces.
        max_answer_tokens: longest span the reader returns, in word pieces.
        calib_a: slope of the margin-to-probability calibration.
        calib_b: intercept of the margin-to-probability calibration.
        threshold: score at or above which a candidate counts as found.
        agree_margin: when the rule-based extractor (``qa.extract.extract_span``) finds a
            span of the asked type ("who is X?" -> the title before the name, "when" -> a
            date, ...) in the sentence of the neural answer, and the neural span logit of
            that span is within this many logits of the best, the typed span wins. 0 turns
            it off. Chosen on qa-train's held-out slice (docs/READER.md).
    """

    max_length: int = 256
    stride: int = 96
    max_question_tokens: int = 40
    max_answer_tokens: int = 30
    calib_a: float = 0.5
    calib_b: float = 0.0
    threshold: float = 0.5
    agree_margin: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> ReaderConfig:
        """Build from a dict, ignoring unknown keys.

        Args:
            d: parsed ``reader.json``.

        Returns:
            The config.
        """
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class PassageReading:
    """What the reader saw in one passage: its best span and the raw logits.

    Offsets are into the passage's document (``passage.start`` + offset in passage.text);
    ``answer_start``/``answer_end`` are None when the passage had no context token.
    """

    passage: Passage
    answer_start: int | None
    answer_end: int | None
    answer: str
    span_logit: float
    null_logit: float
    score: float

    @property
    def margin(self) -> float:
        """``span_logit - null_logit``: raw evidence that the passage answers."""
        return self.span_logit - self.null_logit


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file.

    Args:
        path: the file.

    Returns:
        The lower-case hex digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checksums(model_dir: Path) -> None:
    """Write ``SHA256SUMS`` for every file in ``model_dir`` (except itself).

    Args:
        model_dir: the exported reader folder.
    """
    model_dir = Path(model_dir)
    lines = [
        f"{sha256_file(p)}  {p.name}\n"
        for p in sorted(model_dir.iterdir())
        if p.is_file() and p.name != CHECKSUM_FILE
    ]
    (model_dir / CHECKSUM_FILE).write_text("".join(lines))


def verify_checksums(model_dir: Path) -> None:
    """Check every file listed in ``SHA256SUMS``.

    Args:
        model_dir: the reader folder.

    Raises:
        ReaderIntegrityError: a file is missing or its digest differs.
    """
    model_dir = Path(model_dir)
    sums = model_dir / CHECKSUM_FILE
    fix = "Reinstall the package (or restore qa/models/reader/ from git), or retrain with `python -m qa.train_reader`."
    if not sums.is_file():
        raise ReaderIntegrityError(f"{sums} is missing, so the reader weights cannot be verified. {fix}")
    listed = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            listed[name.strip()] = digest
    if WEIGHTS_FILE not in listed:
        raise ReaderIntegrityError(f"{sums} does not list {WEIGHTS_FILE}. {fix}")
    for name, digest in listed.items():
        p = model_dir / name
        if not p.is_file():
            raise ReaderIntegrityError(f"reader file {p} is missing. {fix}")
        actual = sha256_file(p)
        if actual != digest:
            raise ReaderIntegrityError(
                f"reader file {p} is corrupted: SHA-256 {actual[:16]}... does not match the expected {digest[:16]}.... {fix}"
            )


def is_available(path: Path | str | None = None) -> bool:
    """Whether the trained reader's weights are installed (files present; not hashed).

    Args:
        path: reader folder; defaults to ``qa/models/reader``.

    Returns:
        True when weights, checksums, config and tokenizer are all present.
    """
    d = Path(path) if path is not None else MODEL_DIR
    needed = (WEIGHTS_FILE, CHECKSUM_FILE, READER_CONFIG_FILE, "config.json", "tokenizer.json")
    return all((d / n).is_file() for n in needed)


def load_tokenizer(path: Path | str):
    """The fast WordPiece tokenizer stored in ``path`` (offline).

    Args:
        path: a folder with ``tokenizer.json``.

    Returns:
        A ``PreTrainedTokenizerFast``.
    """
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)


# ---------------------------------------------------------------------------------------
# Windowing and span decoding, shared by training (held-out scoring) and inference.


def encode_windows(tokenizer, question: str, contexts: Sequence[str], cfg: ReaderConfig) -> dict:
    """Tokenise ``question`` against each context, splitting long contexts into windows.

    Args:
        tokenizer: a fast BERT tokenizer.
        question: the question.
        contexts: passage texts.
        cfg: window sizes.

    Returns:
        A dict with ``input_ids``, ``attention_mask``, ``token_type_ids`` (padded lists),
        ``offsets`` (char offsets into the context, None for non-context tokens) and
        ``context_index`` (which context each window came from).
    """
    q_ids = tokenizer(question, add_special_tokens=False)["input_ids"][: cfg.max_question_tokens]
    enc = tokenizer(list(contexts), add_special_tokens=False, return_offsets_mapping=True)
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    room = max(16, cfg.max_length - len(q_ids) - 3)
    step = max(1, room - cfg.stride)
    windows_ids, windows_offs, ctx_index = [], [], []
    for ci, (ids, offs) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
        n = len(ids)
        starts = [0]
        while starts[-1] + room < n:
            starts.append(starts[-1] + step)
        for s in starts:
            e = min(n, s + room)
            windows_ids.append([cls_id] + q_ids + [sep_id] + ids[s:e] + [sep_id])
            windows_offs.append([None] * (len(q_ids) + 2) + [tuple(o) for o in offs[s:e]] + [None])
            ctx_index.append(ci)
    width = max(len(w) for w in windows_ids) if windows_ids else 0
    input_ids, mask, types = [], [], []
    for w in windows_ids:
        pad = width - len(w)
        input_ids.append(w + [pad_id] * pad)
        mask.append([1] * len(w) + [0] * pad)
        types.append([0] * (len(q_ids) + 2) + [1] * (len(w) - len(q_ids) - 2) + [0] * pad)
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "token_type_ids": types,
        "offsets": windows_offs,
        "context_index": ctx_index,
    }


@dataclass(frozen=True)
class WindowLogits:
    """Start/end logits of one window over a context, with each token's character offsets
    into that context (None for question, special and padding tokens)."""

    start: object  # torch.Tensor (tokens,)
    end: object  # torch.Tensor (tokens,)
    offsets: list

    @property
    def null_logit(self) -> float:
        """Start + end logit of [CLS]: the window's evidence for "no answer here"."""
        return float(self.start[0] + self.end[0])


def best_span(window: WindowLogits, max_answer_tokens: int) -> tuple:
    """The best legal span of one window.

    Args:
        window: the window's logits and offsets.
        max_answer_tokens: longest span allowed.

    Returns:
        ``(span_logit, char_start, char_end)``; ``(-inf, None, None)`` when the window
        has no context token.
    """
    import torch

    offs = window.offsets
    idx = [i for i, o in enumerate(offs) if o is not None]
    if not idx:
        return float("-inf"), None, None
    lo, hi = idx[0], idx[-1] + 1  # context tokens are contiguous
    s = window.start[lo:hi]
    e = window.end[lo:hi]
    n = hi - lo
    band = torch.ones(n, n, dtype=torch.bool).triu().tril(max_answer_tokens - 1)
    scores = (s[:, None] + e[None, :]).masked_fill(~band, float("-inf"))
    flat = int(torch.argmax(scores))
    i, j = divmod(flat, n)
    return float(scores[i, j]), offs[lo + i][0], offs[lo + j][1]


def span_logit(windows: Sequence[WindowLogits], char_start: int, char_end: int, max_answer_tokens: int) -> tuple | None:
    """The reader's logit for a given character span (its best over the windows that hold it).

    Args:
        windows: one context's windows.
        char_start: span start in the context.
        char_end: span end in the context.
        max_answer_tokens: longest span allowed.

    Returns:
        ``(span_logit, token_aligned_start, token_aligned_end)``, or None when no window
        holds the whole span within ``max_answer_tokens`` word pieces.
    """
    best = None
    for w in windows:
        idx = [i for i, o in enumerate(w.offsets) if o is not None]
        if not idx or w.offsets[idx[0]][0] > char_start or w.offsets[idx[-1]][1] < char_end:
            continue
        i = next((k for k in idx if w.offsets[k][1] > char_start), None)
        j = next((k for k in reversed(idx) if w.offsets[k][0] < char_end), None)
        if i is None or j is None or j < i or j - i + 1 > max_answer_tokens:
            continue
        val = float(w.start[i] + w.end[j])
        if best is None or val > best[0]:
            best = (val, w.offsets[i][0], w.offsets[j][1])
    return best


def read_windows(model, tokenizer, question: str, contexts: Sequence[str], cfg: ReaderConfig, batch_size: int = 16,
                 bf16: bool = False) -> list[list[WindowLogits]]:
    """Run the model over every window of every context.

    Args:
        model: a question-answering model returning ``start_logits``/``end_logits``.
        tokenizer: its fast tokenizer.
        question: the question.
        contexts: passage texts.
        cfg: window settings.
        batch_size: windows per forward pass.
        bf16: compute the matrix products in bfloat16 (``torch.autocast``); worth it only
            where the CPU multiplies bf16 natively (see ``cpu_has_bf16``).

    Returns:
        Per context, its windows' logits (on the CPU, float32).
    """
    import torch

    out_windows: list[list[WindowLogits]] = [[] for _ in contexts]
    if not contexts:
        return out_windows
    enc = encode_windows(tokenizer, question, contexts, cfg)
    n = len(enc["input_ids"])
    device = next(model.parameters()).device
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for b in range(0, n, batch_size):
            sl = slice(b, b + batch_size)
            mask = torch.tensor(enc["attention_mask"][sl])
            width = int(mask.sum(1).max())
            out = model(
                input_ids=torch.tensor(enc["input_ids"][sl])[:, :width].to(device),
                attention_mask=mask[:, :width].to(device),
                token_type_ids=torch.tensor(enc["token_type_ids"][sl])[:, :width].to(device),
            )
            starts, ends = out.start_logits.float().cpu(), out.end_logits.float().cpu()
            for k, offs in enumerate(enc["offsets"][sl]):
                offs = offs + [None] * (width - len(offs)) if len(offs) < width else offs[:width]
                out_windows[enc["context_index"][b + k]].append(WindowLogits(starts[k], ends[k], offs))
    return out_windows


def best_of_windows(windows: Sequence[WindowLogits], max_answer_tokens: int) -> tuple:
    """A context's best span over its windows, as ``(span_logit, null_logit, char_start, char_end)``.

    The best span over the windows is kept; the null logit is the smallest over the windows
    (the window that best sees the answer decides).
    """
    result: tuple = (float("-inf"), 0.0, None, None)
    null = float("inf")
    for w in windows:
        null = min(null, w.null_logit)
        logit, s, e = best_span(w, max_answer_tokens)
        if logit > result[0] or result[2] is None:
            result = (logit, 0.0, s, e)
    return (result[0], null if math.isfinite(null) else 0.0, result[2], result[3])


def read_contexts(model, tokenizer, question: str, contexts: Sequence[str], cfg: ReaderConfig, batch_size: int = 16,
                  bf16: bool = False) -> list[tuple]:
    """Best span per context, as ``(span_logit, null_logit, char_start, char_end)``.

    Args:
        model: a question-answering model returning ``start_logits``/``end_logits``.
        tokenizer: its fast tokenizer.
        question: the question.
        contexts: passage texts.
        cfg: window and span settings.
        batch_size: windows per forward pass.
        bf16: as in ``read_windows``.

    Returns:
        One tuple per context; char offsets are into that context (None if it was empty).
    """
    windows = read_windows(model, tokenizer, question, contexts, cfg, batch_size, bf16)
    return [best_of_windows(w, cfg.max_answer_tokens) for w in windows]


def typed_alternative(question: str, text: str, start: int, end: int) -> tuple[int, int] | None:
    """The rule-based extractor's span of the asked type in the sentence holding ``text[start:end]``.

    Args:
        question: the question.
        text: the passage text.
        start: neural answer start in ``text``.
        end: neural answer end in ``text``.

    Returns:
        ``(start, end)`` in ``text`` of a typed span ("who is X?" -> title, "when" -> date,
        "how many" -> number, "who"/"where" -> a name), or None.
    """
    import re

    from qa.readers.sentence import extract_span, question_terms, question_type

    qtype = question_type(question)
    if qtype == "other":
        return None
    ss, se = _sentence_around(text, start, end)
    q_words = {w.lower() for w in re.findall(r"[^\W_]+", question)}
    span, typed = extract_span(question, text[ss:se], set(question_terms(question)), q_words, qtype)
    if span is None or not typed:
        return None
    return ss + span[0], ss + span[1]


def scored_typed_alternative(question: str, text: str, windows: Sequence[WindowLogits], start: int, end: int,
                             max_answer_tokens: int) -> tuple | None:
    """``typed_alternative`` of the span ``text[start:end]`` with the model's logit for it.

    Returns:
        ``(span_logit, start, end)`` of the typed span (token-aligned), or None when there is
        none, it is the same span, or no window holds it.
    """
    alt = typed_alternative(question, text, start, end)
    if alt is None or alt == (start, end):
        return None
    return span_logit(windows, alt[0], alt[1], max_answer_tokens)


def typed_span_wins(alt_logit: float, best_logit: float, agree_margin: float) -> bool:
    """Whether the typed span replaces the model's best (see ``ReaderConfig.agree_margin``)."""
    return agree_margin > 0 and alt_logit >= best_logit - agree_margin


def calibrated(margin: float, cfg: ReaderConfig) -> float:
    """Probability that a span with this margin is right: ``sigmoid(a * margin + b)``.

    Args:
        margin: ``span_logit - null_logit``.
        cfg: holds the fitted ``calib_a``/``calib_b``.

    Returns:
        A score in [0, 1].
    """
    if not math.isfinite(margin):
        return 0.0 if margin < 0 else 1.0
    z = cfg.calib_a * margin + cfg.calib_b
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), so that reading in
    bf16 is faster than fp32 rather than emulated and slower."""
    import torch

    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(torch.cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except RuntimeError:
            continue
    return False


def resolve_precision(precision: str) -> str:
    """``"auto"`` -> ``"bf16"`` where the CPU has native bf16, else ``"fp32"``; others as given.

    Raises:
        ValueError: an unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}. Currently, precision is {precision!r}")
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    return precision


def _sentence_around(text: str, s: int, e: int) -> tuple[int, int]:
    """The sentence(s) of ``text`` covering ``[s, e)`` (offsets into ``text``)."""
    spans = split_sentences(text)
    hit = [(a, b) for a, b in spans if a < e and b > s]
    if not hit:
        return s, e
    return min(hit[0][0], s), max(hit[-1][1], e)


class NeuralReader:
    """Extractive span reader trained by ``qa.train_reader`` (implements ``qa.reader.Reader``).

    Example:
        >>> r = NeuralReader.load()                                  # doctest: +SKIP
        >>> r.extract("who wrote it?", passages)[0].answer           # doctest: +SKIP
    """

    name = "neural"
    _cache: dict[tuple[str, str], "NeuralReader"] = {}

    def __init__(self, model, tokenizer, config: ReaderConfig, path: Path, min_score: float = 0.02, batch_size: int = 16,
                 precision: str = "fp32"):
        """Wrap a loaded model; use ``NeuralReader.load`` instead of calling this directly.

        Args:
            model: the question-answering model (eval mode).
            tokenizer: its fast tokenizer.
            config: inference settings and calibration.
            path: folder the weights came from.
            min_score: ``extract`` drops candidates scoring below this (near-certain
                non-answers), so it returns [] when no passage answers at all.
            batch_size: windows per forward pass.
            precision: "fp32", "bf16" or "int8" (how ``model`` computes; see ``NeuralReader.load``).
        """
        if precision not in PRECISIONS[1:]:
            raise ValueError(f"precision must be one of {PRECISIONS[1:]} here (resolve 'auto' first). Currently, it is {precision!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.path = Path(path)
        self.min_score = min_score
        self.batch_size = batch_size
        self.precision = precision
        self.load_seconds = 0.0

    @property
    def bf16(self) -> bool:
        """Whether this reader computes its matrix products in bfloat16."""
        return self.precision == "bf16"

    @property
    def threshold(self) -> float:
        """Score at or above which this reader's best candidate counts as an answer."""
        return self.config.threshold

    @classmethod
    def load(cls, path: Path | str | None = None, precision: str = "auto", cached: bool = True) -> NeuralReader:
        """Load the shipped reader (offline), verifying its SHA-256 checksums.

        Args:
            path: reader folder; defaults to ``qa/models/reader``.
            precision: how the reader computes. "fp32"; "bf16" (weights stay fp32, matrix
                products run in bfloat16: 1.3-1.9x faster where the CPU has AVX512-BF16 or AMX,
                within 0.1 F1 of fp32; emulated and slower elsewhere); "int8" (dynamic
                quantisation of the Linear layers: 1.3-2x as fast as fp32 on this project's CPU,
                1.9 F1 lower on SQuAD for the shipped reader); "auto" (the default: bf16 where
                native, else fp32).
            cached: reuse an already loaded reader for the same folder and precision.

        Returns:
            The reader.

        Raises:
            FileNotFoundError: the weights are not installed.
            ReaderIntegrityError: a file does not match ``SHA256SUMS``.
        """
        d = Path(path) if path is not None else MODEL_DIR
        precision = resolve_precision(precision)
        key = (str(d.resolve()), precision)
        if cached and key in cls._cache:
            return cls._cache[key]
        if not is_available(d):
            raise FileNotFoundError(
                f"the neural reader is not installed in {d} (needs {WEIGHTS_FILE}, {CHECKSUM_FILE}, {READER_CONFIG_FILE}, "
                "config.json, tokenizer.json). Reinstall the package or train it with `python -m qa.train_reader`; "
                "or use reader='sentence'."
            )
        verify_checksums(d)
        import torch
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModelForQuestionAnswering
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        t0 = time.perf_counter()
        mcfg = AutoConfig.from_pretrained(str(d), local_files_only=True)
        # fp32 whatever dtype config.json records: the weights are stored in fp16, and fp16
        # matrix products on a CPU are many times slower than fp32 ones.
        model = AutoModelForQuestionAnswering.from_config(mcfg, dtype=torch.float32).float()
        state = {k: v.float() for k, v in load_file(str(d / WEIGHTS_FILE)).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ReaderIntegrityError(
                f"reader weights in {d} do not fit the model (missing {missing[:3]}, unexpected {list(unexpected)[:3]}); "
                "retrain with `python -m qa.train_reader`."
            )
        model.eval()
        if precision == "int8":
            with warnings.catch_warnings():  # torch marks eager quantisation deprecated; it still works in 2.13
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        cfg = ReaderConfig.from_dict(json.loads((d / READER_CONFIG_FILE).read_text()))
        reader = cls(model, load_tokenizer(d), cfg, d, precision=precision)
        reader.load_seconds = time.perf_counter() - t0
        if cached:
            cls._cache[key] = reader
        return reader

    def score_passages(self, question: str, passages: Sequence[Passage]) -> list[PassageReading]:
        """Read every passage: best span, raw logits and calibrated score, in input order.

        Args:
            question: the question.
            passages: retrieved passages.

        Returns:
            One ``PassageReading`` per passage (same order). Fuse ``score`` (probability the
            span is right) or ``margin`` (span minus no-answer logit) with retrieval scores.
        """
        texts = [p.text for p in passages]
        windows = read_windows(self.model, self.tokenizer, question, texts, self.config, self.batch_size,
                               bf16=self.bf16)
        out = []
        for p, wins in zip(passages, windows):
            logit, null_logit, s, e = best_of_windows(wins, self.config.max_answer_tokens)
            if s is None:
                out.append(PassageReading(p, None, None, "", logit, null_logit, 0.0))
                continue
            if self.config.agree_margin > 0:
                logit, s, e = self._agree(question, p.text, wins, logit, s, e)
            s, e = strip_span(p.text, s, e)
            score = calibrated(logit - null_logit, self.config)
            out.append(PassageReading(p, p.start + s, p.start + e, p.text[s:e], logit, null_logit, score))
        return out

    def _agree(self, question: str, text: str, windows: Sequence[WindowLogits], logit: float, s: int, e: int) -> tuple:
        """Prefer the typed rule-based span when the model scores it nearly as high
        (``ReaderConfig.agree_margin``); returns ``(span_logit, start, end)``."""
        scored = scored_typed_alternative(question, text, windows, s, e, self.config.max_answer_tokens)
        if scored is None or not typed_span_wins(scored[0], logit, self.config.agree_margin):
            return logit, s, e
        return scored

    def extract(self, question: str, passages: Sequence[Passage]) -> list[Candidate]:
        """Candidates (one best span per passage), best first, scores in [0, 1].

        Args:
            question: the question.
            passages: retrieved passages.

        Returns:
            Candidates scoring at least ``min_score``, best first; [] when none does.
        """
        cands = []
        for r in self.score_passages(question, passages):
            if r.answer_start is None or r.answer_end <= r.answer_start or r.score < self.min_score:
                continue
            p = r.passage
            s, e = r.answer_start - p.start, r.answer_end - p.start
            ss, se = _sentence_around(p.text, s, e)
            cands.append(
                Candidate(
                    passage=p,
                    sentence_start=p.start + ss,
                    sentence_end=p.start + se,
                    sentence=p.text[ss:se],
                    answer_start=r.answer_start,
                    answer_end=r.answer_end,
                    answer=r.answer,
                    score=r.score,
                    reader=self.name,
                )
            )
        cands.sort(key=lambda c: c.score, reverse=True)
        return cands
