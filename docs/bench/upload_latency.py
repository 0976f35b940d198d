"""Question latency on the page while a large upload is indexed, against the same questions idle.

Starts the page (``ui.app``, default engine and reader) on a fresh index of ``seeds/`` on a
loopback port, asks the seed questions through its ``/ask`` API one at a time (idle), then
uploads one file of real English text (``--megabytes``, default 20: the page's per-file limit)
through ``/add_documents`` and keeps asking from ``--clients`` API clients until the upload is
indexed (or, with ``--measure-seconds N``, for the first N seconds of it). The page indexes uploads at low CPU priority (``index.background``). Prints one JSON record (idle and during-upload p50/p95, their ratio, the upload's
size, chunks and seconds) and writes it to ``--out``:

    .venv/bin/python docs/bench/upload_latency.py --data ../shared/data --out bench-output/upload.json
    .venv/bin/python docs/bench/upload_latency.py --data ../shared/data --measure-seconds 300

The upload's text is drawn from the data folder: the BEIR SciFact abstracts, then the
contexts of the ``qa-train`` sets, each paragraph once, numbered when the folder holds less
text than asked for (so no two chunks are the same and nothing is skipped as a duplicate).
Each client waits ``--pause`` seconds between questions, as a person reading the answer does.
Answers that differ from the idle engine's are listed (the upload's text changes the BM25
statistics once it is committed); the timings are what the benchmark reports.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def paragraphs(data: Path) -> Iterator[str]:
    """Real paragraphs from the shared data sets, each once."""
    with (data / "beir-scifact" / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            yield f"{row['title']}\n{row['text']}"
    seen: set[str] = set()
    for path in sorted((data / "qa-train").glob("*.json")):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for p in article["paragraphs"]:
                if p["context"] not in seen:
                    seen.add(p["context"])
                    yield p["context"]


def write_upload(path: Path, data: Path, megabytes: float) -> int:
    """A text file of about ``megabytes`` MB of distinct paragraphs; returns its size in bytes."""
    target = int(megabytes * 1e6)
    size, copy = 0, 0
    with path.open("w", encoding="utf-8") as out:
        while size < target:
            copy += 1
            for text in paragraphs(data):
                block = (text if copy == 1 else f"({copy}) {text}") + "\n\n"
                out.write(block)
                size += len(block.encode("utf-8"))
                if size >= target:
                    break
    return size


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    p.add_argument("--megabytes", type=float, default=20.0, help="size of the uploaded file (default 20)")
    p.add_argument("--clients", type=int, default=2, help="API clients asking during the upload (default 2)")
    p.add_argument("--pause", type=float, default=1.0,
                   help="seconds each client waits between its questions, as a person reading the answer (default 1)")
    p.add_argument("--idle-rounds", type=int, default=3, help="times each seed question is asked idle (default 3)")
    p.add_argument("--measure-seconds", type=float, default=None,
                   help="stop asking this many seconds into the upload and report without waiting for it to finish "
                        "(default: ask until the upload is indexed)")
    p.add_argument("--out", type=Path, default=None, help="write the JSON record here too")
    p.add_argument("--trace", type=int, default=0, metavar="N",
                   help="also report the N slowest questions during the upload: the engine's own time, and the "
                        "stalls of a 5 ms ticker thread (a thread holding the interpreter lock) with where the "
                        "indexing thread was at each")
    args = p.parse_args(argv)

    from gradio_client import Client, handle_file

    from index import Index
    from qa import Engine
    from ui.app import UISettings, build_app, start

    questions = [json.loads(line) for line in (ROOT / "tests" / "data" / "seed_questions.jsonl").read_text().splitlines()
                 if line.strip()]
    root = Path(tempfile.mkdtemp(prefix="upload-latency-"))
    try:
        shutil.copytree(ROOT / "seeds", root / "docs")
        index = Index.open(root / "index", create=True)
        index.build(root / "docs", quiet=True)
        engine = Engine(index)
        tracer = Tracer(engine) if args.trace else None
        expected = {q["question"]: engine.ask(q["question"]).text for q in questions}  # also warms every model
        upload = root / "upload" / "large_upload.txt"
        upload.parent.mkdir()
        size = write_upload(upload, args.data, args.megabytes)
        settings = UISettings(data_dir=root / "data", port=free_port(), max_upload_bytes=max(size + 1, 20_000_000))
        demo = build_app(engine, settings)
        url = start(demo, settings, prevent_thread_lock=True, quiet=True)
        changed: list[str] = []

        def timed_ask(client: Client, question: str) -> tuple[float, float]:
            began = time.perf_counter()
            text = client.predict(question, api_name="/ask")["text"]
            if text != expected[question]:  # the upload's text changes BM25 statistics once it is committed
                changed.append(f"{question!r}: {text!r} (before the upload: {expected[question]!r})")
            return began, time.perf_counter() - began

        asker = Client(url, verbose=False)
        if tracer:
            tracer.start()
        idle = [timed_ask(asker, q["question"])[1] for _ in range(args.idle_rounds) for q in questions]

        uploader = Client(url, verbose=False)
        upload_began = time.perf_counter()
        job = uploader.submit([handle_file(str(upload))], api_name="/add_documents")
        done = threading.Event()
        job.add_done_callback(lambda _: done.set())

        stop_at = upload_began + args.measure_seconds if args.measure_seconds else float("inf")

        def ask_until_done(n: int) -> list[tuple[float, float]]:
            client, asked, i = Client(url, verbose=False), [], n
            while not done.is_set() and time.perf_counter() < stop_at:
                asked.append(timed_ask(client, questions[i % len(questions)]["question"]))
                i += 1
                done.wait(args.pause)
            return asked

        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            timed = [t for asked in pool.map(ask_until_done, range(args.clients)) for t in asked]
        finished = done.is_set()
        if tracer:
            tracer.stop()
        status = job.result()[0] if finished else ""
        upload_seconds = time.perf_counter() - upload_began
        during = [s for began, s in timed if began + s <= upload_began + upload_seconds]
        chunks = next((d.chunks for d in engine.documents() if d.source.endswith("large_upload.txt")), 0)
        demo.close()
        record = {
            "upload": {"megabytes": round(size / 1e6, 2), "finished": finished, "chunks": chunks,
                       "seconds": round(upload_seconds, 1) if finished else None,
                       "measured_seconds": round(upload_seconds, 1), "status": status.splitlines()[0] if status else ""},
            "clients": args.clients,
            "idle": {"questions": len(idle), "p50_s": round(statistics.median(idle), 3),
                     "p95_s": round(percentile(idle, 95), 3)},
            "during_upload": {"questions": len(during), "p50_s": round(statistics.median(during), 3) if during else None,
                              "p95_s": round(percentile(during, 95), 3) if during else None,
                              "max_s": round(max(during), 3) if during else None},
            "answers_changed": changed,
        }
        if tracer:
            record["slowest"] = tracer.slowest(timed, args.trace, upload_began)
        if during:
            record["p50_ratio"] = round(record["during_upload"]["p50_s"] / record["idle"]["p50_s"], 2)
            record["p95_ratio"] = round(record["during_upload"]["p95_s"] / record["idle"]["p95_s"], 2)
        text = json.dumps(record, indent=2)
        print(text)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n", encoding="utf-8")
        code = 1 if not during or (finished and "Added 1 document" not in status) else 0
        if not finished:  # the upload goes on in a worker thread that the interpreter's exit would wait for
            sys.stdout.flush()
            shutil.rmtree(root, ignore_errors=True)
            os._exit(code)
        return code
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Tracer:
    """Where the time of slow questions went: the engine's own seconds for each ``ask``, and the
    moments when a thread that wakes every 5 ms woke late (some thread held the interpreter
    lock, or the process got no CPU), each with the indexing thread's innermost frames."""

    TICK, LATE = 0.005, 0.1

    def __init__(self, engine) -> None:
        self.asks: list[tuple[float, float]] = []  # (began, engine seconds)
        self.stalls: list[tuple[float, float, str]] = []  # (woke, seconds late, indexing thread's frames)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        ask = engine.ask

        def timed(question, **overrides):
            began = time.perf_counter()
            try:
                return ask(question, **overrides)
            finally:
                self.asks.append((began, time.perf_counter() - began))

        engine.ask = timed

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _tick(self) -> None:
        import traceback

        while not self._stop.is_set():
            began = time.perf_counter()
            time.sleep(self.TICK)
            woke = time.perf_counter()
            late = woke - began - self.TICK
            if late > self.LATE:
                frames = {t.ident: t.name for t in threading.enumerate()}
                where = ""
                for ident, frame in sys._current_frames().items():
                    if frames.get(ident, "").startswith("indexing"):
                        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}"
                                            for f in reversed(traceback.extract_stack(frame)[-4:]))
                self.stalls.append((woke, late, where))

    def slowest(self, timed: list[tuple[float, float]], n: int, origin: float) -> list[dict]:
        rows = []
        for began, seconds in sorted(timed, key=lambda t: -t[1])[:n]:
            end = began + seconds
            engine = [s for b, s in self.asks if began <= b <= end]
            stalls = [(w, late, where) for w, late, where in self.stalls if began <= w - late and w <= end + self.LATE]
            rows.append({"at_s": round(began - origin, 1), "seconds": round(seconds, 3),
                         "engine_s": round(sum(engine), 3) if engine else None,
                         "stalls": [{"at_s": round(w - late - origin, 2), "late_s": round(late, 3), "indexing": where}
                                    for w, late, where in stalls]})
        return rows


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    raise SystemExit(main())
