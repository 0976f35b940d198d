"""Memory and progress of ``python -m index build`` over a large folder of text, and its resume.

    nice python docs/bench/bigfolder.py --data ../shared/data --work /tmp/bigfolder \\
        --size 2G --budget 900 --embedder onnx-int8 --out bench-output/bigfolder.json

1. Writes ``--size`` bytes of plain-text files under ``WORK/docs`` (outside the repository)
   from real text: the paragraphs of the shared data sets (SQuAD dev contexts, the contexts of
   ``qa-train/``, BEIR SciFact abstracts). File sizes are log-uniform between 2 KB and 2 MB,
   and every 50th file from ``--large-first`` on is a large one of 8 to 24 MB (a build commits
   between files, so one large file is one batch). Each file starts with its own header line
   and holds the paragraphs in its own random order, each paragraph numbered ``[file.n]``, so no
   two files and no two chunks have the same text (nothing is deduplicated away).
2. Runs the real CLI, ``python -m index build WORK/docs --index WORK/index`` (default settings,
   ``--embedder`` if given), as a child process at niceness ``--build-nice`` (0: the rest of
   this script may run under ``nice``). Every 0.5 s it samples the resident memory of the child
   and its descendants from ``/proc``, the progress bar's file count, and the index's live
   generation (each commit: its time and chunks). After ``--budget`` seconds it stops the build
   with SIGINT (``--kill``: SIGKILL) and reports the peak (sampled, and the kernel's
   ``ru_maxrss`` from ``os.wait4``), the memory over time, and what was committed.
3. Opens the committed index in a fresh process and measures what it keeps resident per
   chunk (what a reader holds of every committed segment, and a writer before ``load_parts``).
4. Runs the same build again for ``--resume-budget`` seconds and checks that it resumed: the
   committed files keep their document ids (none was embedded again), and the progress bar
   shows how soon the build got past them.
5. Merges every committed segment into one in a fresh process, as a commit's merge would (the
   merged segment is deleted again), and measures the memory that takes per chunk merged.

The JSON written to ``--out`` holds every figure and the settings; ``--out`` with ``.csv``
in place of ``.json`` holds the memory samples. ``WORK`` is deleted at the end unless ``--keep``.

Three modes measure one part alone and exit: ``--merge-replay CHUNKS PER_COMMIT`` replays the
store's merge policy over a whole build, ``--merge-probe CHUNKS PER_COMMIT`` measures one merge
on segments of this text written without the model (``--repo``: another checkout's merge on
the same segments), and ``--listing-probe FILES`` measures a folder listing.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bigfolder_probes import listing_probe, merge_probe, merge_replay, probe, probe_store  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SAMPLE_S = 0.5
SMALL = (2_000, 2_000_000)       # bytes: log-uniform range of most files
LARGE = (8_000_000, 24_000_000)  # bytes: every LARGE_EVERY-th file from --large-first on
LARGE_EVERY = 50
PER_FOLDER = 100
BAR = re.compile(r"indexing:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+) \[")


def parse_size(text: str) -> int:
    """``"2G"``, ``"500M"``, ``"64k"`` or a plain number of bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"size must be a number with an optional k/M/G suffix, e.g. 2G; got {text!r}")
    return int(float(match.group(1)) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[match.group(2).lower()])


# ---- the folder -----------------------------------------------------------------------------------


def paragraphs(data: Path) -> list[str]:
    """Distinct paragraphs (100 characters or more) of the shared data sets under ``data``."""
    found: dict[str, None] = {}
    squad_files = [data / "squad" / "dev-v1.1.json", data / "squad" / "dev-v2.0.json",
                   *sorted((data / "qa-train").glob("*.json"))]
    for path in squad_files:
        if path.exists():
            for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
                for p in article["paragraphs"]:
                    found[" ".join(p["context"].split())] = None
    corpus = data / "beir-scifact" / "corpus.jsonl"
    if corpus.exists():
        with open(corpus, encoding="utf-8") as fh:
            for line in fh:
                doc = json.loads(line)
                found[" ".join(f"{doc['title']}. {doc['text']}".split())] = None
    texts = [t for t in found if len(t) >= 100]
    if not texts:
        raise SystemExit(f"no paragraphs found under {data}; pass --data with the shared data sets "
                         "(squad/, qa-train/, beir-scifact/)")
    return texts


def file_sizes(total: int, seed: int, large_first: int = 25) -> list[int]:
    """Byte sizes of the files, summing to ``total``: file ``large_first`` and every 50th after it large."""
    rng = random.Random(seed)
    sizes: list[int] = []
    while sum(sizes) < total:
        n = len(sizes)
        low, high = LARGE if n >= large_first and (n - large_first) % LARGE_EVERY == 0 else SMALL
        sizes.append(int(math.exp(rng.uniform(math.log(low), math.log(high)))))
    sizes[-1] -= sum(sizes) - total
    if sizes[-1] < SMALL[0] and len(sizes) > 1:
        tail = sizes.pop()
        sizes[-1] += tail
    return sizes


def write_folder(folder: Path, total: int, texts: list[str], seed: int, large_first: int = 25) -> dict:
    """Write files of ``file_sizes(total)`` bytes under ``folder``; returns what was written."""
    rng = random.Random(seed + 1)
    sizes = file_sizes(total, seed, large_first)
    encoded = [t.encode("utf-8") for t in texts]
    began = time.monotonic()
    written = 0
    for n, size in enumerate(sizes):
        path = folder / f"part-{n // PER_FOLDER:03d}" / f"doc-{n:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = [f"Document {n:05d} of the large-folder benchmark (seed {seed}, {size} bytes)\n\n".encode()]
        length = len(parts[0])
        order = list(range(len(encoded)))
        k = 0
        while length < size:
            if k % len(order) == 0:
                rng.shuffle(order)
            piece = b"[%d.%d] " % (n, k) + encoded[order[k % len(order)]] + b"\n\n"
            parts.append(piece)
            length += len(piece)
            k += 1
        body = b"".join(parts)[:size]
        body = body.decode("utf-8", "ignore").encode("utf-8")  # never end inside a character
        path.write_bytes(body)
        written += len(body)
    return {"files": len(sizes), "bytes": written, "largest_file_bytes": max(sizes),
            "large_files": sum(1 for s in sizes if s >= LARGE[0]), "write_s": round(time.monotonic() - began, 1)}


# ---- watching a build -------------------------------------------------------------------------------


def read_status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile, VmHWM of ``pid`` in kB (empty once it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren, ... as listed in ``/proc`` now."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                parent_of[int(entry)] = int(fields[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        here = frontier.pop()
        kids = [p for p, parent in parent_of.items() if parent == here]
        found += kids
        frontier += kids
    return found


def load_average() -> float:
    """The machine's one-minute load average (the build's own two threads count in it)."""
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def live_generation(index: Path) -> tuple[str, int] | None:
    """The index's live generation and its live chunks, read from its manifest (None before the first commit)."""
    try:
        generation = (index / "CURRENT").read_text().strip()
        manifest = json.loads((index / generation / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return generation, sum(int(s["live"]) for s in manifest.get("segments", ()))


class Progress(threading.Thread):
    """Reads the build's stderr: the progress bar's file count, with when it was shown."""

    def __init__(self, stream, log: Path) -> None:
        super().__init__(daemon=True)
        self.stream, self.log = stream, log
        self.began = time.monotonic()
        self.updates: list[tuple[float, int, int]] = []  # (seconds, files passed, files in all)

    def run(self) -> None:
        pending = ""
        with open(self.log, "w", encoding="utf-8", errors="replace") as out:
            for raw in iter(lambda: self.stream.read1(65536), b""):
                text = raw.decode("utf-8", "replace")
                out.write(text)
                pending += text
                *lines, pending = re.split(r"[\r\n]", pending)
                if BAR.search(pending):  # each redraw starts with "\r": the last one is complete once its count is
                    lines, pending = [*lines, pending], ""
                for line in lines:
                    match = BAR.search(line)
                    if match:
                        self.updates.append((time.monotonic() - self.began, int(match.group(1)), int(match.group(2))))

    def files_done(self) -> int:
        return self.updates[-1][1] if self.updates else 0


def run_build(folder: Path, index: Path, budget: float, embedder: str | None, kill: bool, nice: int,
              log: Path) -> dict:
    """Run the build for ``budget`` seconds, sampling it; stop it; return what was seen."""
    command = [sys.executable, "-m", "index", "build", str(folder), "--index", str(index)]
    if embedder:
        command += ["--embedder", embedder]

    def child_setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background caller may ignore Ctrl-C; the build must not
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except PermissionError:
            pass  # lowering niceness needs privilege: the build keeps this script's

    began = time.monotonic()
    # The progress bar redrawn at every file and written at once, so that its count says when
    # each file was passed (its default draws at most every 0.1 s and stderr is buffered).
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1"}
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=child_setup, env=env)
    progress = Progress(proc.stderr, log)
    progress.start()
    samples, commits = [], []
    seen, stopped_at, status, usage = None, None, None, None
    while True:
        now = time.monotonic() - began
        pids = [proc.pid, *descendants(proc.pid)]
        stats = [read_status(p) for p in pids]
        own = stats[0]
        if own:
            samples.append({"t": round(now, 2), "rss_mb": round(sum(s.get("VmRSS", 0) for s in stats) / 1024, 1),
                            "anon_mb": round(own.get("RssAnon", 0) / 1024, 1),
                            "file_mb": round(own.get("RssFile", 0) / 1024, 1),
                            "processes": sum(1 for s in stats if s), "files_passed": progress.files_done(),
                            "load_average": load_average(),
                            "committed_chunks": commits[-1]["chunks"] if commits else 0})
        generation = live_generation(index)
        if generation and generation != seen:
            seen = generation
            commits.append({"t": round(now, 2), "generation": generation[0], "chunks": generation[1],
                            "rss_mb": samples[-1]["rss_mb"] if samples else None})
        done, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if done:
            break
        if stopped_at is None and now >= budget:
            stopped_at = now
            proc.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        time.sleep(SAMPLE_S)
    proc.returncode = os.waitstatus_to_exitcode(status)
    progress.join(timeout=5)
    generation = live_generation(index)
    if generation and generation != seen:
        commits.append({"t": round(time.monotonic() - began, 2), "generation": generation[0], "chunks": generation[1],
                        "rss_mb": None})
    return {"command": " ".join(command), "exit_code": proc.returncode, "stopped_at_s": stopped_at,
            "ran_s": round(time.monotonic() - began, 1), "stopped_with": "SIGKILL" if kill else "SIGINT",
            "peak_rss_mb_sampled": max((s["rss_mb"] for s in samples), default=None),
            "peak_rss_mb_kernel": round(usage.ru_maxrss / 1024, 1), "commits": commits, "samples": samples,
            "progress": progress.updates}


def time_to_pass(updates: list[tuple[float, int, int]], files: int) -> float | None:
    """Seconds until the progress bar first showed ``files`` or more files passed (None for no files)."""
    if files <= 0:
        return None
    return next((t for t, n, _ in updates if n >= files), None)


def at_first_commit(run: dict) -> float | None:
    commit = next((c for c in run["commits"] if c["chunks"]), None)
    if commit is None:
        return None
    return next((s["rss_mb"] for s in run["samples"] if s["t"] >= commit["t"]), None)


def summarize(folder_info: dict, first: dict, held: dict, resumed: dict | None, after: dict | None) -> dict:
    """The headline figures and the extrapolation to the whole folder."""
    commits = [c for c in first["commits"] if c["chunks"]]
    out = {"peak_rss_mb": max(first["peak_rss_mb_kernel"], first["peak_rss_mb_sampled"] or 0),
           "rss_mb_first_sample": first["samples"][0]["rss_mb"] if first["samples"] else None,
           "rss_mb_after_first_commit": at_first_commit(first),
           "rss_mb_at_stop": next((s["rss_mb"] for s in reversed(first["samples"])
                                   if first["stopped_at_s"] is None or s["t"] <= first["stopped_at_s"]), None),
           "committed_files": held["documents"], "committed_chunks": held["chunks"],
           "committed_bytes": held["bytes"], "share_of_folder": round(held["bytes"] / folder_info["bytes"], 4),
           "commits": len(commits)}
    if len(commits) >= 2 and held["bytes"]:
        span = commits[-1]["t"] - commits[0]["t"]
        rate = (commits[-1]["chunks"] - commits[0]["chunks"]) / span if span > 0 else 0.0
        chunks_per_byte = held["chunks"] / held["bytes"]
        whole = folder_info["bytes"] * chunks_per_byte
        per_chunk = (held["rss_after_open_mb"] - held["rss_before_open_mb"]) * 2**20 / max(held["chunks"], 1)
        out.update({"chunks_per_s": round(rate, 1), "chunks_per_mb": round(chunks_per_byte * 1e6, 1),
                    "whole_folder_chunks_est": int(whole),
                    "whole_folder_hours_est": round(whole / rate / 3600, 1) if rate else None,
                    "opened_store_bytes_per_chunk": round(per_chunk),
                    "opened_store_mb_whole_folder_est": round(per_chunk * whole / 2**20)})
    if resumed is not None and after is not None:
        before_ids = held["doc_ids"]
        again = [s for s, d in before_ids.items() if after["doc_ids"].get(s) != d]
        out.update({"resume_files_committed_before": len(before_ids),
                    "resume_files_embedded_again": len(again),
                    "resume_s_to_pass_committed": time_to_pass(resumed["progress"], len(before_ids)),
                    "resume_new_files_committed": after["documents"] - len(before_ids),
                    "resume_peak_rss_mb": resumed["peak_rss_mb_kernel"]})
    return out


def run_merge_probe(work: Path, data: Path, chunks: int, per_commit: int, seed: int, repo: Path,
                    keep: bool) -> int:
    """``--merge-probe``: the memory of merging ``chunks`` chunks of this benchmark's text, committed
    in segments of ``per_commit``, into one segment (see ``bigfolder_probes.probe_store``)."""
    index = work / "index"
    if (work / "docs").exists() or index.exists():
        raise SystemExit(f"{work} already holds docs/ or index/; give a new folder")
    try:
        texts = paragraphs(data)
        written = write_folder(work / "docs", chunks * 700, texts, seed)  # about 560 bytes a chunk: enough text
        built = probe_store(work / "docs", index, chunks, per_commit, seed)
        merged = merge_probe(index, repo)
        print(json.dumps({"folder": written, "store": built, "merge": merged}, indent=1))
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="docs/bench/bigfolder.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                   help="the shared data sets (squad/, qa-train/, beir-scifact/); default ../shared/data")
    p.add_argument("--work", type=Path,
                   help="where to write the folder (WORK/docs) and the index (WORK/index); outside the repository")
    p.add_argument("--size", type=parse_size, default=parse_size("2G"), help="bytes of text to write (default 2G)")
    p.add_argument("--budget", type=float, default=900.0, help="seconds the build runs before it is stopped (default 900)")
    p.add_argument("--resume-budget", type=float, default=120.0,
                   help="seconds the second build runs (default 120; 0 skips the resume check)")
    p.add_argument("--embedder", choices=("onnx", "onnx-int8", "torch"), default=None,
                   help="--embedder for the build (default: the CLI's own default)")
    p.add_argument("--kill", action="store_true", help="stop the build with SIGKILL instead of SIGINT")
    p.add_argument("--build-nice", type=int, default=0, help="niceness of the build (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the file sizes and paragraph orders")
    p.add_argument("--large-first", type=int, default=25,
                   help="the first large file (in build order; every 50th after it is large too; default 25)"),
    p.add_argument("--out", type=Path, default=REPO / "bench-output" / "bigfolder.json", help="JSON result file")
    p.add_argument("--keep", action="store_true", help="keep WORK (folder and index) at the end")
    p.add_argument("--merge-replay", nargs=2, type=int, metavar=("CHUNKS", "PER_COMMIT"),
                   help="only print the merges a build of CHUNKS chunks in commits of PER_COMMIT would make "
                        "(the store's merge policy replayed; nothing is written), then exit")
    p.add_argument("--merge-bytes-per-chunk", type=int, metavar="BYTES",
                   help="with --merge-replay: also estimate the largest merge's memory at BYTES a merged chunk")
    p.add_argument("--merge-probe", nargs=2, type=int, metavar=("CHUNKS", "PER_COMMIT"),
                   help="only measure one merge: write text files under WORK, commit whole files until CHUNKS "
                        "chunks (or just past) in segments of about PER_COMMIT (random vectors, no model), merge "
                        "them all in a fresh process, print the memory, delete WORK (unless --keep) and exit")
    p.add_argument("--repo", type=Path, default=REPO,
                   help="with --merge-probe: the checkout whose merge code runs (default this one), to "
                        "compare versions on the same segments")
    p.add_argument("--listing-probe", type=int, metavar="FILES",
                   help="only measure the memory of listing FILES one-byte files under WORK as a build lists "
                        "a folder (with a stored hash each), then delete them and exit")
    args = p.parse_args(argv)
    if args.merge_replay:
        print(json.dumps(merge_replay(*args.merge_replay, args.merge_bytes_per_chunk), indent=2))
        return 0
    if args.merge_probe:
        if args.work is None:
            p.error("--merge-probe needs --work: where to write the files and the index")
        return run_merge_probe(args.work.resolve(), args.data, *args.merge_probe, args.seed, args.repo.resolve(),
                               args.keep)
    if args.listing_probe:
        if args.work is None:
            p.error("--listing-probe needs --work: where to write the files")
        args.work.mkdir(parents=True, exist_ok=True)
        print(json.dumps(listing_probe(args.listing_probe, args.work.resolve())))
        return 0

    if args.work is None:
        p.error("--work is required: the folder to write the documents and the index in")
    work = args.work.resolve()
    if work == REPO or REPO in work.parents:
        p.error(f"--work {work} is inside the repository; give a folder outside it")
    if work.exists() and any(work.iterdir()):
        p.error(f"--work {work} is not empty; give a new or empty folder")
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(work).free
    needed = int(args.size * 1.2) + 2 * 10**9
    if free < needed:
        p.error(f"{free / 1e9:.1f} GB free under {work}, {needed / 1e9:.1f} GB needed for --size "
                f"{args.size / 1e9:.1f} GB, its index and a margin; free space or lower --size")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    folder, index = work / "docs", work / "index"
    try:
        texts = paragraphs(args.data)
        print(f"writing {args.size / 1e9:.2f} GB of text from {len(texts)} paragraphs to {folder}", flush=True)
        folder_info = {"paragraphs": len(texts), **write_folder(folder, args.size, texts, args.seed, args.large_first)}
        print(f"wrote {folder_info['files']} files in {folder_info['write_s']} s; building for {args.budget:.0f} s",
              flush=True)
        first = run_build(folder, index, args.budget, args.embedder, args.kill, args.build_nice,
                          args.out.with_suffix(".build.log"))
        held = probe(index)
        resumed = after = None
        if args.resume_budget > 0:
            print(f"committed {held['documents']} files, {held['chunks']} chunks; resuming for "
                  f"{args.resume_budget:.0f} s", flush=True)
            resumed = run_build(folder, index, args.resume_budget, args.embedder, args.kill, args.build_nice,
                                args.out.with_suffix(".resume.log"))
            after = probe(index)
        merging = merge_probe(index)
        summary = summarize(folder_info, first, held, resumed, after)
        if merging is not None:
            summary["merge_bytes_per_chunk"] = merging["bytes_per_chunk"]
        result = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                  "folder": folder_info, "summary": summary,
                  "build": {k: v for k, v in first.items() if k != "samples"},
                  "held": {k: v for k, v in held.items() if k != "doc_ids"},
                  "resume": {k: v for k, v in resumed.items() if k != "samples"} if resumed else None,
                  "after_resume": {k: v for k, v in after.items() if k != "doc_ids"} if after else None,
                  "merge": merging,
                  "samples": first["samples"]}
        args.out.write_text(json.dumps(result, indent=1))
        with open(args.out.with_suffix(".csv"), "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(first["samples"][0]) if first["samples"] else ["t"])
            writer.writeheader()
            writer.writerows(first["samples"])
        print(json.dumps(summary, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
