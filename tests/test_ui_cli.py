"""python -m ui as a user starts it: options before anything loads, one-line errors."""

from __future__ import annotations

from ui.__main__ import main


def test_an_index_location_is_passed_to_the_engine_and_its_error_is_one_line(tmp_path, capsys):
    missing = tmp_path / "no-such-index"
    assert main(["--index", str(missing), "--data", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "no-such-index" in err
    assert not missing.exists()  # opening an index never creates one


def test_bad_numbers_are_refused_before_anything_loads(tmp_path, capsys):
    assert main(["--port", "0", "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: port must be in 1-65535. Currently, port is 0"
    assert main(["--concurrency", "0", "--data", str(tmp_path)]) == 2
    assert "concurrency_limit must be at least 1" in capsys.readouterr().err


def test_the_page_keeps_a_watched_folder_indexed(tmp_path, embedder):
    """python -m ui --watch FOLDER: a file dropped into the folder while the page runs is
    indexed behind it (and the page serves meanwhile)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from index import Index

    docs, location = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    (docs / "first.txt").write_text("The harbour of Port Ellen was built in 1821.\n", encoding="utf-8")
    Index.open(location, create=True, embedder=embedder).build(docs, quiet=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page = subprocess.Popen(
        [sys.executable, "-m", "ui", "--index", str(location), "--watch", str(docs), "--port", str(port),
         "--data", str(tmp_path / "data"), "--reader", "sentence"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except OSError:
                assert page.poll() is None and time.monotonic() < deadline, "the page did not start"
                time.sleep(1)
        (docs / "keeper.txt").write_text("The lighthouse keeper of Port Ellen is Marguerite Okafor.\n", encoding="utf-8")
        deadline = time.monotonic() + 90
        while not any(d.source.endswith("keeper.txt") for d in Index.open(location).documents()):
            assert page.poll() is None and time.monotonic() < deadline, "the watched file was not indexed"
            time.sleep(1)
    finally:
        os.killpg(page.pid, signal.SIGTERM)
        page.wait(timeout=30)
