"""Shared by the UI tests: a temporary index over seeds/, the page launched on a free loopback port."""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS = REPO_ROOT / "seeds"
SEED_QUESTION = "who is Rob Strayer?"
SEED_ANSWER = "State Department official"

# A new document the seeds know nothing about.
FESTIVAL_NAME = "zorblat_festival.txt"
FESTIVAL_TEXT = "The Zorblat festival is held every June in Quenton. Mira Oyelaran founded it in 1998.\n"
FESTIVAL_QUESTION = "When is the Zorblat festival held?"
FESTIVAL_ANSWER = "June"

# A document that tries to run code wherever its text is shown.
INJECTION_NAME = "vault_notes.txt"
INJECTION_IMG = '<img src=x onerror="window.__pwned=1">'
INJECTION_SCRIPT = "<script>window.__pwned=2</script>"
INJECTION_TEMPLATE = "${window.__pwned=3} {{constructor.constructor('window.__pwned=4')()}}"
INJECTION_TEXT = (
    f"The vault password is {INJECTION_IMG} and {INJECTION_SCRIPT} according to Agent Smith. "
    f"Template tricks such as {INJECTION_TEMPLATE} are printed as they are.\n"
)
INJECTION_QUESTION = "What is the vault password?"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_test_files(folder: Path) -> dict[str, Path]:
    """The festival and injection documents, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {FESTIVAL_NAME: FESTIVAL_TEXT, INJECTION_NAME: INJECTION_TEXT}
    out = {}
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        out[name] = folder / name
    return out


@dataclass
class RunningApp:
    root: Path
    url: str
    demo: object
    engine: object
    settings: object
    files: dict[str, Path]

    def close(self) -> None:
        self.demo.close()


def launch_test_app(root: Path, embedder, **settings) -> RunningApp:
    """The page over a fresh index of a copy of seeds/, its data folder under ``root``.

    The sentence reader answers: these tests check what the page shows, not which reader
    is best (the engine's own tests cover that), and it needs no model of its own.
    ``settings`` are more ``UISettings`` fields (``auth_file=...``).
    """
    from index import Index
    from qa import Engine, QASettings
    from ui.app import UISettings, build_app, start

    docs = root / "docs"
    shutil.copytree(SEEDS, docs)
    index = Index.open(root / "index", create=True, embedder=embedder)
    index.build(docs, quiet=True)
    engine = Engine(index, QASettings(reader="sentence"))
    engine.ask(SEED_QUESTION)  # warm up, as ui.app.launch does
    settings = UISettings(data_dir=root / "data", port=free_port(), **settings)
    demo = build_app(engine, settings)
    url = start(demo, settings, prevent_thread_lock=True, quiet=True)
    return RunningApp(root=root, url=url, demo=demo, engine=engine, settings=settings, files=write_test_files(root / "incoming"))
