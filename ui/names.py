"""The names the page shows for indexed documents: never an absolute path on the server.

A document is shown by its file name; when two documents share a file name, by as many
of the folders above it as tell them apart (``reports/2024/notes.txt``,
``drafts/notes.txt``). ``scrub`` takes absolute paths out of any other text the page
shows (reasons a file was skipped, for instance).

Example:
    >>> names = DocumentNames(["/srv/docs/a/notes.txt", "/srv/docs/b/notes.txt", "/srv/docs/faq.md"])
    >>> names.name("/srv/docs/a/notes.txt"), names.name("/srv/docs/faq.md")
    ('a/notes.txt', 'faq.md')
    >>> names.source("b/notes.txt")
    '/srv/docs/b/notes.txt'
    >>> names.scrub("cannot read /srv/docs/faq.md or /tmp/x/y.pdf")
    'cannot read faq.md or y.pdf'
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath
from typing import Iterable

# An absolute POSIX path of at least two parts, not glued to a word before it ("and/or" stays).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/])/(?:[^\s/'\"]+/)+([^\s/'\"]+)")


def _parts(source: str) -> tuple[str, ...]:
    parts = PurePath(source).parts
    return tuple(p for p in parts if p not in ("/", "\\")) or (source,)


class DocumentNames:
    """Short, unique, path-free names for a set of document sources, and back."""

    def __init__(self, sources: Iterable[str]) -> None:
        self._sources = list(dict.fromkeys(sources))
        depth = {s: 1 for s in self._sources}
        parts = {s: _parts(s) for s in self._sources}
        while True:  # lengthen the names that collide until every name is unique
            shown: dict[str, list[str]] = {}
            for s in self._sources:
                shown.setdefault("/".join(parts[s][-depth[s]:]), []).append(s)
            grow = [s for group in shown.values() if len(group) > 1 for s in group if depth[s] < len(parts[s])]
            if not grow:
                break
            for s in grow:
                depth[s] += 1
        self._name = {s: "/".join(parts[s][-depth[s]:]) for s in self._sources}
        self._by_name = {n: s for s, n in self._name.items()}

    def name(self, source: str) -> str:
        """The name shown for ``source`` (its file name for a source not in the set)."""
        return self._name.get(source) or _parts(source)[-1]

    def source(self, name: str) -> str | None:
        """The source shown as ``name``; None when no document has that name."""
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return [self._name[s] for s in self._sources]

    def scrub(self, text: str, folders: Iterable[str | Path] = ()) -> str:
        """``text`` with every absolute path made a shown name: known sources by their name,
        paths under ``folders`` relative to that folder, any other absolute path by its last part."""
        for s in sorted(self._sources, key=len, reverse=True):
            if s.startswith("/"):
                text = text.replace(s, self._name[s])
        for folder in sorted((str(f).rstrip("/") for f in folders), key=len, reverse=True):
            if folder:
                text = text.replace(folder + "/", "")
        return _ABSOLUTE_PATH.sub(lambda m: m.group(1), text)
