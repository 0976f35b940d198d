"""The chat page through its Gradio API, as a script (or the page itself) would use it.

One app is launched on a free loopback port over a temporary index of seeds/; each test
uses its own gradio_client session.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.ui_helpers import (
    FESTIVAL_ANSWER, FESTIVAL_NAME, FESTIVAL_QUESTION, INJECTION_NAME, INJECTION_QUESTION, REPO_ROOT, SEED_ANSWER,
    SEED_QUESTION, launch_test_app,
)

SEED_NAME = "000_ffecf142e84792ea.txt"


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedder):
    running = launch_test_app(tmp_path_factory.mktemp("ui-api"), embedder)
    yield running
    running.close()


@pytest.fixture
def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


def chat(client, question: str) -> dict:
    """Send ``question`` through the chat; the page's outputs by name."""
    # Outputs: question box, chatbot, citation picker, passage view, correction box
    # (the two State outputs stay on the server).
    box, history, picker, passage, correction = client.predict(question, [], api_name="/chat")
    reply = history[-1]
    text = "".join(part.get("text", "") for part in reply["content"]) if isinstance(reply["content"], list) else reply["content"]
    return {"history": history, "reply": text, "picker": picker, "passage": passage}


def upload(client, *paths: Path) -> tuple[str, dict]:
    from gradio_client import handle_file

    status, table, _choices, _files = client.predict([handle_file(str(p)) for p in paths], api_name="/add_documents")
    return status, table


def test_ask_endpoint_returns_the_answer_dict(client):
    d = client.predict(SEED_QUESTION, api_name="/ask")
    assert d["found"] is True
    assert d["text"] == SEED_ANSWER
    c = d["citations"][0]
    assert c["source"] == SEED_NAME  # the page's name for it, not the server's path
    assert "Rob Strayer" in c["quote"]
    assert c["context"][c["answer_start"] - c["context_start"]:c["answer_end"] - c["context_start"]] == SEED_ANSWER


def test_chat_reply_shows_bold_answer_marks_quote_and_location(client):
    out = chat(client, SEED_QUESTION)
    reply = out["reply"]
    assert reply.startswith(f"**{SEED_ANSWER}** <sup>[1]</sup>")
    assert "Rob Strayer at an event" in reply
    assert "000\\_ffecf142e84792ea.txt, characters 1828–1990" in reply  # the file name, Markdown-escaped
    # The sources panel shows the passage, the answer span and its sentence highlighted, and the path.
    passage = out["passage"]
    assert f'<mark class="qa-answer">{SEED_ANSWER}</mark>' in passage
    assert '<mark class="qa-sentence">' in passage and "Rob Strayer at an event" in passage
    assert SEED_NAME in passage and "qa-not-answer" not in passage
    assert out["picker"]["value"] == 0 and out["picker"]["choices"][0][0].startswith(f"[1] {SEED_NAME}")


def test_ask_with_a_history_understands_a_follow_up(client):
    from gradio_client.exceptions import AppError

    first = client.predict(SEED_QUESTION, api_name="/ask")
    assert first["understood_as"] == ""
    for history in ([SEED_QUESTION], [first], [{"question": SEED_QUESTION, "answer": first}]):
        d = client.predict("Where did he speak?", history, api_name="/ask")
        assert d["question"] == "Where did he speak?" and d["understood_as"] == "Where did Rob Strayer speak?"
        assert "Rob Strayer at an event" in d["citations"][0]["quote"]
    assert client.predict("Where did he speak?", api_name="/ask")["understood_as"] == ""  # no history: as typed
    with pytest.raises(AppError, match=r"^history\[0\] must be a question or a dict"):
        client.predict("Where did he speak?", [3], api_name="/ask")


def test_each_chat_session_is_its_own_conversation(app):
    from gradio_client import Client

    alice, bob = Client(app.url, verbose=False), Client(app.url, verbose=False)
    first = chat(alice, SEED_QUESTION)
    assert "Understood as" not in first["reply"]
    _, history, _, _, _ = alice.predict("Where did he speak?", first["history"], api_name="/chat")
    assert history[-1]["content"][0]["text"].startswith("*Understood as:* Where did Rob Strayer speak?\n\n")
    assert "Understood as" not in chat(bob, "Where did he speak?")["reply"]  # bob never asked about anyone


def test_unanswerable_question_says_so_and_marks_passages_as_not_an_answer(client):
    out = chat(client, "What is the capital of France?")
    assert "the documents don't answer this question" in out["reply"]
    assert "not an answer" in out["reply"]
    assert "Closest passage — not an answer" in out["passage"]


def test_a_bad_question_gets_the_engine_message(client):
    out = chat(client, "x" * 5000)
    assert "the limit is" in out["reply"]


def test_uploaded_document_is_askable_right_away_and_can_be_removed(app, client):
    status, table = upload(client, app.files[FESTIVAL_NAME])
    assert "Added 1 document" in status and FESTIVAL_NAME.replace("_", "\\_") in status
    rows = {row[0]: row for row in table["data"]}
    assert rows[FESTIVAL_NAME][1] >= 1 and rows[FESTIVAL_NAME][3] == "uploaded"  # chunk count, origin
    stored = app.settings.uploads_dir / FESTIVAL_NAME
    assert stored.is_file()

    d = client.predict(FESTIVAL_QUESTION, api_name="/ask")
    assert d["found"] and d["text"] == FESTIVAL_ANSWER
    assert d["citations"][0]["source"] == FESTIVAL_NAME

    again, _ = upload(client, app.files[FESTIVAL_NAME])
    assert "unchanged" in again

    removed, table, _ = client.predict([FESTIVAL_NAME], api_name="/remove_documents")
    assert "Removed 1 document" in removed
    assert FESTIVAL_NAME not in {row[0] for row in table["data"]}
    assert not stored.exists()
    d = client.predict(FESTIVAL_QUESTION, api_name="/ask")
    assert all(c["source"] != FESTIVAL_NAME for c in d["citations"])


def test_rejected_uploads_are_named_with_the_reason(tmp_path, app, client):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    status, _ = upload(client, empty)
    assert "Rejected <code>empty.txt</code>: file is empty" in status


def test_feedback_lands_in_the_jsonl_test_set(app, client):
    from qa.eval.datasets import load_jsonl

    path = app.settings.feedback_path
    before = len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0
    chat(client, SEED_QUESTION)
    saved = client.predict(None, "", False, api_name="/rate_up")
    assert saved.startswith("Saved 👍") and path.name in saved and str(path) not in saved
    refused = client.predict(None, "", False, api_name="/rate_down")
    assert refused.startswith("Not saved")
    client.predict(None, "a State Department official", False, api_name="/rate_down")
    chat(client, "What is the capital of France?")
    client.predict(None, "", True, api_name="/rate_up")

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()][before:]
    assert [r["rating"] for r in rows] == ["up", "down", "up"]
    up, down, unanswerable = rows
    assert up["question"] == SEED_QUESTION and up["answers"] == [SEED_ANSWER] and up["prediction"] == SEED_ANSWER
    assert Path(up["source"]).name == SEED_NAME and "Rob Strayer" in up["context"]
    assert up["timestamp"]
    assert down["answers"] == ["a State Department official"]
    assert unanswerable["answers"] == [] and unanswerable["prediction"] == ""
    # The evaluation tool reads the file as a test set.
    evalset = load_jsonl(path)
    assert any(not q.answerable for q in evalset.questions)
    assert any(q.answers == (SEED_ANSWER,) for q in evalset.questions)


def test_html_in_a_document_comes_back_escaped(app, client):
    upload(client, app.files[INJECTION_NAME])
    out = chat(client, INJECTION_QUESTION)
    for shown in (out["reply"], out["passage"]):
        assert "<img" not in shown and "<script" not in shown
        assert "&lt;img src=x onerror=" in shown and "&lt;script&gt;" in shown
    assert "${" not in out["passage"] and "{{" not in out["passage"]
    question_echo = chat(client, "<b>bold?</b> <script>alert(1)</script>")["history"][0]
    assert "<script>" not in json.dumps(question_echo)


def test_many_visitors_at_once_while_another_uploads(app, client):
    from gradio_client import Client

    def ask_once(_):
        return Client(app.url, verbose=False).predict(SEED_QUESTION, api_name="/ask")["text"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = pool.map(ask_once, range(4))
        status, _ = upload(client, app.files[FESTIVAL_NAME])
        assert "document" in status
        assert list(answers) == [SEED_ANSWER] * 4


def test_an_uploaded_file_is_not_left_downloadable_in_the_web_cache(app, client):
    import httpx

    with app.files[FESTIVAL_NAME].open("rb") as f:
        sent = httpx.post(app.url + "gradio_api/upload", files=[("files", (FESTIVAL_NAME, f))])
    cached = sent.json()[0]
    assert httpx.get(app.url + "gradio_api/file=" + cached).status_code == 200  # served until the page takes it
    status, _, _, _ = client.predict([{"path": cached, "meta": {"_type": "gradio.FileData"}}],
                                     api_name="/add_documents")
    assert FESTIVAL_NAME.replace("_", "\\_") in status
    assert not Path(cached).exists()
    assert httpx.get(app.url + "gradio_api/file=" + cached).status_code >= 400
    # The page's own copy is not served either, and is deleted with the document.
    stored = app.settings.uploads_dir / FESTIVAL_NAME
    assert stored.is_file()
    assert httpx.get(app.url + "gradio_api/file=" + str(stored.resolve())).status_code >= 400
    client.predict([FESTIVAL_NAME], api_name="/remove_documents")
    assert not stored.exists()


def test_remove_only_removes_indexed_documents_by_their_shown_name(app, client, tmp_path):
    outside = tmp_path / "keep.txt"
    outside.write_text("not indexed", encoding="utf-8")
    status, table, _ = client.predict(
        ["../../etc/passwd", str(outside), "../" + SEED_NAME, "uploads/../../" + SEED_NAME], api_name="/remove_documents"
    )
    assert status.startswith("Removed 0 document(s)") and status.count("not in the index") == 4
    assert outside.exists() and SEED_NAME in {row[0] for row in table["data"]}


def test_nothing_the_page_serves_holds_a_server_path(app, client):
    import httpx

    upload(client, app.files[INJECTION_NAME])
    served = [
        httpx.get(app.url + "config").text,
        httpx.get(app.url + "gradio_api/info").text,
        json.dumps(client.predict(SEED_QUESTION, api_name="/ask")),
        json.dumps(chat(client, INJECTION_QUESTION)),
        json.dumps(client.predict(None, "", False, api_name="/rate_up")),
        json.dumps(upload(client, app.files[INJECTION_NAME])),
    ]
    for text in served:
        assert str(app.root) not in text and str(REPO_ROOT) not in text
        assert str(app.settings.uploads_dir) not in text


def test_a_refused_question_is_one_line_for_the_user_and_one_in_the_log(client, capfd, caplog):
    from gradio_client.exceptions import AppError

    capfd.readouterr()
    caplog.set_level("WARNING", logger="ui")
    with pytest.raises(AppError, match=r"^question is empty; type a question such as 'who is Rob Strayer\?'$"):
        client.predict("   ", api_name="/ask")
    with pytest.raises(AppError, match=r"question must be text, got int"):
        client.predict(5, api_name="/ask")
    chat(client, "y" * 5000)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err  # the web server prints nothing of its own for these
    lines = [r.getMessage() for r in caplog.records if r.name == "ui"]
    assert [line.split(":")[0] for line in lines] == ["refused input on /ask"] * 2 + ["refused input on /chat"]
    assert all("\n" not in line for line in lines)


# ---- pure parts ------------------------------------------------------------------------------


def test_safe_name_drops_folders_and_odd_characters():
    from ui.uploads import safe_name

    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\x\\My Report (final).PDF") == "My_Report_final.pdf"
    assert not safe_name(".bashrc").startswith(".")
    assert safe_name("....") == "upload"


def test_oversized_and_unsupported_uploads_are_refused(tmp_path):
    from ui.uploads import store_uploads

    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * 2_000)
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    ok = tmp_path / "note.md"
    ok.write_text("# Note\nhello", encoding="utf-8")
    result = store_uploads([big, exe, ok], tmp_path / "uploads", max_bytes=1_000)
    reasons = dict(result.rejected)
    assert "the limit is" in reasons["big.txt"]
    assert "unsupported file type '.exe'" in reasons["tool.exe"]
    assert [p.name for p in result.stored] == ["note.md"]
    # A different file with the same name never overwrites the stored one.
    ok.write_text("# Note\nchanged", encoding="utf-8")
    second = store_uploads([ok], tmp_path / "uploads", max_bytes=1_000)
    assert [p.name for p in second.stored] == ["note-2.md"]
    assert (tmp_path / "uploads" / "note.md").read_text(encoding="utf-8").endswith("hello")
