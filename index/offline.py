"""Offline mode for the model libraries: nothing in this project may reach a model hub."""

from __future__ import annotations

import os


def offline() -> None:
    """Switch the Hugging Face hub and transformers to offline mode for this process.

    Call it before a model or tokenizer is loaded. Values already set in the environment
    are kept (``setdefault``), so a user may still opt in explicitly.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
