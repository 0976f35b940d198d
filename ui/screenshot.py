"""python -m ui.screenshot [--out docs/screenshot.png]: a picture of the page answering a question.

Drives Debian's chromium (``/usr/bin/chromium``, ``apt-get install chromium``) with
Playwright; no browser download. The page runs on a free loopback port over the default
index, with a temporary data folder, and is closed afterwards.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"


def ask_in_page(page, question: str, expect: str | None = None, timeout_ms: int = 30_000) -> None:
    """Type ``question`` into the page, press Ask, and wait for the reply (containing ``expect``)."""
    replies = page.locator("#qa-chat .bot")
    before = replies.count()
    page.fill("#qa-question textarea", question)
    page.click("#qa-ask")
    page.wait_for_function(
        "n => document.querySelectorAll('#qa-chat .bot').length > n", arg=before, timeout=timeout_ms
    )
    if expect:
        page.locator("#qa-chat .bot").last.get_by_text(expect).first.wait_for(timeout=timeout_ms)
    page.wait_for_timeout(300)  # let the sources panel settle


def capture(url: str, out: str | Path, question: str, expect: str | None = None,
            executable: str = CHROMIUM, size: tuple[int, int] = (1366, 900)) -> Path:
    """Open ``url``, ask ``question`` and save a screenshot of the page to ``out``."""
    from playwright.sync_api import sync_playwright

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": size[0], "height": size[1]})
            page.goto(url)
            page.wait_for_selector("#qa-question textarea")
            ask_in_page(page, question, expect)
            page.screenshot(path=str(out))
        finally:
            browser.close()
    return out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to save the PNG (default {DEFAULT_OUT})")
    parser.add_argument("--question", default="who is Rob Strayer?", help="the question to ask")
    parser.add_argument("--index", help="index folder (default: the index over seeds/)")
    parser.add_argument("--reader", choices=["auto", "sentence", "neural"], help="which reader answers (default: the engine's)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"the browser binary (default {CHROMIUM})")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        print(f"error: no browser at {args.chromium}; install it with: apt-get install -y chromium", file=sys.stderr)
        return 2

    from qa import Engine, QASettings
    from ui.app import UISettings, build_app, start

    engine = Engine(args.index, QASettings().with_overrides(reader=args.reader))
    engine.ask(args.question)  # load the models before the page opens
    with tempfile.TemporaryDirectory() as data:
        settings = UISettings(data_dir=Path(data), port=_free_port())
        demo = build_app(engine, settings)
        url = start(demo, settings, prevent_thread_lock=True, quiet=True)
        try:
            print(capture(url, args.out, args.question, executable=args.chromium))
        finally:
            demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
