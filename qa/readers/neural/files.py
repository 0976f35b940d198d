"""The neural reader's folder: its files, their SHA-256 checksums, its settings and tokenizer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from index.hashing import sha256_file
from index.offline import offline

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "reader"
WEIGHTS_FILE = "model.safetensors"
CHECKSUM_FILE = "SHA256SUMS"
READER_CONFIG_FILE = "reader.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
# What a reader folder must hold to be loaded (the tokenizer needs tokenizer.json alone).
REQUIRED_FILES = (WEIGHTS_FILE, CHECKSUM_FILE, READER_CONFIG_FILE, "config.json", "tokenizer.json")
_FIX = "Reinstall the package (or restore qa/models/reader/ from git), or retrain with `python -m qa.train_reader`."


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
        agree_margin: when the rule-based span finder (``qa.readers.spans.extract_span``)
            finds a span of the asked type ("who is X?" -> the title before the name,
            "when" -> a date, ...) in the sentence of the neural answer, and the neural span
            logit of that span is within this many logits of the best, the typed span wins.
            0 turns it off. Chosen on qa-train's held-out slice (docs/READER.md).
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
    if not sums.is_file():
        raise ReaderIntegrityError(f"{sums} is missing, so the reader weights cannot be verified. {_FIX}")
    listed = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            listed[name.strip()] = digest
    if WEIGHTS_FILE not in listed:
        raise ReaderIntegrityError(f"{sums} does not list {WEIGHTS_FILE}. {_FIX}")
    for name, digest in listed.items():
        p = model_dir / name
        if not p.is_file():
            raise ReaderIntegrityError(f"reader file {p} is missing. {_FIX}")
        actual = sha256_file(p)
        if actual != digest:
            raise ReaderIntegrityError(
                f"reader file {p} is corrupted: SHA-256 {actual[:16]}... does not match the expected {digest[:16]}.... {_FIX}"
            )


def is_available(path: Path | str | None = None) -> bool:
    """Whether the trained reader's weights are installed (files present; not hashed).

    Args:
        path: reader folder; defaults to ``qa/models/reader``.

    Returns:
        True when weights, checksums, config and tokenizer are all present.
    """
    d = Path(path) if path is not None else MODEL_DIR
    return all((d / n).is_file() for n in REQUIRED_FILES)


def load_tokenizer(path: Path | str):
    """The fast WordPiece tokenizer stored in ``path``, loaded offline.

    Args:
        path: a folder with ``tokenizer.json``.

    Returns:
        A ``PreTrainedTokenizerFast``.
    """
    offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)
