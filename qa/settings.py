"""Answering settings: one explicit object, every default documented."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, replace

READERS = ("auto", "sentence", "neural")
DECIDERS = ("auto", "off")
PRECISIONS = ("auto", "fp32", "bf16", "int8")  # the neural reader's (qa.readers.neural.NeuralReader.load)
READER_BACKENDS = ("auto", "onnx", "torch")  # what runs it (qa.readers.neural.runtime)

# The type each setting must have: (accepted types, what to write instead, allows None).
_INTEGER = ((numbers.Integral,), "a whole number such as 5")
_NUMBER = ((numbers.Real,), "a number such as 0.5")
_TEXT = ((str,), "text such as 'auto'")
_SWITCH = ((bool,), "True or False")
_FIELD_TYPES = {
    "top_k": (*_INTEGER, False), "retrieve_k": (*_INTEGER, False), "rrf_k": (*_INTEGER, False),
    "max_question_chars": (*_INTEGER, False), "min_score": (*_NUMBER, True), "fusion_weight": (*_NUMBER, False),
    "early_exit": (*_NUMBER, False), "reader": (*_TEXT, False), "reader_precision": (*_TEXT, False),
    "reader_backend": (*_TEXT, False), "reader_dir": ((str, os.PathLike), "a folder path", True),
    "decider": (*_TEXT, False), "decider_file": ((str, os.PathLike), "a file path", True),
    "answer_boundaries": (*_SWITCH, False),
}


def _check_type(name: str, value: object) -> None:
    """Refuse a setting of the wrong type (``top_k="5"``) with a message that names it."""
    kinds, fix, optional = _FIELD_TYPES[name]
    if value is None and optional:
        return
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        hint = f"{fix}{' or None' if optional else ''}"
        raise TypeError(f"{name} must be {hint}. Currently, {name} is {value!r} (a {type(value).__name__})")


@dataclass(frozen=True)
class QASettings:
    """How a question is answered.

    Args:
        top_k: passages read and cited per question (default 5).
        retrieve_k: candidates each retriever (dense, BM25) returns before fusion (default 30).
        rrf_k: reciprocal-rank-fusion constant (default 60, as in Cormack et al. 2009).
        min_score: answers scoring below this abstain (``found=False``); in [0, 1]. None (the
            default) uses the reader's own threshold, chosen on held-out training data.
        fusion_weight: how much the reader's span score counts against the retrieval score
            when ranking candidates from different passages (BERTserini-style linear fusion);
            1.0 ranks by the reader alone.
        reader: "sentence" (rule-based span extraction), "neural" (the trained reader),
            or "auto" (the default: neural when its weights are installed, else sentence).
        max_question_chars: longer questions are refused with a clear error.
        reader_precision: arithmetic of the neural reader: "auto" (the default: fp32 on the
            ONNX backend; on torch, bfloat16 matrix products where the CPU has them natively,
            AVX512-BF16 or AMX, else fp32), "fp32", "bf16" (torch only) or "int8". bf16 reads 1.3-1.9x faster there and scores within 0.1 F1
            of fp32 on SQuAD; int8 reads 1.3-2x as fast as fp32 (on a 2-core EPYC) and scores
            1.9 F1 lower on SQuAD for the shipped reader (docs/BENCHMARKS.md).
        reader_backend: what runs the neural reader: "auto" (the default: ONNX Runtime when
            onnxruntime is installed, ``reader_precision`` is not "bf16" and ``make setup`` has
            exported the reader to ``.cache/models``; else torch), "onnx" (exports it first
            when missing; answering then imports neither torch nor transformers) or "torch"
            (transformers over the safetensors weights: the reference, slower to start).
        reader_dir: folder of the neural reader's weights (one written by
            ``python -m qa.train_reader --out DIR``); None: the shipped ``qa/models/reader``.

    Raises:
        TypeError: a setting of the wrong type (``top_k="5"``); the message names it.
        ValueError: a setting out of its range; the message names it and the range.
        early_exit: the neural reader reads the best-retrieved passage alone first and
            answers from it, without reading the other ``top_k - 1``, when its best span
            scores at least this (the reader's calibrated probability that the span is
            right); otherwise it reads the rest and fuses as usual. 1.0 always reads all of
            them. Chosen on held-out training data (docs/BENCHMARKS.md).
        decider: how the engine decides between answering and "not found" when the neural
            reader answers from retrieval. "auto" (the default): the decision model
            (``qa.decision``, fitted on long documents) weighs the reader's score with the
            evidence of every passage read, and ``Answer.score`` is its probability that the
            answer is right; ``min_score`` then applies to that probability. "off": the
            reader's own calibrated score alone, against ``min_score`` or the reader's threshold.
        decider_file: with ``decider="auto"``, the decision model in this JSON file (written by
            ``python -m qa.training.decision --out FILE``) instead of the shipped
            ``qa/models/decider.json``. A reader of your own (``reader_dir``) scores on its own
            scale, so fit one for it: ``python -m qa.training.decision --reader-dir DIR``.
        answer_boundaries: correct the neural reader's span to the sentence's syntax (the default,
            True; ``qa.readers.boundaries``: within one sentence, whole brackets, whole names, not
            the question's subject, the place or the role asked for); False keeps the model's own
            best span.
    """

    top_k: int = 5
    retrieve_k: int = 30
    rrf_k: int = 60
    min_score: float | None = None
    fusion_weight: float = 0.8
    reader: str = "auto"
    max_question_chars: int = 2000
    reader_precision: str = "auto"
    reader_backend: str = "auto"
    reader_dir: str | None = None
    early_exit: float = 0.7
    decider: str = "auto"
    decider_file: str | None = None
    answer_boundaries: bool = True

    def __post_init__(self) -> None:
        for name in _FIELD_TYPES:
            _check_type(name, getattr(self, name))
        if self.top_k <= 0:
            raise ValueError(f"top_k must be greater than 0. Currently, top_k is {self.top_k}")
        if self.retrieve_k < self.top_k:
            raise ValueError(f"retrieve_k must be at least top_k ({self.top_k}). Currently, retrieve_k is {self.retrieve_k}")
        if self.rrf_k <= 0:
            raise ValueError(f"rrf_k must be greater than 0. Currently, rrf_k is {self.rrf_k}")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1]. Currently, min_score is {self.min_score}")
        if not 0.0 <= self.fusion_weight <= 1.0:
            raise ValueError(f"fusion_weight must be in [0, 1]. Currently, fusion_weight is {self.fusion_weight}")
        if self.reader not in READERS:
            raise ValueError(f"reader must be one of {READERS}. Currently, reader is {self.reader!r}")
        if self.reader_precision not in PRECISIONS:
            raise ValueError(f"reader_precision must be one of {PRECISIONS}. Currently, it is {self.reader_precision!r}")
        if self.reader_backend not in READER_BACKENDS:
            raise ValueError(f"reader_backend must be one of {READER_BACKENDS}. Currently, it is {self.reader_backend!r}")
        if self.decider not in DECIDERS:
            raise ValueError(f"decider must be one of {DECIDERS}. Currently, decider is {self.decider!r}")
        if not 0.0 <= self.early_exit <= 1.0:
            raise ValueError(f"early_exit must be in [0, 1] (1.0 reads every passage). Currently, it is {self.early_exit}")
        if self.max_question_chars <= 0:
            raise ValueError(f"max_question_chars must be greater than 0. Currently, it is {self.max_question_chars}")

    def with_overrides(self, **overrides) -> QASettings:
        """A copy with the given fields changed (None values are ignored)."""
        unknown = set(overrides) - set(self.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(self.__dataclass_fields__)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})
