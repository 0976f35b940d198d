"""Model inputs: the question against each passage, long passages cut into overlapping windows."""

from __future__ import annotations

from typing import Sequence

from qa.readers.neural.files import ReaderConfig


def encode_windows(tokenizer, question: str, contexts: Sequence[str], cfg: ReaderConfig) -> dict:
    """Tokenise ``question`` against each context, splitting long contexts into windows.

    Each window is ``[CLS] question [SEP] context piece [SEP]`` of at most ``cfg.max_length``
    tokens; consecutive pieces of one context share ``cfg.stride`` tokens (the fast
    tokenizer's overflowing tokens). The question is first cut to ``cfg.max_question_tokens``
    word pieces.

    Args:
        tokenizer: a fast BERT tokenizer.
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
