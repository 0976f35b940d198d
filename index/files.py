"""Walking a folder for indexing: which files to read, and why every other entry is left out.

Nothing under the folder ends the walk. Each entry either becomes a file to read or a
``(name, reason)`` pair a person can act on:

* hidden files and folders (names starting with ``.``): reported once, a hidden folder
  once for everything inside it;
* names that are not valid UTF-8: reported under a printable name (the bad bytes shown
  as ``\\xNN``) and not indexed, because a source name is stored, shown and cited as text;
* symbolic link loops and links whose target is gone: reported, never followed;
* FIFOs, sockets and devices: reported as "not a regular file" and never opened;
* a file or folder reached a second time (through a link or a hard link): reported once
  as the same as the first;
* unsupported file types: left out silently by default (``build`` does so), reported with
  ``report_unsupported=True``.

Links are followed, to files and to folders. A file is indexed under the name it has in the
folder, a link under its own name even when its target lies elsewhere (see ``source_name``),
so the file leaves the index when the link goes; ``ScanResult.links`` lists the links whose
target lies outside the folder, with that target.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")


@dataclass(frozen=True)
class ScanResult:
    """What ``scan`` found under a folder.

    Example:
        >>> result = scan("my-documents")                    # doctest: +SKIP
        >>> [p.name for p in result.files]                   # doctest: +SKIP
        ['a.txt', 'b.pdf']
        >>> result.skipped                                    # doctest: +SKIP
        (('/home/me/my-documents/.git', 'hidden folder (...)'),)

    Attributes:
        files: regular files to read, as found under the folder (links not resolved),
            in a stable order: each folder's files by name, then its sub-folders by name,
            depth first; files reached through links come after all the others.
        skipped: ``(name, reason)`` for every entry left out; ``name`` is the absolute path
            where it was found, printable even when the file name is not valid UTF-8.
        links: ``(path found under the folder, resolved target)`` for each file in ``files``
            reached through a link whose target lies outside the folder.
    """

    files: tuple[Path, ...]
    skipped: tuple[tuple[str, str], ...]
    links: tuple[tuple[Path, str], ...] = ()


def source_name(path: str | Path, root: str | Path | None = None) -> str:
    """The name a file is indexed under: its absolute path as found, the folders above it resolved.

    The file's own name is not resolved, so a symbolic link is indexed (and removed) under the
    name it has in the folder, even when its target lies elsewhere; a link that loops gets a
    name too. With ``root``, ``path`` is a file found under that folder, and only ``root`` is
    resolved.
    """
    p = Path(path).expanduser()
    try:
        if root is not None:
            return str(Path(root).expanduser().resolve() / p.relative_to(root))
        p = p.absolute()
        return str(p.parent.resolve() / p.name)
    except RuntimeError:  # "Symlink loop" among the folders above it (Python < 3.13)
        return os.path.abspath(p)


def printable_name(path: str | Path) -> str:
    """``path`` as text that can be printed, stored and shown: undecodable bytes become ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_valid_name(name: str) -> bool:
    """True when ``name`` came from valid UTF-8 bytes (no surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def describe_mode(mode: int) -> str:
    """What kind of non-regular file ``mode`` describes, in words."""
    for test, words in _SPECIAL:
        if test(mode):
            return words
    return "not a file or folder"


def scan(folder: str | Path, *, report_unsupported: bool = False) -> ScanResult:
    """Every file under ``folder`` that can be indexed, and every entry that cannot, with why.

    Args:
        folder: the folder to walk.
        report_unsupported: also report files whose type cannot be read (``.png``, ...);
            by default they are left out without a word, as a folder of documents often
            holds other things.

    Returns:
        A ``ScanResult``.

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"{printable_name(root)} is not a folder; pass a folder of documents")
    walker = _Walker(root, report_unsupported)
    walker.run()
    return ScanResult(tuple(walker.files), tuple(walker.skipped), tuple(walker.links))


class _Walker:
    def __init__(self, root: Path, report_unsupported: bool) -> None:
        self.root = root
        self.root_real = os.path.realpath(root)
        self.report_unsupported = report_unsupported
        self.files: list[Path] = []
        self.skipped: list[tuple[str, str]] = []
        self.links: list[tuple[Path, str]] = []
        self.seen_dirs: dict[tuple[int, int], str] = {}
        self.seen_files: dict[tuple[int, int], str] = {}

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.append((printable_name(os.path.abspath(path)), reason))

    def run(self) -> None:
        """Walk real folders first and follow links after, so that a file or folder reached both
        directly and through a link is listed under its real path and the link is the one reported."""
        st = os.stat(self.root)
        self.seen_dirs[(st.st_dev, st.st_ino)] = printable_name(os.path.abspath(self.root))
        stack, links = [self.root], []
        while stack or links:
            if not stack:
                path = links.pop(0)
                if self.classify(path, path.name) == "dir":
                    stack.append(path)
                continue
            folder = stack.pop()
            subfolders = []
            for name in self.list_folder(folder):
                path = folder / name
                if path.is_symlink():
                    links.append(path)
                elif self.classify(path, name) == "dir":
                    subfolders.append(path)
            stack.extend(reversed(subfolders))

    def list_folder(self, folder: Path) -> list[str]:
        try:
            with os.scandir(folder) as it:
                return sorted(e.name for e in it)
        except OSError as e:
            self.skip(folder, f"cannot list this folder: {e.strerror or e}")
            return []

    def classify(self, path: Path, name: str) -> str | None:
        """Record ``path`` as a file or a skip; return "dir" for a folder to walk into."""
        folder = os.path.isdir(path)
        what = "folder" if folder else "file"
        if not is_valid_name(name):
            self.skip(path, f"the {what} name is not valid UTF-8; rename it to index it")
            return None
        if name.startswith("."):
            inside = "; nothing inside it is indexed" if folder else ""
            self.skip(path, f"hidden {what} (names starting with '.' are not indexed{inside})")
            return None
        try:
            st = os.stat(path)
        except OSError as e:
            self.skip(path, _stat_error(path, e))
            return None
        folder = stat.S_ISDIR(st.st_mode)
        key = (st.st_dev, st.st_ino)
        if folder:
            first = self.seen_dirs.get(key)
            if first is not None:
                real = os.path.realpath(path)
                loop = (os.path.realpath(path.parent) + os.sep).startswith(real + os.sep)
                self.skip(path, f"symbolic link loop back to {first}" if loop else f"the same folder as {first}, already read")
                return None
            self.seen_dirs[key] = printable_name(os.path.abspath(path))
            return "dir"
        if not stat.S_ISREG(st.st_mode):
            self.skip(path, f"not a regular file ({describe_mode(st.st_mode)}); it is never opened")
            return None
        suffix = path.suffix.lower()  # the loader picks the format by the name it is given
        if suffix not in SUPPORTED_SUFFIXES:
            if self.report_unsupported:
                self.skip(path, f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
            return None
        first = self.seen_files.get(key)
        if first is not None:
            self.skip(path, f"the same file as {first}, already listed")
            return None
        self.seen_files[key] = printable_name(os.path.abspath(path))
        self.files.append(path)
        if path.is_symlink():
            target = os.path.realpath(path)
            if not (target + os.sep).startswith(self.root_real + os.sep):
                self.links.append((path, target))
        return None


def _stat_error(path: Path, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop (the link leads back to itself); remove or fix the link"
    if e.errno == errno.ENOENT:
        if os.path.islink(path):
            try:
                target = printable_name(os.readlink(path))
            except OSError:
                target = "?"
            return f"broken symbolic link (its target {target} does not exist)"
        return "vanished while the folder was read"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; give read access to index it"
    return f"cannot read: {e.strerror or e}"
