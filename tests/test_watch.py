"""A watched folder: files moved in and out are indexed or dropped within seconds, and searchable."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from index import Index
from index.watch import FolderWatcher, is_ignored
from tests.conftest import REPO_ROOT, default_sigint

DEADLINE = 30.0  # seconds; generous, for a loaded machine. Polling returns as soon as it holds.


def wait_for(condition, what: str, timeout: float = DEADLINE):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


def sources(index: Index) -> set[str]:
    return {d.source for d in index.documents()}


def name(path: Path) -> str:
    return str(path.resolve())


def hits(index: Index, word: str) -> set[str]:
    """Sources of the chunks in which the term search finds ``word``."""
    found = index.search_terms(word, 5)
    return {c.source for c in index.chunks([i for i, _ in found]).values()}


class Watched:
    """A folder, an index and a running watcher over them, with every report it made."""

    def __init__(self, root: Path, embedder, **options) -> None:
        self.folder = root / "docs"
        self.folder.mkdir(exist_ok=True)
        self.index = Index.open(root / "index", create=True, embedder=embedder)
        self.reports = []
        self.listeners = []
        self.watcher = FolderWatcher(self.index, self.folder, on_change=self._record, **options)

    def _record(self, report) -> None:
        self.reports.append(report)
        for listen in self.listeners:
            listen(report)

    def start(self) -> Watched:
        self.watcher.start()
        assert self.watcher.ready.wait(DEADLINE), "the first build of the folder did not finish"
        assert self.watcher.error is None
        return self

    def indexed_times(self, path: Path) -> int:
        return sum(name(path) in r.indexed for r in self.reports)


@pytest.fixture
def watched(tmp_path, embedder):
    w = Watched(tmp_path, embedder, debounce=0.2, settle=0.4).start()
    yield w
    w.watcher.stop()
    assert w.watcher.error is None


def test_new_file_is_indexed_and_searchable(watched):
    doc = watched.folder / "heron.txt"
    doc.write_text("The zorbulent heron nests on Kelp Island every spring.\n")
    wait_for(lambda: watched.indexed_times(doc), "the new file is reported")
    assert name(doc) in sources(watched.index)
    assert hits(watched.index, "zorbulent") == {name(doc)}
    assert watched.indexed_times(doc) == 1


def test_modified_file_is_searchable_by_its_new_text_only(watched):
    doc = watched.folder / "notes.md"
    doc.write_text("# Notes\n\nThe quokkaword meeting is on Monday.\n")
    wait_for(lambda: hits(watched.index, "quokkaword"), "the first text is searchable")
    doc.write_text("# Notes\n\nThe blimpwordal meeting moved to Friday.\n")
    wait_for(lambda: hits(watched.index, "blimpwordal") == {name(doc)}, "the new text is searchable")
    assert hits(watched.index, "quokkaword") == set()
    assert sources(watched.index) == {name(doc)}


def test_renamed_file_is_listed_under_its_new_name_only(watched):
    old = watched.folder / "draft.txt"
    old.write_text("Marmaduke the walrus reviewed the quarterly budget.\n")
    wait_for(lambda: name(old) in sources(watched.index), "the file is listed")
    sub = watched.folder / "final"
    sub.mkdir()
    new = sub / "budget.txt"
    old.rename(new)
    wait_for(lambda: sources(watched.index) == {name(new)}, "only the new name is listed")
    assert hits(watched.index, "marmaduke") == {name(new)}


def test_deleted_file_and_deleted_folder_disappear(watched):
    keep = watched.folder / "keep.txt"
    keep.write_text("The lighthouse keeper counts gulls.\n")
    gone = watched.folder / "gone.txt"
    gone.write_text("Snorkelbaum is a word that will vanish.\n")
    sub = watched.folder / "old" / "deep"
    sub.mkdir(parents=True)
    inside = [sub / "a.txt", sub.parent / "b.md"]
    for i, p in enumerate(inside):
        p.write_text(f"Archived note number {i} about the cellar.\n")
    everything = {name(keep), name(gone)} | {name(p) for p in inside}
    wait_for(lambda: sources(watched.index) == everything, "all four files are listed")

    gone.unlink()
    wait_for(lambda: name(gone) not in sources(watched.index), "the deleted file is dropped")
    assert hits(watched.index, "snorkelbaum") == set()
    shutil.rmtree(watched.folder / "old")
    wait_for(lambda: sources(watched.index) == {name(keep)}, "the deleted folder's files are dropped")


def test_folder_moved_out_and_back_in(watched, tmp_path):
    sub = watched.folder / "trip"
    sub.mkdir()
    files = [sub / "day1.txt", sub / "day2.txt"]
    for i, p in enumerate(files):
        p.write_text(f"On day {i + 1} the caravan crossed the dunes.\n")
    wait_for(lambda: sources(watched.index) == {name(p) for p in files}, "the folder's files are listed")

    outside = tmp_path / "elsewhere"
    shutil.move(str(sub), str(outside))
    wait_for(lambda: sources(watched.index) == set(), "a folder moved out is dropped")
    shutil.move(str(outside), str(sub))
    wait_for(lambda: sources(watched.index) == {name(p) for p in files}, "a folder moved in is indexed")


def test_temporary_and_hidden_files_are_never_indexed(watched):
    junk = {
        ".hidden.txt": "hidden words",
        ".notes.txt.swp": "vim swap",
        "~$report.docx": "office owner file",
        "notes.txt~": "backup",
        "#notes.txt#": "emacs auto-save",
        "4913": "vim write probe",
        "upload.txt.part": "partial download",
        "paper.pdf.crdownload": "chrome download",
        "scratch.tmp": "temporary",
    }
    (watched.folder / ".git").mkdir()
    (watched.folder / ".git" / "description.txt").write_text("inside a hidden folder")
    for n, text in junk.items():
        (watched.folder / n).write_text(f"Glimmerfrost {text}.\n")
    # An editor's safe save: write a temporary file, then rename it over the real name.
    tmp = watched.folder / "notes.txt.tmp"
    tmp.write_text("Glimmerfrost saved by the editor.\n")
    real = watched.folder / "notes.txt"
    tmp.rename(real)
    wait_for(lambda: name(real) in sources(watched.index), "the saved file is listed")
    # Vim's save: probe the folder with "4913", move the old file to a backup, write anew, drop the backup.
    (watched.folder / "4913").write_text("")
    (watched.folder / "4913").unlink()
    real.rename(watched.folder / "notes.txt~")
    real.write_text("Glimmerfrost saved again, the way Vim saves.\n")
    (watched.folder / "notes.txt~").unlink()
    wait_for(lambda: hits(watched.index, "vim") == {name(real)}, "the new text is indexed")
    sentinel = watched.folder / "later.txt"
    sentinel.write_text("Written after every temporary file.\n")
    wait_for(lambda: watched.indexed_times(sentinel), "a file written last is reported")

    assert sources(watched.index) == {name(real), name(sentinel)}
    assert hits(watched.index, "glimmerfrost") == {name(real)}
    named = {s for r in watched.reports for s in r.indexed + r.removed + tuple(s for s, _ in r.skipped)}
    assert named == {name(real), name(sentinel)}


@pytest.mark.parametrize("relative, ignored", [
    ("report.docx", False), ("sub/notes.md", False), ("2024 plan.txt", False),
    (".notes.txt", True), (".git/notes.txt", True), ("~$report.docx", True), ("notes.txt~", True),
    ("#notes.txt#", True), ("4913", True), ("paper.PDF.crdownload", True), ("a.txt.swp", True),
    ("movie.part", True), ("x.TMP", True),
])
def test_ignore_rule(relative, ignored):
    assert is_ignored(relative) is ignored


def test_file_written_in_two_halves_is_indexed_once_whole(tmp_path, embedder):
    w = Watched(tmp_path, embedder, debounce=0.2, settle=3.0)
    doc = w.folder / "slow.txt"
    texts_when_indexed = []
    w.listeners.append(lambda r: texts_when_indexed.append(w.index.document(name(doc)).text)
                       if name(doc) in r.indexed else None)
    w.start()
    try:
        first, second = "The first half mentions Quillbrook.\n", "The second half mentions Tarnwhistle.\n"
        with open(doc, "w") as fh:
            fh.write(first)
            fh.flush()
            time.sleep(0.5)  # well under settle: the file is not whole yet
            fh.write(second)
        wait_for(lambda: texts_when_indexed, "the file is indexed")
        assert texts_when_indexed == [first + second]
        assert hits(w.index, "tarnwhistle") == {name(doc)}
    finally:
        w.watcher.stop()


def test_burst_of_saves_is_one_update_with_the_last_text(tmp_path, embedder):
    w = Watched(tmp_path, embedder, debounce=1.5, settle=0.2).start()
    try:
        doc = w.folder / "burst.txt"
        for i in range(6):
            doc.write_text(f"Version {i} of the plan names Orrinvale {i}.\n")
        wait_for(lambda: w.indexed_times(doc), "the file is reported")
        assert w.index.document(name(doc)).text == "Version 5 of the plan names Orrinvale 5.\n"
        assert w.indexed_times(doc) == 1
    finally:
        w.watcher.stop()


def test_many_changes_at_once_are_one_build(tmp_path, embedder, caplog):
    w = Watched(tmp_path, embedder, debounce=1.5, settle=0.2, rescan_above=3).start()
    try:
        staging = tmp_path / "staging"
        staging.mkdir()
        files = [staging / f"memo{i}.txt" for i in range(6)]
        for i, p in enumerate(files):
            p.write_text(f"Memo {i} is about the Fenwick account.\n")
        (staging / "~$memo.docx").write_bytes(b"owner file of an open document")
        caplog.set_level("INFO", logger="index.watch")
        for p in staging.iterdir():
            p.rename(w.folder / p.name)
        expected = {name(w.folder / p.name) for p in files}
        wait_for(lambda: {s for r in w.reports for s in r.indexed} == expected, "all six memos are reported")
        assert sources(w.index) == expected
        assert len(w.reports) == 1
        assert not any("~$" in s for r in w.reports for s, _ in r.skipped)
        lines = [r.getMessage() for r in caplog.records if r.name == "index.watch"]
        assert len(lines) == 1 and "6 indexed" in lines[0] and "+memo0.txt" in lines[0]
    finally:
        w.watcher.stop()


def test_start_catches_up_with_changes_made_while_not_watching(tmp_path, embedder):
    w = Watched(tmp_path, embedder, debounce=0.2, settle=0.2)
    stale = w.folder / "stale.txt"
    stale.write_text("Indexed once, deleted while nobody watched.\n")
    w.index.build(w.folder, quiet=True)
    stale.unlink()
    fresh = w.folder / "fresh.txt"
    fresh.write_text("Written while nobody watched.\n")
    w.start()  # ready only after the first build
    try:
        assert sources(w.index) == {name(fresh)}
        assert any(name(stale) in r.removed for r in w.reports)
    finally:
        w.watcher.stop()


def test_readers_on_other_threads_see_consistent_index(watched):
    errors, stop = [], threading.Event()

    def read():
        while not stop.is_set():
            try:
                for chunk in watched.index.chunks([i for i, _ in watched.index.search_terms("pelican", 5)]).values():
                    assert "pelican" in chunk.text.lower()
                watched.index.documents()
            except Exception as e:  # noqa: BLE001 - collected and reported below
                errors.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(4):
            (watched.folder / f"bird{i}.txt").write_text(f"Pelican number {i} fishes at dawn.\n")
            time.sleep(0.3)
        wait_for(lambda: len(sources(watched.index)) == 4, "all four files are listed")
    finally:
        stop.set()
        reader.join()
    assert errors == []


def test_constructor_refuses_bad_values(tmp_path, embedder):
    index = Index.open(tmp_path / "index", create=True, embedder=embedder)
    with pytest.raises(NotADirectoryError, match="not a folder"):
        FolderWatcher(index, tmp_path / "missing")
    with pytest.raises(ValueError, match="debounce must be 0 or more seconds. Currently, debounce is -1"):
        FolderWatcher(index, tmp_path, debounce=-1)
    with pytest.raises(ValueError, match="settle must be"):
        FolderWatcher(index, tmp_path, settle=-0.5)


def test_watch_command_runs_until_ctrl_c(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "before.txt").write_text("Present before watching started.\n")
    location = tmp_path / "index"
    code = "import sys; from index.watch import watch_command; sys.exit(watch_command(sys.argv[1], sys.argv[2]))"
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-c", code, str(location), str(folder)], cwd=REPO_ROOT, preexec_fn=default_sigint,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(f"indexed   {name(folder / 'before.txt')}" in ln for ln in lines),
                 "the existing file is indexed", timeout=180)
        after = folder / "after.txt"
        after.write_text("Added while watching.\n")
        wait_for(lambda: any(f"indexed   {name(after)}" in ln for ln in lines), "the new file is indexed", timeout=60)
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler (-X faulthandler) prints every thread's stack
            proc.wait(timeout=30)
            reader.join(5)
            raise AssertionError("the watcher did not stop on Ctrl-C:\n" + "".join(lines[-80:])) from None
        assert code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    assert any(ln.startswith("watching ") for ln in lines)
    assert lines[-1].strip() == "stopped watching"
    assert sources(Index.open(location)) == {name(folder / "before.txt"), name(after)}
