"""The chat page in a real browser: headless Debian chromium driven by Playwright.

Screenshots go to test-output/ (git-ignored). Skipped only when /usr/bin/chromium is
missing (``make chromium`` or ``apt-get install -y chromium`` installs it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ui_helpers import (
    INJECTION_IMG, INJECTION_NAME, INJECTION_QUESTION, INJECTION_SCRIPT, INJECTION_TEMPLATE, REPO_ROOT, SEED_ANSWER,
    SEED_QUESTION, launch_test_app,
)
from ui.screenshot import CHROMIUM, CHROMIUM_ARGS, ask_in_page

OUTPUT = REPO_ROOT / "test-output"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no browser at {CHROMIUM}: install Debian's chromium (apt-get install -y chromium, or make chromium)",
)


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedder):
    running = launch_test_app(tmp_path_factory.mktemp("ui-browser"), embedder)
    yield running
    running.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(app, browser):
    """A fresh tab on the page: each test starts from an empty chat."""
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.outside_requests = []  # anything not served by the app itself
    page.on("request", lambda r: r.url.startswith((app.url.rstrip("/"), "data:", "blob:"))
            or page.outside_requests.append(r.url))
    page.goto(app.url)
    page.wait_for_selector("#qa-question textarea")
    yield page
    page.close()


def test_asking_the_seed_question_shows_the_cited_answer(app, page):
    ask_in_page(page, SEED_QUESTION, expect=SEED_ANSWER)
    reply = page.locator("#qa-chat .bot").last
    assert reply.locator("strong", has_text=SEED_ANSWER).count() >= 1  # the answer, in bold
    text = reply.inner_text()
    assert "[1]" in text and "000_ffecf142e84792ea.txt, characters 1828–1990" in text
    assert "Rob Strayer at an event" in text
    # Sources panel: the passage with the answer span highlighted, and the document's name.
    assert page.locator("#qa-passage .qa-passage mark.qa-answer").first.inner_text() == SEED_ANSWER
    assert "Rob Strayer" in page.locator("#qa-passage .qa-passage mark.qa-sentence").first.inner_text()
    assert "File: 000_ffecf142e84792ea.txt" in page.locator("#qa-passage").inner_text()
    assert str(app.root) not in page.content()  # no server path anywhere on the page
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "ui-answer.png"))

    # The thumbs under the reply rate it; the record lands in the feedback file.
    page.locator("#qa-chat button[aria-label='Like']").last.click()
    page.locator("#qa-feedback-status", has_text="Saved 👍").wait_for(timeout=10_000)
    record = json.loads(app.settings.feedback_path.read_text(encoding="utf-8").splitlines()[-1])
    assert record["question"] == SEED_QUESTION and record["answers"] == [SEED_ANSWER] and record["rating"] == "up"


def test_uploaded_markup_is_shown_as_text_and_never_runs(app, page):
    page.get_by_role("tab", name="Documents").click()
    page.set_input_files("#qa-upload input[type=file]", str(app.files[INJECTION_NAME]))
    page.locator("#qa-upload-status", has_text="Added 1 document").wait_for(timeout=30_000)
    assert page.locator("#qa-documents", has_text=INJECTION_NAME).count() == 1
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "ui-documents.png"))
    page.get_by_role("tab", name="Sources").click()

    ask_in_page(page, INJECTION_QUESTION, expect="Agent Smith")
    page.wait_for_timeout(500)  # time for an injected onerror to fire, were it there
    assert page.evaluate("window.__pwned") is None
    reply = page.locator("#qa-chat .bot").last.inner_text()
    assert INJECTION_IMG in reply and INJECTION_SCRIPT in reply
    passage = page.locator("#qa-passage").inner_text()
    assert INJECTION_IMG in passage and INJECTION_SCRIPT in passage and INJECTION_TEMPLATE in passage
    assert page.locator("#qa-chat img[src=x], #qa-passage img, #qa-chat script, #qa-passage script").count() == 0
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "ui-injection.png"))


def test_the_page_makes_no_requests_off_this_machine(page):
    page.get_by_role("tab", name="Documents").click()
    page.locator("#qa-documents", has_text="000_ffecf142e84792ea.txt").wait_for(timeout=10_000)
    page.get_by_role("tab", name="Sources").click()
    ask_in_page(page, SEED_QUESTION, expect=SEED_ANSWER)
    page.wait_for_timeout(1_000)  # the page keeps a connection open, so "network idle" never comes: wait a little
    assert page.outside_requests == []
