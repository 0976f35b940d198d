"""The embedding model as an ONNX file, exported once from the bundled sentence-transformers weights.

The exported graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, batch x
tokens) and returns ``sentence_embedding`` (float32, batch x dimension): the transformer, mean
pooling over the attention mask and L2 normalisation, exactly what the sentence-transformers
pipeline of all-MiniLM-L6-v2 computes. Running it needs only ``onnxruntime`` and ``tokenizers``;
exporting it needs torch and transformers, once.

Where the files live: ``<repository>/.cache/models/<folder name>-<first 16 hex of the SHA-256 of
the weights and config>/`` holding ``model.onnx`` (fp32) and, when asked for, ``model-int8.onnx``
(per-channel dynamic int8). The folder sits beside the checkout rather than inside the virtual
environment because it is derived from one checkout's code (the export wrapper below); it is
git-ignored and keyed by the weights' content, so other weights never
reuse a stale file. Files are written under a temporary name and renamed into place, so a reader
sees either no file or a complete one, and concurrent exports are harmless.

``python -m index.onnx_model`` exports (or finds) the file and prints its path; ``make setup`` runs it.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

DEFAULT_CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "models"
VARIANTS = {"fp32": "model.onnx", "int8": "model-int8.onnx"}
OPSET = 17
_HASHED_FILES = ("model.safetensors", "config.json", "modules.json", "sentence_bert_config.json",
                 "1_Pooling/config.json")


@functools.lru_cache(maxsize=8)
def _source_digest(model_path: Path) -> str:
    digest = hashlib.sha256()
    for name in _HASHED_FILES:
        path = model_path / name
        if not path.exists():
            continue
        digest.update(name.encode())
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]


def cpu_session(onnx_file: str | Path, threads: int):
    """An onnxruntime session over ``onnx_file`` on the CPU, as the project runs every graph:
    ``threads`` intra-op threads, one inter-op, full graph optimisation, and idle workers that
    sleep instead of spinning (a spinning pool takes the cores that a concurrent question, the
    other model or the file reading needs, for no measurable gain on a small machine).
    ``InferenceSession.run`` may be called from several threads at once."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])


def model_dir(model_path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The cache folder for the ONNX files exported from the weights in ``model_path``."""
    source = Path(model_path).resolve()
    if not (source / "model.safetensors").exists():
        raise FileNotFoundError(f"No model.safetensors under {source}; pass the folder of a sentence-transformers model")
    root = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    return root / f"{source.name}-{_source_digest(source)}"


def sentence_config(model_path: str | Path) -> dict:
    """What the sentence-transformers pipeline in ``model_path`` does around the transformer.

    Returns:
        ``{"max_seq_length": int, "dimension": int, "normalize": bool}``.

    Raises:
        ValueError: the pooling is not mean pooling (the only one the exported graph computes).
    """
    source = Path(model_path)
    modules = json.loads((source / "modules.json").read_text())
    pooling_dirs = [m["path"] for m in modules if m["type"].endswith("Pooling")]
    if len(pooling_dirs) != 1:
        raise ValueError(f"{source} has {len(pooling_dirs)} pooling modules; only one mean-pooling module is supported")
    pooling = json.loads((source / pooling_dirs[0] / "config.json").read_text())
    other_modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v and k != "pooling_mode_mean_tokens"]
    if not pooling.get("pooling_mode_mean_tokens") or other_modes:
        raise ValueError(f"{source} pools with {other_modes or 'no mode'}; only mean pooling is supported")
    st_config = json.loads((source / "sentence_bert_config.json").read_text())
    return {
        "max_seq_length": int(st_config["max_seq_length"]),
        "dimension": int(pooling["word_embedding_dimension"]),
        "normalize": any(m["type"].endswith("Normalize") for m in modules),
    }


def write_atomically(target: Path, write) -> None:
    """Call ``write(tmp_path)`` and rename the result to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_fp32(model_path: str | Path, target: str | Path) -> Path:
    """Export the transformer plus pooling and normalisation of ``model_path`` to ``target`` (ONNX, fp32)."""
    from index.offline import offline

    offline()
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    config = sentence_config(model_path)
    encoder = AutoModel.from_pretrained(str(model_path), local_files_only=True, attn_implementation="eager")
    encoder.eval()

    class SentenceEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids):
            tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            if config["normalize"]:
                pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
            return pooled

    # A padded example, so that tracing keeps the attention mask (an all-ones mask may be dropped).
    ids = torch.full((2, 8), 1000, dtype=torch.long)
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3], dtype=torch.long)
    dynamic = {0: "batch", 1: "tokens"}

    def write(tmp: Path) -> None:
        # The tracer warns about shape checks that are constant for an encoder (keys = queries).
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                SentenceEncoder(), (ids, mask, torch.zeros_like(ids)), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["sentence_embedding"],
                dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "token_type_ids": dynamic,
                              "sentence_embedding": {0: "batch"}},
                opset_version=OPSET, dynamo=False,
            )

    target = Path(target)
    write_atomically(target, write)
    return target


def quantize_int8(source: str | Path, target: str | Path) -> Path:
    """Per-channel dynamic int8 quantisation of the fp32 graph ``source`` (weights int8, activations at run time).

    Per-tensor scales lose too much for MiniLM (cosine ~0.93 to fp32); per-channel keeps ~0.995.
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(tmp: Path) -> None:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # its "run pre-processing first" advice is for conv nets
        try:
            quantize_dynamic(str(source), str(tmp), per_channel=True, weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)

    target = Path(target)
    write_atomically(target, write)
    return target


def exported_model(model_path: str | Path, variant: str = "fp32", cache_dir: str | Path | None = None,
                   create: bool = True) -> Path | None:
    """The ONNX file for ``model_path``, exporting it first when it is missing and ``create`` is true.

    Args:
        model_path: folder of the sentence-transformers model (weights, tokenizer.json, modules.json).
        variant: "fp32" or "int8".
        cache_dir: where exported models are kept (default: ``.cache/models`` at the repository root).
        create: export when missing (needs torch); False returns None instead.

    Returns:
        The path of the ONNX file, or None when it is missing and ``create`` is false.
    """
    check_variant(variant)
    return cached_variant(model_dir(model_path, cache_dir), variant, lambda fp32: export_fp32(model_path, fp32), create)


def check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}. Currently, variant is {variant!r}")


def cached_variant(folder: Path, variant: str, export: Callable[[Path], object], create: bool) -> Path | None:
    """The ``variant`` file in the export folder ``folder``, made when missing and ``create`` is true:
    the fp32 graph by ``export(path)``, the int8 one quantised from it. None when missing and not ``create``."""
    target = folder / VARIANTS[variant]
    if target.exists():
        return target
    if not create:
        return None
    fp32 = folder / VARIANTS["fp32"]
    if not fp32.exists():
        export(fp32)
    if variant == "int8":
        quantize_int8(fp32, target)
    return target


def main(argv: list[str] | None = None) -> None:
    from index.embedding import bundled_model_path

    parser = argparse.ArgumentParser(prog="python -m index.onnx_model",
                                     description="Export the embedding model to ONNX (once; later calls reuse the file).")
    parser.add_argument("--model-path", default=None, help="model folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="fp32")
    parser.add_argument("--cache-dir", default=None, help=f"default: {DEFAULT_CACHE_DIR}")
    args = parser.parse_args(argv)
    print(exported_model(args.model_path or bundled_model_path(), args.variant, args.cache_dir))


if __name__ == "__main__":
    main()
