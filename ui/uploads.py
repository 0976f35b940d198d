"""Uploaded files, copied into the app's own folder under safe names."""

from __future__ import annotations

import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from index import SUPPORTED_SUFFIXES
from index.hashing import sha256_file

DEFAULT_MAX_UPLOAD_BYTES = 20_000_000  # 20 MB per file

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_store_lock = threading.Lock()


@dataclass(frozen=True)
class StoredUploads:
    """What ``store_uploads`` did: the stored paths, and the refused files with reasons."""

    stored: tuple[Path, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()  # (file name as uploaded, reason)


def safe_name(name: str, max_chars: int = 120) -> str:
    """A file name that is safe to create: no folders, no leading dots, only ``[A-Za-z0-9._-]``.

    >>> safe_name("../../etc/My Report (final).PDF")
    'My_Report_final.pdf'
    """
    base = re.split(r"[\\/]", name)[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")[: max_chars] or "upload"
    suffix = _UNSAFE.sub("", suffix).lower()[:16]
    return f"{stem}.{suffix}" if suffix else stem


def store_uploads(paths: list[str | Path], folder: str | Path, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                  names: list[str] | None = None) -> StoredUploads:
    """Copy uploaded files into ``folder`` under safe names.

    A file with the same name and content already there is reused; a different file with
    the same name is never overwritten (the new one gets ``-2``, ``-3``... appended).

    Args:
        paths: the uploaded files (e.g. in Gradio's temporary folder).
        folder: where uploads are kept (created when missing).
        max_bytes: larger files are refused.
        names: the names the user gave the files (default: the names in ``paths``).

    Returns:
        The stored paths, and the refused files with the reason.
    """
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be greater than 0. Currently, max_bytes is {max_bytes}")
    target = Path(folder)
    stored: list[Path] = []
    rejected: list[tuple[str, str]] = []
    for n, p in enumerate(paths):
        src = Path(p)
        shown = names[n] if names and n < len(names) else src.name
        name = safe_name(shown)
        suffix = Path(name).suffix
        if suffix not in SUPPORTED_SUFFIXES:
            rejected.append((shown, f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}"))
            continue
        try:
            size = src.stat().st_size
        except OSError as e:
            rejected.append((shown, f"cannot read the upload ({e.strerror or e})"))
            continue
        if size > max_bytes:
            rejected.append((shown, f"file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB per file"))
            continue
        if size == 0:
            rejected.append((shown, "file is empty"))
            continue
        digest = sha256_file(src)
        with _store_lock:
            target.mkdir(parents=True, exist_ok=True)
            stem = Path(name).stem
            dest, k = target / name, 1
            while dest.exists() and sha256_file(dest) != digest:
                k += 1
                dest = target / f"{stem}-{k}{suffix}"
            if not dest.exists():
                shutil.copyfile(src, dest)
        stored.append(dest.resolve())
    return StoredUploads(stored=tuple(stored), rejected=tuple(rejected))
