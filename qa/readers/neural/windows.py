"""Model inputs: the question against each passage, long passages cut into overlapping windows.

Two tokenizers make the same windows: transformers' fast tokenizer (``files.load_tokenizer``,
the reference, used with the torch model) and ``WordPieceTokenizer``, the same ``tokenizer.json``
driven through the ``tokenizers`` library alone (used with the ONNX model, so that answering
never imports transformers).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from qa.readers.neural.files import ReaderConfig


class WordPieceTokenizer:
    """The reader's ``tokenizer.json`` through the ``tokenizers`` library, no transformers.

    ``encode_windows`` cuts passages with it exactly as transformers' fast tokenizer does
    (truncation of the second sequence with a stride, overflowing windows in order).

    Args:
        path: the reader folder (holding ``tokenizer.json``).

    Example:
        >>> tok = WordPieceTokenizer(MODEL_DIR)                                  # doctest: +SKIP
        >>> encode_windows(tok, "who?", ["a passage"], cfg)["input_ids"][0][:3]  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        from tokenizers import Tokenizer

        self.path = Path(path)
        self._file = str(self.path / "tokenizer.json")
        self._plain = Tokenizer.from_file(self._file)
        self._plain.no_truncation()
        self._plain.no_padding()
        pad = self._plain.token_to_id("[PAD]")
        self.pad_id = pad if pad is not None else 0
        # One configured copy per window shape: changing a shared tokenizer's truncation while
        # another thread encodes with it would race.
        self._windowed: dict[tuple[int, int], object] = {}
        self._lock = threading.Lock()

    def pieces(self, text: str):
        """``text``'s word pieces without special tokens (a ``tokenizers.Encoding``)."""
        return self._plain.encode(text, add_special_tokens=False)

    def windowed(self, max_length: int, stride: int):
        """A tokenizer that cuts the second sequence of a pair into windows of ``max_length``
        tokens sharing ``stride`` tokens, the rest returned as overflowing encodings."""
        key = (max_length, stride)
        with self._lock:
            if key not in self._windowed:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(self._file)
                tok.no_padding()
                tok.enable_truncation(max_length=max_length, stride=stride, strategy="only_second", direction="right")
                self._windowed[key] = tok
            return self._windowed[key]


def encode_windows(tokenizer, question: str, contexts: Sequence[str], cfg: ReaderConfig) -> dict:
    """Tokenise ``question`` against each context, splitting long contexts into windows.

    Each window is ``[CLS] question [SEP] context piece [SEP]`` of at most ``cfg.max_length``
    tokens; consecutive pieces of one context share ``cfg.stride`` tokens (the fast
    tokenizer's overflowing tokens). The question is first cut to ``cfg.max_question_tokens``
    word pieces.

    Args:
        tokenizer: transformers' fast BERT tokenizer or a ``WordPieceTokenizer``.
        question: the question.
        contexts: passage texts.
        cfg: window sizes.

    Returns:
        A dict with ``input_ids``, ``attention_mask``, ``token_type_ids`` (padded lists),
        ``offsets`` (char offsets into the context, None for question, special and padding
        tokens) and ``context_index`` (which context each window came from).
    """
    if not contexts:
        return {"input_ids": [], "attention_mask": [], "token_type_ids": [], "offsets": [], "context_index": []}
    if isinstance(tokenizer, WordPieceTokenizer):
        return _wordpiece_windows(tokenizer, question, contexts, cfg)
    question = _cut_question(tokenizer, question, cfg.max_question_tokens)
    enc = tokenizer(
        [question] * len(contexts), list(contexts), truncation="only_second", max_length=cfg.max_length,
        stride=cfg.stride, return_overflowing_tokens=True, return_offsets_mapping=True, padding=True,
    )
    offsets = [
        [tuple(o) if seq == 1 else None for o, seq in zip(offs, enc.sequence_ids(i))]
        for i, offs in enumerate(enc["offset_mapping"])
    ]
    return {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "token_type_ids": enc["token_type_ids"],
        "offsets": offsets,
        "context_index": list(enc["overflow_to_sample_mapping"]),
    }


def _cut_question(tokenizer, question: str, max_tokens: int) -> str:
    """``question`` cut after its ``max_tokens``-th word piece.

    The cut falls at a piece's end, so the prefix tokenises to exactly those pieces
    (WordPiece matches greedily from the left).
    """
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_tokens:
        return question
    return question[: enc["offset_mapping"][max_tokens - 1][1]]


def _wordpiece_windows(tokenizer: WordPieceTokenizer, question: str, contexts: Sequence[str], cfg: ReaderConfig) -> dict:
    """``encode_windows`` with the ``tokenizers`` library: the same windows, padded the same way."""
    pieces = tokenizer.pieces(question)
    if len(pieces.ids) > cfg.max_question_tokens:
        question = question[: pieces.offsets[cfg.max_question_tokens - 1][1]]
    windowed = tokenizer.windowed(cfg.max_length, cfg.stride)
    # One call per context: encode_batch hands a question's few passages to the library's thread
    # pool, whose start-up costs more than it saves here and waits behind any other busy thread.
    encodings = [windowed.encode(question, c) for c in contexts]
    windows, context_index = [], []
    for ci, enc in enumerate(encodings):
        for w in (enc, *enc.overflowing):
            windows.append(w)
            context_index.append(ci)
    width = max(len(w.ids) for w in windows)
    out: dict = {"input_ids": [], "attention_mask": [], "token_type_ids": [], "offsets": [], "context_index": context_index}
    for w in windows:
        pad = width - len(w.ids)
        out["input_ids"].append(w.ids + [tokenizer.pad_id] * pad)
        out["attention_mask"].append(w.attention_mask + [0] * pad)
        out["token_type_ids"].append(w.type_ids + [0] * pad)
        out["offsets"].append([o if seq == 1 else None for o, seq in zip(w.offsets, w.sequence_ids)] + [None] * pad)
    return out
