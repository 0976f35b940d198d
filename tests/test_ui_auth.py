"""Who may open the page: password hashes, the auth file, and the refusal to serve the network without one."""

from __future__ import annotations

import pytest

from tests.ui_helpers import SEED_ANSWER, SEED_QUESTION, launch_test_app
from ui.__main__ import main
from ui.auth import AuthFileError, PasswordCheck, hash_password, load_auth_file, parse_auth_lines, verify_password
from ui.settings import UISettings, is_loopback

FAST = 1_000  # iterations for tests; the file format carries the count, the default is 600,000


def test_a_password_matches_its_hash_and_nothing_else():
    encoded = hash_password("correct horse", iterations=FAST)
    scheme, iterations, salt, digest = encoded.split("$")
    assert (scheme, iterations) == ("pbkdf2_sha256", str(FAST)) and salt and digest
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsE", encoded)
    assert hash_password("correct horse", iterations=FAST) != encoded  # a new salt each time
    assert hash_password("x").split("$")[1] == "600000"


def test_the_auth_file_checks_users_and_says_which_line_is_wrong(tmp_path):
    good = "alice:" + hash_password("wonderland", iterations=FAST)
    check = PasswordCheck(parse_auth_lines(["# users", "", good]))
    assert check.verify("alice", "wonderland")
    assert not check.verify("alice", "looking-glass") and not check.verify("bob", "wonderland")

    with pytest.raises(AuthFileError, match=r"line 2: expected user:pbkdf2_sha256\$ITERATIONS\$SALT\$HASH") as e:
        parse_auth_lines([good, "bob:hunter2"])
    assert "hunter2" not in str(e.value)  # a password typed in by mistake is never echoed
    with pytest.raises(AuthFileError, match="user 'alice' appears twice"):
        parse_auth_lines([good, good])
    with pytest.raises(AuthFileError, match="has no users"):
        parse_auth_lines(["# nobody yet"])
    with pytest.raises(AuthFileError, match="cannot read the auth file missing.txt"):
        load_auth_file(tmp_path / "missing.txt")


def test_hash_password_prints_a_line_for_the_auth_file(monkeypatch, capsys):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "s3cret pass")
    assert main(["hash-password", "carol"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("carol:pbkdf2_sha256$600000$")
    assert PasswordCheck(parse_auth_lines([line])).verify("carol", "s3cret pass")

    answers = iter(["one", "two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["hash-password", "carol"]) == 2
    assert "the two passwords differ" in capsys.readouterr().err


def test_serving_the_network_without_a_password_is_refused_in_one_line(tmp_path, capsys):
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert is_loopback(host)
    for host in ("0.0.0.0", "::", "192.168.1.20", "myhost.example"):
        assert not is_loopback(host)

    assert main(["--host", "0.0.0.0", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--host 0.0.0.0 exposes the page" in err and "--auth-file FILE" in err and "--insecure-no-auth" in err
    assert main(["--host", "0.0.0.0", "--auth-file", str(tmp_path / "none.txt"), "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: cannot read the auth file none.txt (No such file or directory)"

    assert UISettings(host="0.0.0.0", insecure_no_auth=True).host == "0.0.0.0"
    assert UISettings(host="0.0.0.0", auth_file=tmp_path / "users.txt").auth_file == tmp_path / "users.txt"


def test_the_page_and_its_api_ask_for_the_password(tmp_path_factory, embedder):
    import httpx
    from gradio_client import Client

    root = tmp_path_factory.mktemp("ui-auth")
    users = root / "users.txt"
    users.write_text("dana:" + hash_password("open sesame", iterations=FAST) + "\n", encoding="utf-8")
    app = launch_test_app(root, embedder, auth_file=users)
    try:
        assert httpx.get(app.url + "config").status_code == 401
        assert httpx.get(app.url + "gradio_api/info").status_code == 401
        login = httpx.post(app.url + "login", data={"username": "dana", "password": "wrong"})
        assert login.status_code == 400
        with pytest.raises(Exception):
            Client(app.url, auth=("dana", "wrong"), verbose=False)
        client = Client(app.url, auth=("dana", "open sesame"), verbose=False)
        assert client.predict(SEED_QUESTION, api_name="/ask")["text"] == SEED_ANSWER
    finally:
        app.close()
