"""What runs the neural reader: ONNX Runtime over the exported graph, or torch over the weights.

Backends (``QASettings.reader_backend``):
    ``"onnx"``   the graph exported once by ``qa.readers.neural.export`` (``make setup``), run by
                 onnxruntime and tokenised by the ``tokenizers`` library: answering imports
                 neither torch nor transformers. Computes in fp32, or in int8 (the graph's
                 per-channel dynamic quantisation); exports the graph first when it is missing.
    ``"torch"``  transformers' model over the safetensors weights: the reference, and the only
                 backend for the "bf16" precision.
    ``"auto"``   ``"onnx"`` when onnxruntime and tokenizers are installed, the precision is not
                 "bf16" and the exported fp32 graph is already there; ``"torch"`` otherwise (a
                 fresh checkout without ``make setup`` answers as before, only slower to start).
"""

from __future__ import annotations

import importlib.util
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from index.embedding import usable_cpus
from index.offline import offline
from qa.readers.neural.files import WEIGHTS_FILE, ReaderIntegrityError

BACKENDS = ("auto", "onnx", "torch")
ONNX_PRECISIONS = ("auto", "fp32", "int8")  # "auto" is fp32 on ONNX


def onnx_installed() -> bool:
    """Whether onnxruntime and tokenizers are importable (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))


def resolve_backend(backend: str, precision: str, path: Path, cache_dir: str | Path | None = None) -> str:
    """``"onnx"`` or ``"torch"``: what ``backend`` means for this reader folder and precision.

    Args:
        backend: "auto", "onnx" or "torch" (see the module docstring).
        precision: the asked precision ("auto", "fp32", "bf16", "int8").
        path: the reader folder.
        cache_dir: where exported graphs are kept (default ``.cache/models``).

    Raises:
        ValueError: an unknown backend, or "onnx" with a precision only torch computes.
        RuntimeError: "onnx" without onnxruntime or tokenizers installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"reader_backend must be one of {BACKENDS}. Currently, it is {backend!r}")
    if backend == "torch":
        return "torch"
    if backend == "onnx":
        if precision not in ONNX_PRECISIONS:
            raise ValueError(f"the ONNX reader computes in fp32 or int8; precision {precision!r} needs "
                             "reader_backend='torch'")
        if not onnx_installed():
            raise RuntimeError("reader_backend='onnx' needs onnxruntime and tokenizers: pip install -r requirements.txt "
                               "(or use reader_backend='torch')")
        return "onnx"
    if precision not in ONNX_PRECISIONS or not onnx_installed():
        return "torch"
    from qa.readers.neural.export import exported_reader

    return "onnx" if exported_reader(path, cache_dir, create=False) is not None else "torch"


class OnnxReaderModel:
    """The exported reader graph in an onnxruntime session.

    Calling it with int64 arrays ``input_ids``, ``attention_mask``, ``token_type_ids`` (windows x
    tokens) returns float32 ``(start_logits, end_logits)`` of the same shape. Safe to call from
    several threads at once. ``map`` reads several such batches side by side.

    Args:
        onnx_file: the exported graph (``qa.readers.neural.export.exported_reader``).
        threads: cores a call may use (default: the CPUs this process may use).
    """

    def __init__(self, onnx_file: str | Path, threads: int | None = None) -> None:
        if threads is not None and threads <= 0:
            raise ValueError(f"threads must be greater than 0. Currently, threads is {threads}")
        from index.onnx_model import cpu_session

        self.onnx_file = Path(onnx_file)
        self.threads = threads or usable_cpus()
        self._session = cpu_session(self.onnx_file, self.threads)
        self._side_by_side: tuple | None = None  # (one-thread session, pool), made on first use
        self._lock = threading.Lock()

    @staticmethod
    def _run(session, input_ids: np.ndarray, attention_mask: np.ndarray,
             token_type_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start, end = session.run(["start_logits", "end_logits"], {
            "input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),
            "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64),
            "token_type_ids": np.ascontiguousarray(token_type_ids, dtype=np.int64),
        })
        return start, end

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                 token_type_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._run(self._session, input_ids, attention_mask, token_type_ids)

    def map(self, batches: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The logits of each ``(input_ids, attention_mask, token_type_ids)`` batch, in order.

        Several batches run side by side, one core each, on an ONNX Runtime session of one
        thread kept for that: a window's matrix products (a few hundred tokens by 384 or 1,536)
        split poorly across cores, so two windows at once finish sooner than two one after the
        other on two cores (21.0 against 24.4-25.2 ms a window on SQuAD questions,
        docs/BENCHMARKS.md). A single batch runs on the session that uses every core: one window
        alone finishes sooner on all of them.
        """
        if len(batches) < 2 or self.threads < 2:
            return [self(*b) for b in batches]
        with self._lock:
            if self._side_by_side is None:
                from index.onnx_model import cpu_session

                self._side_by_side = (cpu_session(self.onnx_file, 1),
                                      ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="reader"))
        single, pool = self._side_by_side
        return list(pool.map(lambda b: self._run(single, *b), batches))


def load_torch_model(path: Path, precision: str = "fp32", eager_attention: bool = False):
    """transformers' question-answering model over the weights in ``path`` (checksums verified by the caller).

    Args:
        path: the reader folder.
        precision: "fp32", "bf16" (weights stay fp32; the caller runs under autocast) or "int8"
            (dynamic quantisation of the Linear layers).
        eager_attention: plain matrix-product attention (what the ONNX export traces).

    Returns:
        The model in eval mode.

    Raises:
        ReaderIntegrityError: the weights do not fit the architecture in ``config.json``.
    """
    offline()
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForQuestionAnswering
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    mcfg = AutoConfig.from_pretrained(str(path), local_files_only=True)
    extra = {"attn_implementation": "eager"} if eager_attention else {}
    # fp32 whatever dtype config.json records: the weights are stored in fp16, and fp16
    # matrix products on a CPU are many times slower than fp32 ones.
    model = AutoModelForQuestionAnswering.from_config(mcfg, dtype=torch.float32, **extra).float()
    state = {k: v.float() for k, v in load_file(str(path / WEIGHTS_FILE)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ReaderIntegrityError(
            f"reader weights in {path} do not fit the model (missing {missing[:3]}, unexpected {list(unexpected)[:3]}); "
            "retrain with `python -m qa.train_reader`."
        )
    model.eval()
    if precision == "int8":
        with warnings.catch_warnings():  # torch marks eager dynamic quantisation deprecated
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


def torch_logits(model, bf16: bool = False):
    """A function like ``OnnxReaderModel.__call__`` (numpy in, float32 numpy logits out) over a torch model.

    Args:
        model: a question-answering model returning ``start_logits``/``end_logits``.
        bf16: compute the matrix products in bfloat16 (``torch.autocast``).
    """
    import torch

    device = next(model.parameters()).device

    def run(input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(input_ids=torch.from_numpy(input_ids).to(device),
                        attention_mask=torch.from_numpy(attention_mask).to(device),
                        token_type_ids=torch.from_numpy(token_type_ids).to(device))
            return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()

    return run
