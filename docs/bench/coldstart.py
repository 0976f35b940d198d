"""Cold start: a fresh ``python -m qa`` answering one question, and a fresh page until it serves.

    .venv/bin/python docs/bench/coldstart.py --runs 5 --out bench-output/coldstart.json

Builds an index of ``seeds/`` once (not timed), then, ``--runs`` times each:

* ``python -m qa --index IDX "who is Rob Strayer?"``: wall time from start to exit and the
  process's peak resident memory (``os.wait4``), and the answer it printed;
* ``python -m ui --index IDX --port PORT``: wall time from start until ``GET /`` answers 200.

Prints one JSON record with every run, the medians, and the reader backend that answered.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "who is Rob Strayer?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask_once(index: Path) -> dict:
    with tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "qa", "--index", str(index), QUESTION], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # reaps the child and gives its own peak memory
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise RuntimeError(f"python -m qa failed ({proc.returncode}): {err.read()[-1000:]}")
    return {"seconds": round(seconds, 3), "answer": out.strip().splitlines()[0] if out.strip() else "",
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def page_once(index: Path, data: Path) -> float:
    port = free_port()
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ui", "--index", str(index), "--port", str(port), "--data", str(data)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - began < 300:
            if proc.poll() is not None:
                raise RuntimeError(f"python -m ui exited with {proc.returncode} before serving")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        return round(time.perf_counter() - began, 3)
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the page did not answer within 300 s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path, default=None, help="write the JSON record here too")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from index import Index
    from qa.engine import Engine

    work = Path(tempfile.mkdtemp(prefix="coldstart-"))
    try:
        index = work / "index"
        Index.open(index, create=True).build(ROOT / "seeds", quiet=True)
        backend = Engine(Index.open(index)).reader("neural").backend
        asks = [ask_once(index) for _ in range(args.runs)]
        pages = [page_once(index, work / f"data-{n}") for n in range(args.runs)]
        record = {
            "runs": args.runs, "reader_backend": backend,
            "ask": asks, "ask_median_s": statistics.median(a["seconds"] for a in asks),
            "page": pages, "page_median_s": statistics.median(pages),
            "load_average": os.getloadavg(),
        }
        text = json.dumps(record, indent=2)
        print(text)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n", encoding="utf-8")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
