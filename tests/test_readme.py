"""Every command README.md shows runs as written.

The README's ``console`` blocks hold commands after a ``$ `` prompt, each followed by the
output it prints (lines without a prompt; ``...`` stands for any text). Each command runs in
README order, from the repository root, in ``bash`` with the virtual environment's ``bin``
first on PATH, and must exit 0 and print its shown output. The commands write only to
git-ignored places (``.index/``, ``.data/``, ``eval-output/``), so they run as written.

Servers (``make run``, ``python -m ui``) are started on a free port (the test sets
``PORT=`` or ``--port``), polled until the page answers, then stopped. A folder watcher (``python -m index watch``) is started, waited for until
it prints its first shown line, stopped with Ctrl-C (SIGINT) and must exit 0 having printed
every shown line. ``make test`` is not run (it would run this test again). Commands on a Milvus server (``milvus://``) run against the
session's ``milvus_server`` (conftest: Milvus Lite's gRPC server on a loopback port, or the
Milvus ``MILVUS_URI`` names), with its address in place of the README's. The README's
``python`` blocks run as scripts too.

Commands depend on the ones before them (an index is built before it is asked), so run the
whole file, not one command alone.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import default_sigint
from tests.ui_helpers import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
VENV = REPO_ROOT / ".venv"
SHELL_LANGUAGES = ("console", "shell", "sh", "bash")
MILVUS_SERVER_IN_README = re.compile(r"milvus://[\w.-]+:\d+")
COMMAND_TIMEOUT_S = 900
SERVER_START_TIMEOUT_S = 900
# Lines of a shell block that start like a command must carry the prompt, so none escapes.
UNPROMPTED_COMMAND = re.compile(r"^(make|python|\.venv/|\. \.venv|pip|mkdir)\b")


@dataclass(frozen=True)
class Command:
    """One ``$ `` line of the README and the output lines shown under it."""

    line: int
    text: str
    expected: tuple[str, ...]


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, first line number and lines."""

    language: str
    line: int
    lines: tuple[str, ...]


def code_blocks(text: str) -> list[Block]:
    blocks, current, language, start = [], None, "", 0
    for n, raw in enumerate(text.splitlines(), start=1):
        if raw.startswith("```"):
            if current is None:
                current, language, start = [], raw[3:].strip().lower(), n + 1
            else:
                blocks.append(Block(language, start, tuple(current)))
                current = None
        elif current is not None:
            current.append(raw)
    if current is not None:
        raise ValueError(f"README.md: the code block opened on line {start - 1} is never closed")
    return blocks


def readme_commands(text: str) -> list[Command]:
    commands: list[Command] = []
    for block in code_blocks(text):
        if block.language not in SHELL_LANGUAGES:
            continue
        pending: tuple[int, str, list[str]] | None = None
        for offset, raw in enumerate(block.lines):
            if raw.startswith("$ "):
                if pending:
                    commands.append(Command(pending[0], pending[1], tuple(pending[2])))
                pending = (block.line + offset, raw[2:].strip(), [])
            elif raw.strip():
                if pending is None:
                    raise ValueError(f"README.md line {block.line + offset}: output before any '$ ' command")
                pending[2].append(raw)
        if pending:
            commands.append(Command(pending[0], pending[1], tuple(pending[2])))
    return commands


def python_blocks(text: str) -> list[Block]:
    return [b for b in code_blocks(text) if b.language in ("python", "py")]


README_TEXT = README.read_text(encoding="utf-8")
COMMANDS = readme_commands(README_TEXT)


def without_comment(command: str) -> str:
    """The command without a trailing ``  # ...`` remark."""
    return re.sub(r"\s+#\s.*$", "", command)


def is_server(command: str) -> bool:
    words = without_comment(command).split()
    if words[:2] == ["make", "run"]:
        return True
    return words[:3] == ["python", "-m", "ui"] and not {"hash-password", "--help", "-h"} & set(words)


def is_watcher(command: str) -> bool:
    return without_comment(command).split()[:4] == ["python", "-m", "index", "watch"]


def on_port(command: str, port: int) -> str:
    """The server command with its port replaced by ``port``."""
    command = without_comment(command)
    if command.startswith("make "):
        return re.sub(r"\s+PORT=\S+", "", command) + f" PORT={port}"
    return re.sub(r"\s+--port[ =]\S+", "", command) + f" --port {port}"


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONHOME", None)
    return env


def expected_pattern(line: str) -> re.Pattern[str]:
    """A shown output line as a pattern: white space collapsed, ``...`` matches any text."""
    parts = [re.escape(" ".join(p.split())) for p in line.strip().split("...")]
    return re.compile(".*".join(parts))


def missing_output(expected: tuple[str, ...], output: str) -> list[str]:
    """The shown lines that the output does not print, in order."""
    lines = [" ".join(line.split()) for line in output.splitlines()]
    missing, at = [], 0
    for shown in expected:
        pattern = expected_pattern(shown)
        for i in range(at, len(lines)):
            if pattern.fullmatch(lines[i]):
                at = i + 1
                break
        else:
            missing.append(shown)
    return missing


def page_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer (a login page's 401 too) means the page is serving
    except (urllib.error.URLError, OSError):
        return False


def stop(process: subprocess.Popen) -> None:
    """End the server and the processes it started (its own process group)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def start_until(command: Command, shell: str, log: Path, ready, waiting_for: str) -> subprocess.Popen:
    """Start ``shell`` in a session of its own, its output in ``log``, and return it once ``ready()``;
    the test fails if it exits first or ``SERVER_START_TIMEOUT_S`` passes (``waiting_for``: "serve
    on port 7860", "print '...'": what it was to do)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(["bash", "-c", shell], cwd=REPO_ROOT, env=environment(), stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not ready():
            if process.poll() is not None:
                pytest.fail(f"README line {command.line}: `{shell}` exited with {process.returncode} before it would "
                            f"{waiting_for}:\n{log.read_text(errors='replace')[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"README line {command.line}: `{shell}` did not {waiting_for} within "
                            f"{SERVER_START_TIMEOUT_S} s:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(1)
    except BaseException:
        stop(process)
        raise
    return process


def run_server(command: Command, tmp_path: Path) -> None:
    port = free_port()
    shell = on_port(command.text, port)
    log = tmp_path / "server.log"
    stop(start_until(command, shell, log, lambda: page_answers(port), f"serve on port {port}"))
    missing = missing_output(command.expected, log.read_text(errors="replace"))
    assert not missing, f"README line {command.line}: `{shell}` did not print {missing}"


def run_watcher(command: Command, tmp_path: Path) -> None:
    """Start a command that runs until Ctrl-C, wait for its first shown line, then interrupt it."""
    assert command.expected, f"README line {command.line}: show the line the watcher prints once it is watching"
    shell = without_comment(command.text)
    log = tmp_path / "watch.log"
    ready = expected_pattern(command.expected[0])

    def printed_ready() -> bool:
        return any(ready.fullmatch(" ".join(line.split())) for line in log.read_text(errors="replace").splitlines())

    process = start_until(command, shell, log, printed_ready, f"print {command.expected[0]!r}")
    try:
        os.killpg(process.pid, signal.SIGINT)
        try:
            returncode = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"README line {command.line}: `{shell}` did not stop within 120 s of Ctrl-C")
    finally:
        stop(process)
    output = log.read_text(errors="replace")
    assert returncode == 0, f"README line {command.line}: `{shell}` exited with {returncode} after Ctrl-C:\n{output[-4000:]}"
    missing = missing_output(command.expected, output)
    assert not missing, f"README line {command.line}: `{shell}` did not print {missing}"


def run_command(command: Command, milvus_server) -> None:
    """Run ``command``; ``milvus_server()`` gives the address that replaces a README ``milvus://`` one."""
    shell = without_comment(command.text)
    if MILVUS_SERVER_IN_README.search(shell):
        shell = MILVUS_SERVER_IN_README.sub(milvus_server(), shell)
    password = "correct horse battery staple\n"
    # hash-password asks twice; with no terminal (a new session) getpass reads stdin.
    stdin = password * 2 if "hash-password" in shell else None
    try:
        result = subprocess.run(["bash", "-c", shell], cwd=REPO_ROOT, env=environment(), input=stdin,
                                stdin=None if stdin is not None else subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=COMMAND_TIMEOUT_S, start_new_session=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"README line {command.line}: `{shell}` ran longer than {COMMAND_TIMEOUT_S} s")
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"README line {command.line}: `{shell}` exited with {result.returncode}:\n{output[-4000:]}")
    missing = missing_output(command.expected, result.stdout)
    assert not missing, f"README line {command.line}: `{shell}` did not print {missing}; it printed:\n{output[-4000:]}"


def test_readme_shows_the_two_commands_and_prompts_every_command():
    texts = [c.text for c in COMMANDS]
    assert "make run" in texts and "make test" in texts, texts
    unprompted = [
        (b.line + i, line) for b in code_blocks(README_TEXT) if b.language in SHELL_LANGUAGES
        for i, line in enumerate(b.lines) if UNPROMPTED_COMMAND.match(line.strip())
    ]
    assert not unprompted, f"commands without a '$ ' prompt (the test would not run them): {unprompted}"
    assert all(b.language for b in code_blocks(README_TEXT)), "every README code block names its language"


@pytest.mark.parametrize("command", COMMANDS, ids=[f"line{c.line}:{c.text}" for c in COMMANDS])
def test_readme_command_runs_as_written(command: Command, tmp_path: Path, request):
    if not (VENV / "bin" / "python").exists():
        pytest.skip("no .venv: run `make setup` first")
    if without_comment(command.text).split()[:2] == ["make", "test"]:
        pytest.skip("`make test` runs this test: running it here would recurse")
    if is_server(command.text):
        run_server(command, tmp_path)
    elif is_watcher(command.text):
        run_watcher(command, tmp_path)
    else:
        run_command(command, lambda: request.getfixturevalue("milvus_server"))


@pytest.mark.parametrize("block", python_blocks(README_TEXT), ids=lambda b: f"python-line{b.line}")
def test_readme_python_block_runs(block: Block):
    result = subprocess.run([str(VENV / "bin" / "python"), "-c", "\n".join(block.lines)], cwd=REPO_ROOT,
                            env=environment(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT_S)
    assert result.returncode == 0, f"README python block at line {block.line} failed:\n{result.stderr[-4000:]}"


def test_expected_output_matching_is_strict():
    shown = ('State Department official', '  [1] 000_x.txt, characters 1-2:', '      "quote ..."')
    printed = 'State Department official\n  [1] 000_x.txt, characters 1-2:\n      "quote and more"\n'
    assert missing_output(shown, printed) == []
    assert missing_output(("State Department",), printed) == ["State Department"]
    assert missing_output(shown[::-1], printed) == [shown[1], shown[0]]
    assert on_port("make run", 9001) == "make run PORT=9001"
    assert on_port("python -m ui --host 0.0.0.0 --port 80 --auth-file f", 9001) == (
        "python -m ui --host 0.0.0.0 --auth-file f --port 9001")
    assert is_server("python -m ui --index .index/mine") and not is_server("python -m ui hash-password alice")
    assert is_server("python -m ui --index .index/mine --watch seeds/")
    assert is_watcher("python -m index watch seeds/ --index .index/mine") and not is_watcher("python -m index build seeds/")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
