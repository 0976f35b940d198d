"""Questions keep being answered while an upload is indexed.

The upload is 200 KB of real English prose: the Python language reference topics that
ship with every Python (``pydoc_data.topics``), in four text files. Questions are
asked through the page's API before the upload (idle) and from two clients while it runs;
their latencies are printed and written to test-output/ui-upload-latency.json. Only the
answers are asserted: timings depend on the machine.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.ui_helpers import REPO_ROOT, SEED_ANSWER, SEED_QUESTION, launch_test_app

OUTPUT = REPO_ROOT / "test-output"
FILES = 4
CHARS_PER_FILE = 50_000


def reference_text_files(folder: Path) -> list[Path]:
    """Four 50,000-character files of the Python language reference, cut at paragraph ends."""
    from pydoc_data.topics import topics

    folder.mkdir(parents=True, exist_ok=True)
    paragraphs = iter(p for name in sorted(topics) for p in topics[name].split("\n\n") if p.strip())
    paths = []
    for n in range(FILES):
        text = ""
        while len(text) < CHARS_PER_FILE:
            text += next(paragraphs) + "\n\n"
        path = folder / f"python_reference_{n + 1}.txt"
        path.write_text(text[:CHARS_PER_FILE].rsplit("\n\n", 1)[0] + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def timed_ask(url: str) -> tuple[float, str, float]:
    """(start time, answer text, seconds) of one question through a new API client."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    began = time.perf_counter()
    text = client.predict(SEED_QUESTION, api_name="/ask")["text"]
    return began, text, time.perf_counter() - began


def test_questions_are_answered_while_an_upload_is_indexed(tmp_path, embedder):
    from gradio_client import Client, handle_file

    files = reference_text_files(tmp_path / "reference")
    app = launch_test_app(tmp_path / "app", embedder)
    try:
        idle = [timed_ask(app.url) for _ in range(5)]

        uploader = Client(app.url, verbose=False)
        upload_began = time.perf_counter()
        job = uploader.submit([handle_file(str(p)) for p in files], api_name="/add_documents")
        done = threading.Event()
        job.add_done_callback(lambda _: done.set())

        def ask_until_done(_) -> list[tuple[float, str, float]]:
            asked = []
            while not done.is_set() or len(asked) < 2:
                asked.append(timed_ask(app.url))
            return asked

        with ThreadPoolExecutor(max_workers=2) as pool:
            during = [q for asked in pool.map(ask_until_done, range(2)) for q in asked]
        status, table, _, _ = job.result()
        upload_seconds = time.perf_counter() - upload_began
    finally:
        app.close()

    assert f"Added {FILES} document(s)" in status
    assert {p.name for p in files} <= {row[0] for row in table["data"]}
    assert [text for _, text, _ in idle + during] == [SEED_ANSWER] * (len(idle) + len(during))
    asked_while_indexing = [s for began, _, s in during if began < upload_began + upload_seconds]
    assert asked_while_indexing  # the test did ask during the upload

    record = {
        "upload": {"files": FILES, "bytes": sum(p.stat().st_size for p in files), "seconds": round(upload_seconds, 2)},
        "idle_seconds": [round(s, 3) for _, _, s in idle],
        "during_upload_seconds": [round(s, 3) for s in asked_while_indexing],
        "idle_median": round(statistics.median(s for _, _, s in idle), 3),
        "during_upload_median": round(statistics.median(asked_while_indexing), 3),
        "during_upload_max": round(max(asked_while_indexing), 3),
    }
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "ui-upload-latency.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print("\nquestion latency during a", record["upload"], "upload:", json.dumps(record))
