"""SHA-256 of bytes and of files: the one place the project computes content hashes."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

_BLOCK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Lower-case hex SHA-256 of a regular file's content, read in 1 MiB blocks.

    The file is opened without blocking and checked to be a regular file before a byte
    is read, so a FIFO or device under a document's name cannot hang the caller.

    Args:
        path: the file.

    Returns:
        The hex digest.

    Raises:
        OSError: the file cannot be opened or read, or is not a regular file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{os.fsdecode(path)!r} is not a regular file")
        h = hashlib.sha256()
        while block := os.read(fd, _BLOCK):
            h.update(block)
        return h.hexdigest()
    finally:
        os.close(fd)
