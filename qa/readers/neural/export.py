"""The neural reader as an ONNX file, exported once from its safetensors weights.

The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, windows x tokens)
and returns ``start_logits`` and ``end_logits`` (float32, windows x tokens): what transformers'
``AutoModelForQuestionAnswering`` computes over the same weights in fp32. Running it needs only
``onnxruntime`` and ``tokenizers``; exporting it needs torch and transformers, once.

Where the files live: ``<repository>/.cache/models/<reader folder name>-<first 16 hex of the
SHA-256 of the folder's SHA256SUMS>/`` holding ``model.onnx`` (fp32) and, when asked for,
``model-int8.onnx`` (per-channel dynamic int8, made from the fp32 file without torch), beside the embedding model's export
(``index.onnx_model``). ``SHA256SUMS`` lists the SHA-256 of every reader file and the files are
checked against it before an export, so the key changes whenever the weights, the architecture
or the tokenizer do, and hashing it is instant. The file is written under a temporary name and
renamed into place: a reader sees no file or a complete one.

``python -m qa.readers.neural`` exports (or finds) the file and prints its path; ``make setup`` runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import warnings
from pathlib import Path

from index.onnx_model import DEFAULT_CACHE_DIR, OPSET, VARIANTS, cached_variant, check_variant, write_atomically
from qa.readers.neural.files import CHECKSUM_FILE, MODEL_DIR, REQUIRED_FILES, is_available, verify_checksums

ONNX_FILE = VARIANTS["fp32"]


def onnx_dir(path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The cache folder for the ONNX export of the reader in ``path``.

    Raises:
        FileNotFoundError: ``path`` holds no complete reader.
    """
    source = Path(path).resolve()
    if not is_available(source):
        raise FileNotFoundError(f"no neural reader in {source} (needs {', '.join(REQUIRED_FILES)}); pass the folder of "
                                "one (default qa/models/reader) or train one with `python -m qa.train_reader`")
    digest = hashlib.sha256((source / CHECKSUM_FILE).read_bytes()).hexdigest()[:16]
    root = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    return root / f"{source.name}-{digest}"


def export_reader(path: str | Path, target: str | Path) -> Path:
    """Export the reader in ``path`` to ``target`` (ONNX, fp32), after checking its checksums.

    Raises:
        ReaderIntegrityError: a reader file does not match ``SHA256SUMS``.
    """
    import torch

    from qa.readers.neural.runtime import load_torch_model

    source = Path(path)
    verify_checksums(source)
    model = load_torch_model(source, "fp32", eager_attention=True)

    class SpanLogits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.start_logits, out.end_logits

    # A padded example with both segments, so that tracing keeps the mask and the token types.
    ids = torch.full((2, 8), 1000, dtype=torch.long)
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3], dtype=torch.long)
    types = torch.tensor([[0] * 3 + [1] * 5, [0] * 3 + [1] * 2 + [0] * 3], dtype=torch.long)
    dynamic = {0: "windows", 1: "tokens"}

    def write(tmp: Path) -> None:
        # The tracer warns about shape checks that are constant for an encoder (keys = queries).
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                SpanLogits(), (ids, mask, types), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["start_logits", "end_logits"],
                dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "token_type_ids": dynamic,
                              "start_logits": dynamic, "end_logits": dynamic},
                opset_version=OPSET, dynamo=False,
            )

    target = Path(target)
    write_atomically(target, write)
    return target


def exported_reader(path: str | Path | None = None, cache_dir: str | Path | None = None, create: bool = True,
                    variant: str = "fp32") -> Path | None:
    """The ONNX file of the reader in ``path``, exporting it first when missing and ``create`` is true.

    Args:
        path: the reader folder (default: the shipped ``qa/models/reader``).
        cache_dir: where exported models are kept (default: ``.cache/models`` at the repository root).
        create: export when missing (the fp32 graph needs torch and transformers, ~10 s; the int8
            one is quantised from it by onnxruntime); False returns None instead.
        variant: "fp32" or "int8".

    Returns:
        The path of the ONNX file, or None when it is missing and ``create`` is false.
    """
    check_variant(variant)
    source = path if path is not None else MODEL_DIR
    return cached_variant(onnx_dir(source, cache_dir), variant, lambda fp32: export_reader(source, fp32), create)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m qa.readers.neural",
                                     description="Export the neural reader to ONNX (once; later calls reuse the file).")
    parser.add_argument("--reader-dir", default=None, help=f"reader folder (default: {MODEL_DIR})")
    parser.add_argument("--cache-dir", default=None, help=f"default: {DEFAULT_CACHE_DIR}")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="fp32")
    args = parser.parse_args(argv)
    print(exported_reader(args.reader_dir, args.cache_dir, variant=args.variant))
