"""Keep an index in step with a folder: files that appear, change, move or go are indexed or dropped.

A watchdog observer reports file-system events; this module only collects the paths they
name. One worker thread turns them into index updates, so updates never overlap:

* **Debounce.** Editors save in bursts (write a temporary file, rename it over the old one,
  touch it again). Changes are applied once no event has arrived for ``debounce`` seconds
  (or at the latest ``max_wait`` seconds after the first one), as one update.
* **Settle.** A file is read only once its size and modification time have stayed the same
  for ``settle`` seconds, so a file that is still being copied or downloaded is picked up
  when it is whole, not half-written.
* **What a path means is decided when the update runs.** A path that is a file then is
  indexed (``Index.add`` skips it when its content is unchanged); a path that is gone is
  dropped. A rename is therefore "drop the old name, index the new one", and a deleted or
  moved-away folder drops every indexed file under it.

Which files are ignored (``is_ignored``), relative to the watched folder:

* any part of the path that starts with ``.``: hidden files and folders, and with them most
  editors' swap and lock files (``.notes.txt.swp``, ``.~lock.report.docx#``, ``.git/``);
* a file name that starts with ``~`` (Office's owner files ``~$report.docx``, ``~WRL0001.tmp``),
  ends with ``~`` (backups, ``notes.txt~``), or starts and ends with ``#`` (Emacs auto-save);
* a name made only of digits (Vim's ``4913`` write probe);
* a name ending in a temporary suffix (``TEMPORARY_SUFFIXES``: ``.swp``, ``.tmp``, ``.part``,
  ``.crdownload``, ...);
* anything inside the index's own folder, when that lies under the watched one.

Files of other types than ``SUPPORTED_SUFFIXES`` are not indexed, as with ``build``.

Example:
    >>> from index import Index                                              # doctest: +SKIP
    >>> from index.watch import FolderWatcher                                # doctest: +SKIP
    >>> index = Index.open(".index/mine", create=True)                       # doctest: +SKIP
    >>> with FolderWatcher(index, "my-documents/", on_change=print):        # doctest: +SKIP
    ...     input("watching; Enter stops")
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from watchdog import events as ev
from watchdog.observers import Observer

from index import SUPPORTED_SUFFIXES, Index, IndexReport, IndexSettings
from index.background import model_threads

log = logging.getLogger("index.watch")

TEMPORARY_SUFFIXES = (
    ".swp", ".swo", ".swx", ".tmp", ".temp", ".part", ".partial", ".crdownload",
    ".download", ".filepart", ".kate-swp", ".lock",
)


def is_ignored(relative: str | Path) -> bool:
    """True for a hidden or temporary file (the rule is in the module docstring).

    Args:
        relative: the file's path relative to the watched folder.
    """
    parts = Path(relative).parts
    if not parts:
        return True
    if any(part.startswith(".") for part in parts):
        return True
    name = parts[-1]
    lower = name.lower()
    return (
        name.startswith("~")
        or name.endswith("~")
        or (len(name) > 1 and name.startswith("#") and name.endswith("#"))
        or name.isdigit()
        or lower.endswith(TEMPORARY_SUFFIXES)
    )


def merge_reports(reports: list[IndexReport]) -> IndexReport:
    """One report for several index calls made in one update."""
    return IndexReport(
        indexed=tuple(s for r in reports for s in r.indexed),
        unchanged=tuple(s for r in reports for s in r.unchanged),
        skipped=tuple(s for r in reports for s in r.skipped),
        removed=tuple(s for r in reports for s in r.removed),
        chunks_added=sum(r.chunks_added for r in reports),
        chunks_removed=sum(r.chunks_removed for r in reports),
    )


def _changed(report: IndexReport) -> bool:
    return bool(report.indexed or report.removed or report.skipped)


@dataclass
class _Seen:
    """A file waiting to settle: its (size, mtime) when last looked at, and since when."""

    stat: tuple[int, int] | None = None
    since: float = 0.0
    touched: int = 0  # number of the last event that named it


class _Collector(ev.FileSystemEventHandler):
    """Runs on the observer's thread: hands each event's paths to the watcher, nothing more."""

    def __init__(self, watcher: FolderWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: ev.FileSystemEvent) -> None:
        w = self.watcher
        if isinstance(event, ev.EventsLostEvent):
            w._note(rescan=True)
        elif isinstance(event, ev.DirMovedEvent):
            w._note(gone_dirs=[event.src_path], new_dirs=[event.dest_path])
        elif isinstance(event, ev.DirDeletedEvent):
            w._note(gone_dirs=[event.src_path])
        elif isinstance(event, ev.DirCreatedEvent):
            w._note(new_dirs=[event.src_path])
        elif isinstance(event, ev.FileMovedEvent):
            w._note(files=[event.src_path, event.dest_path])
        elif isinstance(event, (ev.FileCreatedEvent, ev.FileModifiedEvent, ev.FileDeletedEvent, ev.FileClosedEvent)):
            w._note(files=[event.src_path])
        # Opened, closed-without-writing and attribute events change no content; the index
        # itself opens files when it reads them, so reacting to those would loop.


class FolderWatcher:
    """Keeps ``index`` in step with ``folder`` until stopped.

    Args:
        index: the index to change; other threads may read it meanwhile (the store locks).
        folder: the folder to watch, with its subfolders.
        debounce: seconds without events before changes are applied (default 1.0).
        settle: seconds a file's size and modification time must stay unchanged before it is
            read (default 2.0).
        on_change: called on the worker thread with the ``IndexReport`` of each update that
            indexed, dropped or skipped something.
        max_wait: apply changes at the latest this many seconds after the first of a burst,
            even while events keep coming (default: ``max(10 * debounce, 5)``).
        rescan_above: when more paths than this changed at once (or the operating system
            dropped events), the update is one ``build`` of the folder instead (default 200).
        background: run the embedding model at low CPU priority (threads of its own), for a
            process that answers questions meanwhile (``python -m ui --watch``); see
            ``index.background``.

    Example:
        >>> watcher = FolderWatcher(index, "docs/", debounce=0.5)   # doctest: +SKIP
        >>> watcher.start()                                         # doctest: +SKIP
        >>> watcher.stop()                                          # doctest: +SKIP
    """

    def __init__(self, index: Index, folder: str | Path, debounce: float = 1.0, settle: float = 2.0,
                 on_change: Callable[[IndexReport], None] | None = None, max_wait: float | None = None,
                 rescan_above: int = 200, background: bool = False) -> None:
        if debounce < 0:
            raise ValueError(f"debounce must be 0 or more seconds. Currently, debounce is {debounce}")
        if settle < 0:
            raise ValueError(f"settle must be 0 or more seconds. Currently, settle is {settle}")
        if rescan_above < 1:
            raise ValueError(f"rescan_above must be greater than 0. Currently, rescan_above is {rescan_above}")
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is not a folder; pass the folder of documents to watch")
        self.index = index
        self.folder = root.resolve()
        self.debounce = float(debounce)
        self.settle = float(settle)
        self.max_wait = float(max_wait) if max_wait is not None else max(10 * self.debounce, 5.0)
        if self.max_wait < self.debounce:
            raise ValueError(f"max_wait must be at least debounce ({self.debounce}). Currently, max_wait is {self.max_wait}")
        self.rescan_above = rescan_above
        self.background = background
        self.on_change = on_change
        self.ready = threading.Event()  # set once the first build of the folder is done
        self.error: BaseException | None = None  # what stopped the worker, if anything did
        self._index_dir = Path(getattr(index, "path", self.folder / ".index")).expanduser().resolve()
        self._cond = threading.Condition()
        self._files: dict[str, _Seen] = {}
        self._gone_dirs: set[str] = set()
        self._new_dirs: set[str] = set()
        self._rescan = False
        self._fresh = False  # events arrived since the last update
        self._first_event = 0.0
        self._last_event = 0.0
        self._recheck_at: float | None = None  # when a file still settling is looked at again
        self._seq = 0  # events noted so far
        self._stopping = False
        self._observer: Observer | None = None
        self._worker: threading.Thread | None = None

    # ---- life cycle ----------------------------------------------------------------------------

    def start(self) -> FolderWatcher:
        """Start watching. The worker first builds the folder (catching what changed while
        nothing watched), then follows events; ``ready`` is set after that first build."""
        if self._worker is not None:
            raise RuntimeError("this watcher was already started; make a new FolderWatcher to watch again")
        observer = Observer()
        observer.schedule(_Collector(self), str(self.folder), recursive=True)
        observer.daemon = True
        try:
            observer.start()  # before the first build, so nothing changed during it is missed
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EMFILE):
                raise OSError(e.errno, f"cannot watch {self.folder}: the system's limit on watched folders is reached; "
                              "raise it (sysctl fs.inotify.max_user_watches=524288) or watch a smaller folder") from e
            raise
        self._observer = observer
        self._worker = threading.Thread(target=self._run, name=f"watch {self.folder}", daemon=True)
        self._worker.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop watching; an update in progress is finished first. Changes not yet applied are
        caught by the first build of the next start."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout)

    def __enter__(self) -> FolderWatcher:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def run_forever(self) -> None:
        """Watch until Ctrl-C (KeyboardInterrupt), then stop cleanly.

        Raises:
            Whatever stopped the worker (e.g. an index that cannot be written).
        """
        if self._worker is None:
            self.start()
        try:
            while self._worker.is_alive():
                self._worker.join(0.5)  # a timeout, so that Ctrl-C reaches this thread
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
        if self.error is not None:
            raise self.error

    # ---- collecting (observer thread) ----------------------------------------------------------

    def _note(self, files=(), gone_dirs=(), new_dirs=(), rescan: bool = False) -> None:
        files = [f for f in files if self._watched(f)]
        gone_dirs = [d for d in gone_dirs if self._watched(d, is_dir=True)]
        new_dirs = [d for d in new_dirs if self._watched(d, is_dir=True)]
        if not (files or gone_dirs or new_dirs or rescan):
            return
        now = time.monotonic()
        with self._cond:
            self._seq += 1
            for f in files:
                self._files.setdefault(os.fsdecode(f), _Seen()).touched = self._seq
            self._gone_dirs.update(os.fsdecode(d) for d in gone_dirs)
            self._new_dirs.update(os.fsdecode(d) for d in new_dirs)
            self._rescan = self._rescan or rescan
            if not self._fresh:
                self._first_event = now
            self._fresh = True
            self._last_event = now
            self._cond.notify_all()

    def _watched(self, path: str | bytes, is_dir: bool = False) -> bool:
        p = Path(os.fsdecode(path))
        try:
            relative = p.relative_to(self.folder)
        except ValueError:
            return False
        if p == self._index_dir or self._index_dir in p.parents:
            return False
        if is_dir:
            return not any(part.startswith(".") for part in relative.parts)
        return not is_ignored(relative)

    # ---- applying (worker thread) --------------------------------------------------------------

    def _due(self, now: float) -> float | None:
        """Seconds until the next update is due (0: now), None when nothing waits."""
        waits = []
        if self._fresh:
            waits.append(min(self._last_event + self.debounce, self._first_event + self.max_wait) - now)
        if self._recheck_at is not None:
            waits.append(self._recheck_at - now)
        return max(0.0, min(waits)) if waits else None

    def _run(self) -> None:
        model = None
        try:
            if self.background:
                model = model_threads()
                self.index = self.index.with_embedder(self.index.embedder.running_on(model))
            self._apply(self._initial_build())
            self.ready.set()
            while True:
                with self._cond:
                    while not self._stopping:
                        wait = self._due(time.monotonic())
                        if wait == 0.0:
                            break
                        self._cond.wait(wait)
                    if self._stopping:
                        return
                    self._fresh = False
                    self._recheck_at = None
                    rescan, self._rescan = self._rescan, False
                    gone_dirs, self._gone_dirs = self._gone_dirs, set()
                    new_dirs, self._new_dirs = self._new_dirs, set()
                self._update(rescan, gone_dirs, new_dirs)
        except BaseException as e:  # the worker's end must be visible to whoever runs it
            self.error = e
            log.error("stopped watching %s: %s", self.folder, e)
            if self._observer is not None:
                self._observer.stop()
        finally:
            if model is not None:
                model.shutdown(wait=False)
            self.ready.set()

    def _initial_build(self) -> IndexReport:
        report = self.index.build(self.folder, quiet=True)
        return merge_reports([self._without_ignored(report), self._drop_missing()])

    def _update(self, rescan: bool, gone_dirs: set[str], new_dirs: set[str]) -> None:
        for d in new_dirs:  # a folder moved or copied in: its files may bring no events of their own
            found = [str(p) for p in _walk(Path(d)) if self._watched(p)]
            with self._cond:
                for f in found:
                    self._files.setdefault(f, _Seen())
        with self._cond:
            seen_up_to = self._seq
        ready, gone = self._sort_pending()
        try:
            if rescan or len(ready) + len(gone) > self.rescan_above:
                report = self.index.build(self.folder, quiet=True)
                report = merge_reports([self._without_ignored(report), self._drop_missing()])
            else:
                reports = []
                if ready:
                    reports.append(self.index.add(ready, quiet=True))
                indexed = {d.source for d in self.index.documents()}
                drop = [s for s in gone if s in indexed]
                for d in gone_dirs:
                    drop += [s for s in indexed if _under(s, d) and not os.path.isfile(s)]
                if drop:
                    reports.append(self.index.remove(sorted(set(drop))))
                report = merge_reports(reports)
        except Exception as e:  # noqa: BLE001 - one failed update must not end the watch
            log.error("could not update the index from %s (%s); these files are tried again when they change "
                      "next or when watching starts again", self.folder, e)
            report = None
        finally:
            with self._cond:  # done with, unless an event named them again meanwhile
                for f in ready + gone:
                    seen = self._files.get(f)
                    if seen is not None and seen.touched <= seen_up_to:
                        del self._files[f]
        if report is not None:
            self._apply(report)

    def _sort_pending(self) -> tuple[list[str], list[str]]:
        """Split the pending paths into files ready to read, paths gone, and files still settling."""
        with self._cond:
            pending = dict(self._files)
        ready, gone = [], []
        now, wall = time.monotonic(), time.time()
        next_look: float | None = None
        for path, seen in sorted(pending.items()):
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                gone.append(path)
                continue
            except OSError as e:  # unreadable: given up until its next change
                log.warning("cannot look at %s (%s); it is tried again when it changes", path, e)
                with self._cond:
                    self._files.pop(path, None)
                continue
            if not os.path.isfile(path) or not path.lower().endswith(SUPPORTED_SUFFIXES):
                with self._cond:
                    self._files.pop(path, None)
                continue
            stat = (st.st_size, st.st_mtime_ns)
            if stat != seen.stat:
                seen.stat, seen.since = stat, now
            quiet_for = max(now - seen.since, wall - st.st_mtime_ns / 1e9)
            if quiet_for >= self.settle:
                ready.append(path)
            else:
                look = now + max(self.settle - quiet_for, 0.05)
                next_look = look if next_look is None else min(next_look, look)
        if next_look is not None:
            with self._cond:
                self._recheck_at = next_look if self._recheck_at is None else min(self._recheck_at, next_look)
        return ready, gone

    def _without_ignored(self, report: IndexReport) -> IndexReport:
        """``build`` reads every supported file; leave out what this watcher ignores."""
        ignored = [s for s in report.indexed if not self._watched(s)]
        if ignored:
            self.index.remove(ignored)
        return IndexReport(
            indexed=tuple(s for s in report.indexed if s not in ignored),
            unchanged=report.unchanged,
            skipped=tuple((s, r) for s, r in report.skipped if self._watched(s)),
            removed=report.removed,
            chunks_added=report.chunks_added,
            chunks_removed=report.chunks_removed,
        )

    def _drop_missing(self) -> IndexReport:
        """Drop documents indexed under the folder whose file is gone (or now ignored)."""
        prefix = str(self.folder)
        stale = [d.source for d in self.index.documents()
                 if _under(d.source, prefix) and (not os.path.isfile(d.source) or not self._watched(d.source))]
        return self.index.remove(stale) if stale else IndexReport()

    def _apply(self, report: IndexReport) -> None:
        if not _changed(report):
            return
        names = [f"+{self._short(s)}" for s in report.indexed] + [f"-{self._short(s)}" for s in report.removed]
        names += [f"!{self._short(s)}" for s, _ in report.skipped]
        log.info("%s: %s: %s", self.folder, report.summary(), " ".join(names))
        if self.on_change is not None:
            try:
                self.on_change(report)
            except Exception:  # noqa: BLE001 - a failing listener must not end the watch
                log.exception("on_change failed for an update of %s", self.folder)

    def _short(self, source: str) -> str:
        try:
            return str(Path(source).relative_to(self.folder))
        except ValueError:
            return source


def _under(source: str, folder: str) -> bool:
    return source.startswith(folder.rstrip(os.sep) + os.sep)


def _walk(folder: Path):
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            yield Path(root) / name


def watch_command(location: str | Path, folder: str | Path, quiet: bool = False, settings: IndexSettings | None = None,
                  **store_options) -> int:
    """``python -m index watch FOLDER --index LOCATION``: keep the index in step until Ctrl-C.

    Args:
        location, folder, quiet: the command's index, folder and ``--quiet``; settings: ``--embedder``.
        **store_options: the store's own options (``collection``, ``token`` for Milvus).

    Returns:
        The exit status: 0 after Ctrl-C, 2 when the folder or the index cannot be used.
    """
    from index import IndexMismatch, IndexNotFound

    def show(report: IndexReport) -> None:
        if not quiet:
            for source in report.indexed:
                print(f"indexed   {source}", flush=True)
            for source in report.removed:
                print(f"removed   {source}", flush=True)
        for source, reason in report.skipped:
            print(f"skipped   {source}: {reason}", flush=True)
        print(report.summary(), flush=True)

    try:
        index = Index.open(location, settings, create=True, **store_options)
        watcher = FolderWatcher(index, folder, on_change=show)
    except (IndexNotFound, IndexMismatch, NotADirectoryError, ValueError) as e:
        print(f"error: {e}", flush=True)
        return 2
    print(f"watching {watcher.folder} for index {index.location} (Ctrl-C stops)", flush=True)
    try:
        watcher.run_forever()
    except (IndexMismatch, NotADirectoryError, OSError) as e:
        print(f"error: {e}", flush=True)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C while an update was being finished
        print("stopped before the update in progress was finished; the next start catches up", flush=True)
        return 130
    print("stopped watching", flush=True)
    return 0
