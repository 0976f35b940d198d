"""Several writers on one index: none loses another's documents, a waiting writer says so."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from index import Index
from tests.conftest import REPO_ROOT


def _names(index):
    return sorted(d.source.rsplit("/", 1)[1] for d in index.documents())


def _files(folder, n):
    folder.mkdir()
    paths = []
    for i in range(n):
        p = folder / f"note{i}.txt"
        p.write_text(f"Station {i} is run by commander number {i}. It grows crop {i}.")
        paths.append(p)
    return paths


def test_two_processes_adding_at_once_both_land(tmp_path):
    """Two ``python -m index add`` at once on one index: both files are in it afterwards."""
    a, b = _files(tmp_path / "docs", 2)
    ix = tmp_path / "ix"
    cmd = [sys.executable, "-m", "index", "--quiet"]
    procs = [subprocess.Popen(cmd + ["add", str(p), "--index", str(ix)], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for p in (a, b)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err.decode()
        assert b"1 indexed" in out
    assert _names(Index.open(ix)) == ["note0.txt", "note1.txt"]


def test_two_indexes_writing_from_threads_both_land(tmp_path, embedder):
    """Two Index objects on one folder (say, the page and a script), adding from two threads at once."""
    paths = _files(tmp_path / "docs", 6)
    first = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    second = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    start = threading.Barrier(2)
    errors = []

    def add(index, files):
        try:
            start.wait()
            for p in files:
                index.add([p], quiet=True)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=add, args=(first, paths[0::2])),
               threading.Thread(target=add, args=(second, paths[1::2]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    expected = sorted(p.name for p in paths)
    assert _names(Index.open(tmp_path / "ix", embedder=embedder)) == expected
    first.refresh()
    assert _names(first) == expected


def test_a_stale_index_object_does_not_overwrite_newer_documents(tmp_path, embedder):
    """The page's Index was opened before a CLI ``add``; its next upload keeps the CLI's document."""
    a, b = _files(tmp_path / "docs", 2)
    page = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    cli = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    cli.add([a], quiet=True)
    page.add([b], quiet=True)
    assert _names(page) == ["note0.txt", "note1.txt"]
    assert _names(Index.open(tmp_path / "ix", embedder=embedder)) == ["note0.txt", "note1.txt"]


def test_a_second_writer_waits_with_a_message_then_gives_up(tmp_path, embedder, capsys):
    from index import StoreBusy
    from index.backends.folder import FolderStore

    a, = _files(tmp_path / "docs", 1)
    Index.open(tmp_path / "ix", create=True, embedder=embedder).add([a], quiet=True)
    holder = FolderStore.open(tmp_path / "ix")
    waiter = Index.open(tmp_path / "ix", embedder=embedder, lock_timeout=0.6)
    with holder.locked():
        with pytest.raises(StoreBusy, match="Another writer has held the index .* try again"):
            waiter.remove([a])
    err = capsys.readouterr().err
    assert err.count("waiting for another writer on") == 1
    assert waiter.remove([a]).removed == (str(a),)  # once the lock is free it goes through


def test_a_failed_writer_commits_nothing(tmp_path, embedder):
    from index.backends.folder import FolderStore

    a, b = _files(tmp_path / "docs", 2)
    index = Index.open(tmp_path / "ix", create=True, embedder=embedder)
    index.add([a], quiet=True)
    store = FolderStore.open(tmp_path / "ix")
    doc = index.document(str(a))
    with pytest.raises(RuntimeError, match="stop"):
        with store.writer(index.manifest) as w:
            w.remove(str(a))
            raise RuntimeError("stop")
    assert _names(index) == ["note0.txt"] and store.document(str(a)) == doc
    assert _names(Index.open(tmp_path / "ix", embedder=embedder)) == ["note0.txt"]
