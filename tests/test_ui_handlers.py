"""What the page's buttons do, called directly (no browser, no web server)."""

from __future__ import annotations

import pytest

from tests.ui_helpers import (
    FESTIVAL_ANSWER, FESTIVAL_NAME, FESTIVAL_QUESTION, SEED_ANSWER, SEED_QUESTION, write_test_files,
)
from ui.handlers import InputError, PageHandlers, message_turn, rating_of
from ui.names import DocumentNames
from ui.settings import UISettings

SEED_NAME = "000_ffecf142e84792ea.txt"


@pytest.fixture
def own_engine(tmp_path, embedder):
    """An engine over its own index of one small document, free to change."""
    from index import Index
    from qa import Engine, QASettings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("The library opens at nine. Ada Brook runs it.\n", encoding="utf-8")
    index = Index.open(tmp_path / "index", create=True, embedder=embedder)
    index.build(docs, quiet=True)
    return Engine(index, QASettings(reader="sentence"))


def test_documents_get_short_unique_names_and_paths_leave_messages():
    names = DocumentNames(["/srv/a/2024/notes.txt", "/srv/b/2024/notes.txt", "/srv/b/faq.md", "/srv/c/notes.md"])
    assert names.names() == ["a/2024/notes.txt", "b/2024/notes.txt", "faq.md", "notes.md"]
    assert names.source("b/2024/notes.txt") == "/srv/b/2024/notes.txt"
    assert names.source("notes.txt") is None and names.source("../../etc/passwd") is None
    assert names.scrub("/srv/b/faq.md: not UTF-8; see /var/log/x/y.log and/or /tmp/up/z.txt",
                       folders=["/tmp/up"]) == "faq.md: not UTF-8; see y.log and/or z.txt"


def test_a_chat_message_is_answered_with_named_sources(seed_engine, tmp_path):
    page = PageHandlers(seed_engine, UISettings(data_dir=tmp_path))
    assert page.chat("   ", [], []) is None
    result = page.chat(SEED_QUESTION, [], [])
    user, reply = result.history
    assert user == {"role": "user", "content": "who is Rob Strayer?"}
    assert reply["content"].startswith(f"**{SEED_ANSWER}** <sup>[1]</sup>")
    assert result.turn == 0 and result.turns[0]["text"] == SEED_ANSWER
    assert result.sources.choices[0][0].startswith(f"[1] {SEED_NAME}, characters")
    assert f"File: <code>{SEED_NAME}</code>" in result.sources.html and str(tmp_path) not in result.sources.html
    assert page.ask(SEED_QUESTION)["citations"][0]["source"] == SEED_NAME

    refused = page.chat("who is \ud800?", result.history, result.turns)
    assert refused.history[-2]["content"] == "who is ??"  # echoed without the broken character
    assert "not valid Unicode" in refused.history[-1]["content"] and refused.turns[-1] is None
    with pytest.raises(InputError, match="not valid Unicode"):
        page.ask("who is \ud800?")
    with pytest.raises(InputError, match="must be text, got list"):
        page.ask(["who"])


def test_chat_thumbs_map_to_the_answer_they_rate(seed_engine, tmp_path):
    page = PageHandlers(seed_engine, UISettings(data_dir=tmp_path))
    history = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
               {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]
    assert [message_turn(history, i) for i in (0, 1, 2, 3, 4, "x")] == [0, 0, 1, 1, None, None]
    assert [rating_of(v) for v in (True, "Like", False, "Dislike", None)] == ["up", "up", "down", "down", None]
    assert page.like(history, [], 9, True, "", False) == (None, "Rate an answer, not a question.")
    assert page.like(history, [], 3, True, "", False) == (1, "Ask a question first, then rate its answer.")
    answered = page.chat(SEED_QUESTION, [], [])
    turn, status = page.like(answered.history, answered.turns, 1, "Like", "", False)
    assert turn == 0 and status.startswith("Saved 👍") and "<code>feedback.jsonl</code>" in status
    assert page.feedback.records()[-1]["answers"] == [SEED_ANSWER]


def test_an_upload_is_indexed_file_by_file_with_progress_and_leaves_no_cached_copy(own_engine, tmp_path):
    cache = tmp_path / "web-cache"
    incoming = write_test_files(cache / "abc123")
    junk = cache / "def456" / "junk.txt"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(bytes(range(256)) * 40)
    settings = UISettings(data_dir=tmp_path / "data")
    page = PageHandlers(own_engine, settings, upload_cache=cache)

    steps = []
    change = page.add_uploads([str(p) for p in incoming.values()] + [str(junk)],
                              progress=lambda done, total, what: steps.append((done, total, what)))
    assert [s[:2] for s in steps] == [(0, 3), (1, 3), (2, 3), (3, 3)] and steps[-1][2] == "Done"
    assert "**Added 2 document(s)**" in change.status and "Rejected <code>junk.txt</code>" in change.status
    assert str(tmp_path) not in change.status
    assert not any(p.is_file() for p in cache.rglob("*"))  # the web server's copies are gone
    assert sorted(p.name for p in settings.uploads_dir.iterdir()) == sorted(incoming)  # no copy of the junk
    rows = {row[0]: row for row in change.documents.rows}
    assert rows[FESTIVAL_NAME][3] == "uploaded" and rows["notes.txt"][3] == "folder"
    assert page.ask(FESTIVAL_QUESTION)["text"] == FESTIVAL_ANSWER

    removed = page.remove([FESTIVAL_NAME, "notes.txt", "../notes.txt"])
    assert removed.status.startswith("Removed 2 document(s)") and "<code>../notes.txt</code>: not in the index" in removed.status
    assert not (settings.uploads_dir / FESTIVAL_NAME).exists()
    assert (tmp_path / "docs" / "notes.txt").is_file()  # a document from a folder leaves the index, not the disk
    assert page.remove([]).status == "Choose documents to remove."
    assert page.add_uploads([]).status == "Choose files to add."
