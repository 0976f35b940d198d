"""The neural reader: load the shipped weights, read passages, return scored spans."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.readers.boundaries import correct_span
from qa.readers.neural.agreement import scored_typed_alternative, sentence_around, typed_span_wins
from qa.readers.neural.calibration import calibrated
from qa.readers.neural.decoding import WindowLogits, best_of_windows, read_windows
from qa.readers.neural.export import exported_reader
from qa.readers.neural.files import (MODEL_DIR, READER_CONFIG_FILE, REQUIRED_FILES, ReaderConfig, is_available,
                                     load_tokenizer, verify_checksums)
from qa.readers.neural.precision import resolve_precision
from qa.readers.neural.runtime import OnnxReaderModel, load_torch_model, resolve_backend
from qa.readers.neural.windows import WordPieceTokenizer
from qa.readers.sentences import strip_span
from qa.settings import PRECISIONS
from qa.types import Candidate, Passage


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


class NeuralReader:
    """Extractive span reader trained by ``python -m qa.train_reader`` (a ``qa.readers.base.Reader``).

    Example:
        >>> r = NeuralReader.load()                                  # doctest: +SKIP
        >>> r.extract("who wrote it?", passages)[0].answer           # doctest: +SKIP
    """

    name = "neural"
    reads_passages_apart = True  # each passage is read in its own windows
    _cache: dict[tuple[str, str, str, bool], "NeuralReader"] = {}

    def __init__(self, model, tokenizer, config: ReaderConfig, path: Path, min_score: float = 0.02,
                 batch_size: int | None = None, precision: str = "fp32", boundaries: bool = True):
        """Wrap a loaded model; use ``NeuralReader.load`` instead of calling this directly.

        Args:
            model: an ``OnnxReaderModel``, or the torch question-answering model (eval mode).
            tokenizer: a ``WordPieceTokenizer`` or transformers' fast tokenizer (the same windows).
            config: inference settings and calibration.
            path: folder the weights came from.
            min_score: ``extract`` drops candidates scoring below this (near-certain
                non-answers), so it returns [] when no passage answers at all.
            batch_size: windows per forward pass; None: ``decoding.default_batch_size`` (one
                window per pass on ONNX Runtime, 16 on torch).
            precision: "fp32", "bf16" or "int8" (how ``model`` computes; see ``NeuralReader.load``);
                an ONNX model computes in "fp32" or "int8" (the graph it was given).
            boundaries: correct the best span's boundaries to the sentence's syntax
                (``qa.readers.boundaries``: one sentence, whole brackets, whole names, not the
                question's subject, the place and the role asked for).
        """
        if precision not in PRECISIONS[1:]:
            raise ValueError(f"precision must be one of {PRECISIONS[1:]} here (resolve 'auto' first). Currently, it is {precision!r}")
        self.backend = "onnx" if isinstance(model, OnnxReaderModel) else "torch"
        if self.backend == "onnx" and precision == "bf16":
            raise ValueError("the ONNX reader computes in fp32 or int8; bf16 needs the torch model")
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.path = Path(path)
        self.min_score = min_score
        self.batch_size = batch_size
        self.precision = precision
        self.boundaries = boundaries
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
    def load(cls, path: Path | str | None = None, precision: str = "auto", cached: bool = True, backend: str = "auto",
             cache_dir: Path | str | None = None, boundaries: bool = True) -> NeuralReader:
        """Load the shipped reader (offline), verifying its SHA-256 checksums.

        Args:
            path: reader folder; defaults to ``qa/models/reader``.
            precision: how the reader computes. "fp32"; "bf16" (torch only: weights stay fp32,
                matrix products run in bfloat16: 1.3-1.9x faster where the CPU has AVX512-BF16
                or AMX, within 0.1 F1 of fp32; emulated and slower elsewhere); "int8" (dynamic
                quantisation: on torch of the Linear layers, 1.3-2x as fast as fp32 on this
                project's CPU, 1.9 F1 lower on SQuAD for the shipped reader; on ONNX of the
                graph's matrix products, per channel); "auto" (the default: fp32 on the ONNX
                backend; on torch bf16 where native, else fp32).
            cached: reuse an already loaded reader for the same folder, backend and precision.
            backend: "auto" (the default: ONNX Runtime when the exported graph is there, see
                ``qa.readers.neural.runtime``), "onnx" (exports the graph first when missing) or
                "torch" (the reference).
            cache_dir: where exported graphs are kept (default ``.cache/models``).
            boundaries: correct spans to the sentence's syntax (``qa.readers.boundaries``).

        Returns:
            The reader.

        Raises:
            FileNotFoundError: the weights are not installed.
            ReaderIntegrityError: a file does not match ``SHA256SUMS``.
            ValueError: an unknown precision or backend, or backend "onnx" with precision "bf16".
        """
        d = Path(path) if path is not None else MODEL_DIR
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}. Currently, precision is {precision!r}")
        if not is_available(d):
            raise FileNotFoundError(
                f"the neural reader is not installed in {d} (needs {', '.join(REQUIRED_FILES)}). Reinstall the "
                "package or train it with `python -m qa.train_reader`; or use reader='sentence'."
            )
        backend = resolve_backend(backend, precision, d, cache_dir)
        if backend == "onnx":
            precision = "int8" if precision == "int8" else "fp32"
        else:
            precision = resolve_precision(precision)
        key = (str(d.resolve()), backend, precision, boundaries)
        if cached and key in cls._cache:
            return cls._cache[key]
        verify_checksums(d)
        t0 = time.perf_counter()
        if backend == "onnx":
            onnx_file = exported_reader(d, cache_dir, variant=precision)
            model, tokenizer = OnnxReaderModel(onnx_file), WordPieceTokenizer(d)
        else:
            model, tokenizer = load_torch_model(d, precision), load_tokenizer(d)
        cfg = ReaderConfig.from_dict(json.loads((d / READER_CONFIG_FILE).read_text()))
        reader = cls(model, tokenizer, cfg, d, precision=precision, boundaries=boundaries)
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
            if self.boundaries:
                s, e = correct_span(question, p.text, wins, s, e, self.config.max_answer_tokens)
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

    def extract(self, question: str, passages: Sequence[Passage],
                question_vector: np.ndarray | None = None) -> list[Candidate]:
        """Candidates (one best span per passage), best first, scores in [0, 1].

        Args:
            question: the question.
            passages: retrieved passages.
            question_vector: unused (this reader reads the question's words, not its embedding).

        Returns:
            Candidates scoring at least ``min_score``, best first; [] when none does.
        """
        cands = []
        for r in self.score_passages(question, passages):
            if r.answer_start is None or r.answer_end <= r.answer_start or r.score < self.min_score:
                continue
            p = r.passage
            s, e = r.answer_start - p.start, r.answer_end - p.start
            ss, se = sentence_around(p.text, s, e)
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
