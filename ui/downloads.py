"""Files the page offers for download: written where the web server may serve them, deleted after.

Each file goes into a fresh folder of its own (so the browser saves it under its plain
name, ``conversation.md``) inside ``folder``, the web server's cache. A visitor's file is
replaced when it changes and deleted when the visitor leaves (``discard``).

Example:
    >>> exports = Exports(tmp)                                    # doctest: +SKIP
    >>> path = exports.write("conversation.md", "# Conversation\\n")  # doctest: +SKIP
    >>> exports.discard(path)                                     # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path


class Exports:
    """Download files under ``folder``, one folder each; ``discard`` only ever deletes those."""

    PREFIX = "export-"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).resolve()

    def write(self, name: str, text: str, previous: str | None = None) -> str:
        """Write ``text`` as ``name`` in a new folder; ``previous`` (an earlier file) is deleted.

        Returns:
            The file's path.
        """
        self.discard(previous)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=self.PREFIX, dir=self.folder)) / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    def discard(self, path: str | None) -> None:
        """Delete ``path`` and its folder when it is one of these exports; anything else is left alone."""
        if not path:
            return
        p = Path(path).resolve()
        if p.parent.parent != self.folder or not p.parent.name.startswith(self.PREFIX):
            return
        p.unlink(missing_ok=True)
        try:
            p.parent.rmdir()
        except OSError:
            pass
