"""Several named indexes behind one page: ``python -m ui --index contracts=.index/c --index papers=.index/p``.

Each collection is its own ``qa.Engine``, opened the first time someone picks it and then
shared by every visitor. Each has its own uploads folder (``uploads/NAME/``), so removing
a document from one never deletes a file another one indexed.

Example:
    >>> parse_index_option("papers=.index/papers")
    ('papers', '.index/papers')
    >>> parse_index_option(".index/mine")
    ('', '.index/mine')
    >>> collections = Collections({"contracts": ".index/c", "papers": ".index/p"})
    >>> collections.names, collections.default
    (['contracts', 'papers'], 'contracts')
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import replace
from typing import Callable, Mapping

from qa import Engine
from ui.names import DocumentNames
from ui.settings import UISettings

log = logging.getLogger("ui")

# A collection name: letters, digits, '_', '.', '-', not starting with '.' (it names a folder).
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,63}$")

# What ``qa.Engine`` opens: a folder path, an opened Index, or None for the default index.
Location = object


class CollectionError(ValueError):
    """A collection that cannot be named or opened; the message is the one line users see."""


def parse_index_option(value: str) -> tuple[str, str]:
    """``NAME=LOCATION`` as (name, location); a plain ``LOCATION`` as ("", location).

    Text before the first '=' is a name only when it is a valid one (letters, digits,
    ``_.-``), so a location such as ``milvus://host?collection=x`` stays whole.
    """
    name, sep, location = value.partition("=")
    if sep and _NAME.match(name) and location:
        return name, location
    return "", value


def check_collections(options: list[tuple[str, str]]) -> dict[str, str]:
    """The parsed ``--index`` options as {name: location}, in the order given.

    Raises:
        CollectionError: several options and one has no name, or two share a name.
    """
    if len(options) > 1 and any(not name for name, _ in options):
        unnamed = next(location for name, location in options if not name)
        raise CollectionError(f"--index {unnamed} has no name, and several indexes need one each: "
                              f"write --index NAME={unnamed}")
    out: dict[str, str] = {}
    for name, location in options:
        if name in out:
            raise CollectionError(f"two --index options are named '{name}'; give each collection its own name")
        out[name] = location
    return out


class Collections:
    """Named indexes, each its own Engine, opened on first use and shared by every visitor.

    Args:
        locations: {name: location} in the order the page lists them; the first is the one
            a new visitor sees. A single unnamed collection is ``{"": location}``.
        open_engine: opens the engine of a location (default ``qa.Engine(location)``).
        engines: engines already open, by name (they are not opened again).

    Raises:
        CollectionError: no collection, or a name that is not letters, digits, ``_.-``.
    """

    def __init__(self, locations: Mapping[str, Location], open_engine: Callable[[Location], Engine] | None = None,
                 engines: Mapping[str, Engine] | None = None) -> None:
        self._locations = dict(locations)
        if not self._locations:
            raise CollectionError("no collection to serve; pass --index LOCATION or --index NAME=LOCATION")
        bad = [n for n in self._locations if n and not _NAME.match(n)]
        if bad:
            raise CollectionError(f"collection name {bad[0]!r} must be letters, digits, '_', '.' or '-' "
                                  "(not starting with '.'); rename it")
        self._open = open_engine or Engine
        self._engines: dict[str, Engine] = dict(engines or {})
        self._locks = {name: threading.Lock() for name in self._locations}

    @classmethod
    def of(cls, engine: Engine) -> Collections:
        """One unnamed collection: ``engine``."""
        return cls({"": engine.index}, engines={"": engine})

    @property
    def names(self) -> list[str]:
        return list(self._locations)

    @property
    def default(self) -> str:
        return self.names[0]

    @property
    def named(self) -> bool:
        """Whether the page should offer a choice (any collection has a name)."""
        return any(self._locations)

    def engine(self, name: str) -> Engine:
        """The engine of collection ``name``, opened on first use.

        Raises:
            CollectionError: no collection has that name, or its index cannot be opened (the
                message names no server path; the log has the full error).
        """
        if name not in self._locations:
            raise CollectionError(f"no collection named {name!r}; pick one of: {', '.join(self.names)}")
        with self._locks[name]:
            if name not in self._engines:
                try:
                    self._engines[name] = self._open(self._locations[name])
                except Exception as e:  # the page stays up; this collection reports why
                    log.exception("opening collection %r failed", name)
                    reason = DocumentNames([]).scrub(str(e))
                    raise CollectionError(f"collection {name!r} cannot be opened: {reason}") from None
            return self._engines[name]


def collection_settings(settings: UISettings, name: str) -> UISettings:
    """``settings`` for collection ``name``: its uploads go to ``uploads/NAME/``
    (the unnamed collection keeps ``uploads/``)."""
    return replace(settings, uploads_dir=settings.uploads_dir / name) if name else settings


