"""``python -m index`` as a user types it: options anywhere, one-line errors, pipes closed early."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from index.types import Chunk, Document
from tests.conftest import REPO_ROOT


def cli(*args, shell=None):
    if shell is not None:
        return subprocess.run(shell, shell=True, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    return subprocess.run([sys.executable, "-m", "index", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)


def test_options_work_before_and_after_the_subcommand(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The lighthouse keeper is Morag Campbell.")
    ix = tmp_path / "ix"
    built = cli("build", str(docs), "--index", str(ix), "--quiet", "--json")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["indexed"] == [str(docs / "a.txt")]
    before = cli("--index", str(ix), "--json", "status")
    after = cli("status", "--index", str(ix), "--json")
    assert before.returncode == after.returncode == 0
    assert json.loads(before.stdout)["documents"] == json.loads(after.stdout)["documents"] == 1
    mixed = cli("--quiet", "remove", str(docs / "a.txt"), "--index", str(ix))
    assert mixed.returncode == 0 and mixed.stdout.strip().startswith("0 indexed, 0 skipped, 0 unchanged, 1 removed")


def test_status_into_a_pipe_closed_early_ends_quietly(tmp_path):
    """``status | head`` prints the head and no BrokenPipeError (needs more output than a pipe holds)."""
    from index.backends.folder import FolderStore

    store = FolderStore.open(tmp_path / "ix", create=True)
    rng = np.random.default_rng(0)
    with store.writer({"model": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 8}) as w:
        for i in range(1500):
            source = f"/documents/a-long-folder-name/with-sub-folders/and-a-long-file-name-{i:05d}.txt"
            text = f"Document number {i}."
            doc = Document(source=source, text=text, sha256=f"{i:064d}", kind="txt")
            v = rng.normal(size=(1, 8)).astype(np.float32)
            w.add(doc, [Chunk(0, source, 0, len(text), text)], v / np.linalg.norm(v))
    done = cli(shell=f"{sys.executable} -m index status --index {tmp_path / 'ix'} | head -2")
    assert done.stdout.startswith(f"{tmp_path / 'ix'}: 1500 documents, 1500 chunks")
    assert done.stderr == ""


@pytest.mark.parametrize("args, says", [
    (["status", "--index", "{tmp}/none"], "No index at"),
    (["build", "{tmp}/no-such-folder", "--index", "{tmp}/ix"], "is not a folder"),
    (["add", "x.txt", "--index", "{tmp}/file"], "is a file, not an index folder"),
    (["build", "{tmp}", "--chunk-size", "0", "--index", "{tmp}/ix"], "chunk_size must be greater than 0"),
    (["check", "--index", "{tmp}/none"], "No index at"),
    (["copy", "{tmp}/none", "{tmp}/other"], "No index at"),
])
def test_every_error_is_one_line_and_exit_status_2(tmp_path, args, says):
    (tmp_path / "file").write_text("not an index")
    done = cli(*[a.format(tmp=tmp_path) for a in args])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and says in done.stderr
