"""Conversations on the page, what a visitor takes away, and several named collections.

Handler-level tests call what the page does directly; the collection tests run the page
over two small indexes and drive it through gradio_client; one browser test asks the two
seed questions in headless chromium and downloads the conversation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ui_helpers import REPO_ROOT, SEED_ANSWER, SEED_QUESTION, free_port
from ui.collections import CollectionError, Collections, check_collections, parse_index_option
from ui.downloads import Exports
from ui.handlers import InputError, PageHandlers, parse_history
from ui.settings import UISettings

SEED_NAME = "000_ffecf142e84792ea.txt"
FOLLOW_UP = "Where did he speak?"
UNDERSTOOD = "Where did Rob Strayer speak?"
WHERE = "Center for Strategic and International Studies"
OUTPUT = REPO_ROOT / "test-output"


def reply_of(result) -> str:
    return result.history[-1]["content"]


@pytest.fixture(scope="module")
def engine(seed_index):
    """The engine over the seed index with its default reader, which answers the follow-up."""
    from qa import Engine

    return Engine(seed_index)


# ---- one conversation per visitor -----------------------------------------------------------------


def test_a_follow_up_in_the_chat_is_rewritten_shown_and_answered(engine, tmp_path):
    page = PageHandlers(engine, UISettings(data_dir=tmp_path))
    first = page.chat(SEED_QUESTION, [], [])
    assert "Understood as" not in reply_of(first)  # a fresh question needs no context
    follow = page.chat(FOLLOW_UP, first.history, first.turns)
    reply = reply_of(follow)
    assert reply.startswith(f"*Understood as:* {UNDERSTOOD}\n\n**")
    assert WHERE in reply.split("\n\n")[1]  # the answer, in bold, under the rewrite
    assert follow.turns[-1]["question"] == FOLLOW_UP and follow.turns[-1]["understood_as"] == UNDERSTOOD
    assert follow.history[-2] == {"role": "user", "content": FOLLOW_UP}  # the question as typed

    # Another visitor's chat is its own conversation: the same words find no "he" there.
    other = page.chat(FOLLOW_UP, [], [])
    assert "Understood as" not in reply_of(other) and other.turns[-1]["understood_as"] == ""
    # A question that needs no context is left alone in the middle of a conversation too.
    fresh = page.chat("Which Chinese telecom company did the DOJ charge in January?", follow.history, follow.turns)
    assert "Understood as" not in reply_of(fresh)


def test_the_rewrite_is_shown_as_text_never_as_markup(engine, tmp_path):
    page = PageHandlers(engine, UISettings(data_dir=tmp_path))
    first = page.chat("who is <b>Rob Strayer</b>?", [], [])
    follow = page.chat("<i>Where</i> did he speak?", first.history, first.turns)
    line = reply_of(follow).split("\n\n")[0]
    assert line.startswith("*Understood as:*") and "<i>" not in line and "&lt;i&gt;" in line


def test_clear_and_refused_questions_leave_no_context(engine, tmp_path):
    page = PageHandlers(engine, UISettings(data_dir=tmp_path))
    first = page.chat(SEED_QUESTION, [], [])
    refused = page.chat("z" * 5000, first.history, first.turns)
    assert refused.turns[-1] is None
    follow = page.chat(FOLLOW_UP, refused.history, refused.turns)  # the refused turn is skipped
    assert follow.turns[-1]["understood_as"] == UNDERSTOOD
    assert page.conversation_markdown([]) is None  # what Clear leaves: nothing to download


def test_ask_takes_a_history_of_strings_or_earlier_answers(engine, tmp_path):
    page = PageHandlers(engine, UISettings(data_dir=tmp_path))
    alone = page.ask(FOLLOW_UP)
    assert alone["understood_as"] == ""
    first = page.ask(SEED_QUESTION)
    for history in ([SEED_QUESTION], [{"question": SEED_QUESTION, "answer": first}], [first]):
        d = page.ask(FOLLOW_UP, history)
        assert d["understood_as"] == UNDERSTOOD and WHERE in d["text"]
        assert d["citations"][0]["source"] == SEED_NAME
    with pytest.raises(InputError, match=r"history\[0\] must be a question"):
        page.ask(FOLLOW_UP, [5])
    with pytest.raises(InputError, match="history must be a list"):
        page.ask(FOLLOW_UP, "who is Rob Strayer?")
    with pytest.raises(InputError, match=r"history\[0\]\.answer is not an answer dict"):
        parse_history([{"question": "q", "answer": {"text": "x"}}])


# ---- take it away ------------------------------------------------------------------------------------


def test_the_conversation_downloads_as_markdown_with_quotes_and_offsets(engine, tmp_path):
    page = PageHandlers(engine, UISettings(data_dir=tmp_path))
    first = page.chat(SEED_QUESTION, [], [])
    follow = page.chat(FOLLOW_UP, first.history, first.turns)
    markdown = page.conversation_markdown(follow.turns)
    assert markdown.startswith("# Conversation")
    assert f"## 1. {SEED_QUESTION}" in markdown and f"**{SEED_ANSWER}**" in markdown
    assert f"## 2. {FOLLOW_UP}" in markdown and f"*Understood as:* {UNDERSTOOD}" in markdown
    assert f"{SEED_NAME}, characters 1828-1990" in markdown
    quote = first.turns[0]["citations"][0]["quote"]
    assert " ".join(quote.split()) in markdown  # the cited sentence, quoted
    assert "/tmp/" not in markdown and str(REPO_ROOT) not in markdown  # document names only, no server path


def test_the_feedback_downloads_as_jsonl_named_as_on_the_page(engine, tmp_path):
    page = PageHandlers(engine, UISettings(data_dir=tmp_path))
    assert page.feedback_jsonl() is None
    answered = page.chat(SEED_QUESTION, [], [])
    page.rate("up", answered.turns, 0, None, "", False)
    saved = page.feedback.records()[-1]
    assert saved["source"].startswith("/")  # the file on the server keeps the full path
    rows = [json.loads(line) for line in page.feedback_jsonl().splitlines()]
    assert rows[-1]["source"] == SEED_NAME and rows[-1]["answers"] == [SEED_ANSWER]
    assert rows[-1]["context"] == saved["context"]


def test_export_files_are_replaced_and_deleted_only_inside_their_folder(tmp_path):
    exports = Exports(tmp_path / "cache")
    first = exports.write("conversation.md", "one")
    assert Path(first).name == "conversation.md" and Path(first).read_text(encoding="utf-8") == "one"
    second = exports.write("conversation.md", "two", previous=first)
    assert not Path(first).exists() and not Path(first).parent.exists()
    keep = tmp_path / "keep.md"
    keep.write_text("mine", encoding="utf-8")
    exports.discard(str(keep))
    exports.discard(None)
    assert keep.exists()
    exports.discard(second)
    assert not any((tmp_path / "cache").iterdir())


# ---- collections ----------------------------------------------------------------------------------


def test_index_options_name_collections():
    assert parse_index_option("papers=.index/p") == ("papers", ".index/p")
    assert parse_index_option(".index/mine") == ("", ".index/mine")
    assert parse_index_option("milvus://host:19530?collection=x") == ("", "milvus://host:19530?collection=x")
    assert check_collections([("", "a")]) == {"": "a"}
    assert list(check_collections([("b", "x"), ("a", "y")])) == ["b", "a"]
    with pytest.raises(CollectionError, match="write --index NAME=y"):
        check_collections([("a", "x"), ("", "y")])
    with pytest.raises(CollectionError, match="named 'a'"):
        check_collections([("a", "x"), ("a", "y")])
    with pytest.raises(CollectionError, match="must be letters"):
        Collections({"../up": "x"})


def test_several_indexes_each_need_a_name_on_the_command_line(tmp_path, capsys):
    from ui.__main__ import main

    assert main(["--index", "a=x", "--index", "y", "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --index y has no name, and several indexes need one each: write --index NAME=y"


def test_a_collection_that_cannot_open_says_why_without_its_path(tmp_path):
    from qa import Engine

    collections = Collections({"gone": tmp_path / "nothing-here"}, open_engine=Engine)
    with pytest.raises(CollectionError, match=r"collection 'gone' cannot be opened: No index at nothing-here") as e:
        collections.engine("gone")
    assert str(tmp_path) not in str(e.value)
    with pytest.raises(CollectionError, match="no collection named 'x'"):
        collections.engine("x")


CONTRACTS = ("lease.txt", "The office lease with Brambleworth Properties runs until March 2031.\n",
             "When does the office lease run until?", "March 2031")
PAPERS = ("study.txt", "The Velloran study measured glacier retreat in the Anvik valley.\n",
          "What did the Velloran study measure?", "glacier retreat")


@pytest.fixture(scope="module")
def two_collections(tmp_path_factory, embedder):
    """The page over two small indexes, each answering its own question; opened on first pick."""
    from gradio_client import Client

    from index import Index
    from qa import Engine, QASettings
    from ui.app import build_app, start

    root = tmp_path_factory.mktemp("collections")
    locations = {}
    for name, (file_name, text, _, _) in {"contracts": CONTRACTS, "papers": PAPERS}.items():
        docs = root / name / "docs"
        docs.mkdir(parents=True)
        (docs / file_name).write_text(text, encoding="utf-8")
        Index.open(root / name / "index", create=True, embedder=embedder).build(docs, quiet=True)
        locations[name] = root / name / "index"
    opened = []

    def open_engine(location):
        opened.append(Path(location).parent.name)
        return Engine(Index.open(location, embedder=embedder), QASettings(reader="sentence"))

    collections = Collections(locations, open_engine=open_engine)
    settings = UISettings(data_dir=root / "data", port=free_port())
    demo = build_app(collections, settings)
    url = start(demo, settings, prevent_thread_lock=True, quiet=True)
    yield {"client": Client(url, verbose=False), "url": url, "opened": opened, "root": root, "settings": settings,
           "collections": collections}
    demo.close()


def test_each_collection_answers_from_its_own_documents(two_collections):
    client, opened = two_collections["client"], two_collections["opened"]
    assert opened == ["contracts"]  # the first is listed on the page; the other waits to be picked
    _, contract_question, contract_answer = CONTRACTS[0], CONTRACTS[2], CONTRACTS[3]
    paper_question, paper_answer = PAPERS[2], PAPERS[3]

    d = client.predict(contract_question, None, "contracts", api_name="/ask")
    assert d["found"] and d["text"] == contract_answer and d["citations"][0]["source"] == "lease.txt"
    d = client.predict(paper_question, None, "papers", api_name="/ask")
    assert d["found"] and d["text"] == paper_answer and d["citations"][0]["source"] == "study.txt"
    assert opened == ["contracts", "papers"]  # opened once, when first asked
    # Each knows nothing of the other's documents.
    d = client.predict(paper_question, None, "contracts", api_name="/ask")
    assert all(c["source"] == "lease.txt" for c in d["citations"]) and d["text"] != paper_answer
    assert client.predict(contract_question, api_name="/ask")["text"] == contract_answer  # the first by default
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="no collection named 'poems'; pick one of: contracts, papers"):
        client.predict(contract_question, None, "poems", api_name="/ask")
    client.predict(paper_question, None, "papers", api_name="/ask")
    assert opened == ["contracts", "papers"]  # shared, never opened twice


def test_uploads_the_list_and_removal_go_to_the_picked_collection(two_collections, tmp_path):
    from gradio_client import handle_file

    client, settings = two_collections["client"], two_collections["settings"]
    note = tmp_path / "memo.txt"
    note.write_text("The Quillon memo was signed by Dara Pembe.\n", encoding="utf-8")
    status, table, _, _ = client.predict([handle_file(str(note))], "papers", api_name="/add_documents")
    assert "Added 1 document" in status
    assert {row[0] for row in table["data"]} == {"study.txt", "memo.txt"}
    assert (settings.uploads_dir / "papers" / "memo.txt").is_file()  # the collection's own uploads folder
    assert client.predict("Who signed the Quillon memo?", None, "papers", api_name="/ask")["text"] == "Dara Pembe"
    d = client.predict("Who signed the Quillon memo?", None, "contracts", api_name="/ask")
    assert all(c["source"] == "lease.txt" for c in d["citations"])

    status, table, _ = client.predict(["memo.txt"], "contracts", api_name="/remove_documents")
    assert "not in the index" in status and {row[0] for row in table["data"]} == {"lease.txt"}
    status, table, _ = client.predict(["memo.txt"], "papers", api_name="/remove_documents")
    assert status.startswith("Removed 1 document") and {row[0] for row in table["data"]} == {"study.txt"}
    assert not (settings.uploads_dir / "papers" / "memo.txt").exists()


# ---- in the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_app(tmp_path_factory, engine):
    """The page over the seed index (read only) with the default reader."""
    from ui.app import build_app, start

    root = tmp_path_factory.mktemp("ui-conversation")
    settings = UISettings(data_dir=root / "data", port=free_port())
    demo = build_app(engine, settings)
    url = start(demo, settings, prevent_thread_lock=True, quiet=True)
    yield type("App", (), {"url": url, "root": root})
    demo.close()


def test_the_api_answers_a_follow_up_given_the_history(seed_app):
    from gradio_client import Client

    client = Client(seed_app.url, verbose=False)
    first = client.predict(SEED_QUESTION, api_name="/ask")
    assert first["text"] == SEED_ANSWER and first["understood_as"] == ""
    follow = client.predict(FOLLOW_UP, [first], api_name="/ask")
    assert follow["question"] == FOLLOW_UP and follow["understood_as"] == UNDERSTOOD
    assert follow["found"] and WHERE in follow["text"] and follow["citations"][0]["source"] == SEED_NAME
    assert client.predict(FOLLOW_UP, [SEED_QUESTION], api_name="/ask")["understood_as"] == UNDERSTOOD


def test_the_page_shows_the_rewrite_of_a_follow_up_and_downloads_the_conversation(seed_app):
    from ui.screenshot import CHROMIUM, CHROMIUM_ARGS, ask_in_page

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser at {CHROMIUM}: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 1000}, accept_downloads=True)
            page.goto(seed_app.url)
            page.wait_for_selector("#qa-question textarea")
            assert not page.locator("#qa-collection").is_visible()  # one index: nothing to pick
            ask_in_page(page, SEED_QUESTION, expect=SEED_ANSWER)
            assert "Understood as" not in page.locator("#qa-chat .bot").last.inner_text()
            ask_in_page(page, FOLLOW_UP, expect="Understood as")
            reply = page.locator("#qa-chat .bot").last.inner_text()
            assert f"Understood as: {UNDERSTOOD}" in reply and WHERE in reply
            OUTPUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT / "ui-conversation.png"))

            button = page.locator("#qa-download-conversation")
            page.wait_for_function("() => !document.querySelector('#qa-download-conversation').disabled",
                                   timeout=10_000)
            with page.expect_download(timeout=10_000) as download:
                button.click()
            saved = Path(download.value.path()).read_text(encoding="utf-8")
            assert download.value.suggested_filename == "conversation.md"
            assert f"*Understood as:* {UNDERSTOOD}" in saved and f"{SEED_NAME}, characters 1828-1990" in saved
            assert str(seed_app.root) not in saved

            page.click("#qa-clear")  # a new conversation: the follow-up has nothing to point at
            page.wait_for_function("() => document.querySelectorAll('#qa-chat .bot').length == 0", timeout=10_000)
            assert page.locator("#qa-download-conversation").is_disabled()
            ask_in_page(page, FOLLOW_UP)
            assert "Understood as" not in page.locator("#qa-chat .bot").last.inner_text()
        finally:
            browser.close()


def test_picking_a_collection_in_the_page_lists_and_answers_from_it(two_collections):
    from ui.screenshot import CHROMIUM, CHROMIUM_ARGS, ask_in_page

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser at {CHROMIUM}: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 1000})
            page.goto(two_collections["url"])
            page.wait_for_selector("#qa-question textarea")
            ask_in_page(page, CONTRACTS[2], expect=CONTRACTS[3])
            page.click("#qa-collection input")
            page.get_by_role("option", name="papers").click()
            page.wait_for_function("() => document.querySelectorAll('#qa-chat .bot').length == 0", timeout=10_000)
            ask_in_page(page, PAPERS[2], expect=PAPERS[3])
            assert "study.txt" in page.locator("#qa-chat .bot").last.inner_text()
            page.get_by_role("tab", name="Documents").click()
            page.locator("#qa-documents", has_text="study.txt").wait_for(timeout=10_000)
            assert page.locator("#qa-documents", has_text="lease.txt").count() == 0
            OUTPUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT / "ui-collections.png"))
        finally:
            browser.close()
