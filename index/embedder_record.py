"""Which embedder built an index, and which one its questions and new documents must use.

The manifest records the embedder backend that made an index's vectors (``"embedder"``:
``"onnx"``, ``"torch"`` or ``"onnx-int8"``; ``"auto"`` is recorded as what it resolved to).
"onnx" and "torch" compute the same vectors (cosine > 0.9999), so they form one family,
"fp32"; "onnx-int8" differs slightly (cosine ~0.993 to fp32) and is the family "int8".

The rules, store-agnostic (every store keeps the manifest as the index hands it over):

- No explicit choice (``"auto"``) on an existing index: the index's own family, "onnx-int8"
  for an int8 index, else "auto" (ONNX Runtime or torch, both fp32). On a new index,
  "onnx-int8" where ONNX Runtime runs (embedding is nearly all of a build's time and int8
  halves it, with the same retrieval and scores within 0.2 F1 on every question set of
  docs/BENCHMARKS.md), else "auto" (torch).
- Adding documents with a backend of another family is refused: one index's vectors come
  from one family, or its dense search compares vectors that do not match.
- Asking with an explicit backend of another family is allowed, with a warning: questions
  then match the vectors a little less well (cosine ~0.993), which is what a comparison of
  the two wants to measure.
- An index built before embedders were recorded holds fp32 vectors (the only kind then).
"""

from __future__ import annotations

FAMILIES = {"onnx": "fp32", "torch": "fp32", "onnx-int8": "int8"}
UNRECORDED_FAMILY = "fp32"  # what every index built before the record holds
NEW_INDEX = "onnx-int8"  # what "auto" builds a new index with where ONNX Runtime runs
KEY = "embedder"  # the manifest key


def family(backend: str) -> str:
    """The family of vectors ``backend`` computes; "auto" becomes "onnx" or "torch", so "fp32"."""
    if backend == "auto":
        return "fp32"
    if backend not in FAMILIES:
        raise ValueError(f"embedder must be one of auto, {', '.join(FAMILIES)}. Currently, embedder is {backend!r}")
    return FAMILIES[backend]


def recorded(manifest: dict | None) -> str | None:
    """The embedder backend the manifest records; None for an empty index or one built before the record."""
    return (manifest or {}).get(KEY)


def stored_family(manifest: dict | None) -> str | None:
    """The family of the vectors an index holds; None when it has no manifest yet (nothing committed)."""
    if manifest is None:
        return None
    backend = recorded(manifest)
    return family(backend) if backend else UNRECORDED_FAMILY


def choose(setting: str, manifest: dict | None, onnx_runs: bool = True) -> str:
    """The backend to run for the setting ``setting`` on an index with ``manifest``: an explicit
    backend as given; "auto" on an int8 index "onnx-int8", on a fp32 index "auto"; "auto" on a
    new index (no manifest) ``NEW_INDEX`` where ONNX Runtime runs (``onnx_runs``), else "auto"."""
    if setting != "auto":
        return setting
    held = stored_family(manifest)
    if held == "int8":
        return "onnx-int8"
    return NEW_INDEX if held is None and onnx_runs else "auto"


def to_record(backend: str, manifest: dict | None) -> str:
    """What the manifest records after a change that embedded with ``backend``: the record
    already there when it is of the same family (an "onnx" index stays "onnx" when torch adds
    to it), else ``backend``."""
    before = recorded(manifest)
    return before if before and family(before) == family(backend) else backend


def describe(manifest: dict | None) -> str:
    """The index's embedder for a person: "onnx-int8 (int8)", "not recorded (fp32)", "none yet"."""
    if manifest is None:
        return "none yet"
    backend = recorded(manifest)
    return f"{backend} ({family(backend)})" if backend else f"not recorded ({UNRECORDED_FAMILY})"


def mismatch(location: str, manifest: dict | None, backend: str) -> str:
    """Why adding to the index at ``location`` with ``backend`` is refused, and what to do."""
    held = describe(manifest)
    own = recorded(manifest) or "auto"
    return (f"The index at {location} holds vectors from the embedder {held}; adding with {backend} "
            f"({family(backend)}) would mix two kinds of vectors in one index. Add without --embedder "
            f"(the index's own is used) or with --embedder {own}, or rebuild the whole index with the "
            f"other one: python -m index build FOLDER --index {location} --rebuild --embedder {backend}")


def query_warning(location: str, manifest: dict | None, backend: str) -> str:
    """The warning for questions embedded with another family than the index's vectors."""
    return (f"Questions are embedded with {backend} ({family(backend)}), the index at {location} holds "
            f"vectors from {describe(manifest)}: retrieval matches slightly less well. Leave the embedder "
            f"at 'auto' to use the index's own.")
