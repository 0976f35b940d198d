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
