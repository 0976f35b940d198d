"""SIGKILL during build, build --rebuild, add and remove: is the index always whole afterwards?

Each trial copies a prepared index, starts ``python -m index ...`` on it, kills it
with SIGKILL after a random delay, then checks that

* the index opens, and catalog, FAISS and BM25 hold the same chunk ids;
* its documents are the state before the command, the state after it, or (build only,
  which commits in batches) a state between whose documents each have their old or new text;
* running the same command again finishes with exactly the state after it.

Run with ``make reliability`` (or ``python docs/bench/reliability.py --trials 20``).
The corpus is the seed article and the repository's Markdown files cut into pieces,
so anyone can reproduce it from a clone.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from index import Index, IndexSettings  # noqa: E402
from index.backends.folder import FolderStore  # noqa: E402
from index.embedding import shared_embedder  # noqa: E402

OPERATIONS = ("build", "rebuild", "add", "remove")
# The kill comes after a delay drawn uniformly from this share of an uninterrupted run's
# time. Starting Python and loading the model take most of a run; the later half is where
# files are read, embedded and committed.
KILL_WINDOW = (0.5, 1.1)


def make_corpus(folder: Path, files: int, piece: int = 1500) -> list[Path]:
    """``files`` text files cut from the seed article and the repository's Markdown files."""
    texts = [p.read_text(encoding="utf-8") for p in sorted((REPO / "seeds").glob("*.txt"))]
    texts += [p.read_text(encoding="utf-8") for p in sorted(REPO.glob("*.md")) + sorted((REPO / "docs").glob("*.md"))]
    pieces = [t[i:i + piece] for t in texts for i in range(0, len(t), piece) if t[i:i + piece].strip()]
    folder.mkdir(parents=True)
    paths = []
    for i, text in enumerate(pieces[:files]):
        path = folder / f"part-{i:03d}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def sound(location: Path) -> bool:
    ids = FolderStore.open(location).ids()
    return ids["catalog"] == ids["vectors"] == ids["terms"]


def classify(location: Path, before: dict, after: dict, partial_ok: bool) -> str:
    try:
        if not sound(location):
            return "inconsistent"
        now = FolderStore.open(location).hashes()
    except Exception as e:  # the index does not open: the failure this benchmark looks for
        return f"unloadable ({type(e).__name__})"
    if now == before:
        return "old state"
    if now == after:
        return "new state"
    if partial_ok and all(now.get(s) in (before.get(s), after.get(s)) for s in set(now) | set(before) | set(after)):
        return "committed batches"
    return "other state"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="kills per operation (default 20)")
    parser.add_argument("--files", type=int, default=60, help="files in the corpus (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--operations", nargs="+", choices=OPERATIONS, default=list(OPERATIONS),
                        help="which commands to kill (default: all four)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    embedder = shared_embedder()
    work = Path(tempfile.mkdtemp(prefix="reliability-"))
    try:
        return run(args, rng, embedder, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, rng, embedder, work: Path) -> int:
    docs = work / "docs"
    paths = make_corpus(docs, args.files)
    extra = paths[len(paths) // 2: len(paths) // 2 + 5]
    settings = IndexSettings(show_progress=False, batch_files=10)
    # Templates: an index of the first half (before build, rebuild and add), one of everything (before remove).
    small, full = work / "small", work / "full"
    for p in paths[len(paths) // 2:]:
        p.rename(p.with_suffix(".hold"))
    Index.open(small, settings, create=True, embedder=embedder).build(docs, quiet=True)
    for p in paths[len(paths) // 2:]:
        p.with_suffix(".hold").rename(p)
    shutil.copytree(small, full)
    Index.open(full, settings, embedder=embedder).build(docs, quiet=True)
    first = paths[0]
    first.write_text(first.read_text() + "\nThis part was edited after the first build.")  # one changed file too
    commands = {
        "build": (small, ["build", str(docs), "--batch-files", "10"], lambda ix: ix.build(docs, quiet=True)),
        "rebuild": (small, ["build", str(docs), "--rebuild", "--batch-files", "10"], lambda ix: ix.build(docs, quiet=True, rebuild=True)),
        "add": (small, ["add", *map(str, extra)], lambda ix: ix.add(extra, quiet=True)),
        "remove": (full, ["remove", *map(str, extra)], lambda ix: ix.remove(extra)),
    }
    rows = []
    failures = 0
    for op in args.operations:
        template, argv, again = commands[op]
        before = FolderStore.open(template).hashes()
        reference = work / f"reference-{op}"
        shutil.copytree(template, reference)
        began = time.monotonic()
        cmd = [sys.executable, "-m", "index", *argv, "--quiet", "--index"]
        done = subprocess.run([*cmd, str(reference)], cwd=REPO, capture_output=True, text=True)
        seconds = time.monotonic() - began
        if done.returncode != 0:
            raise SystemExit(f"{op} failed without a kill: {done.stderr.strip()}")
        after = FolderStore.open(reference).hashes()
        outcomes, recovered, before_kill = Counter(), 0, 0
        for trial in range(args.trials):
            ix = work / f"{op}-{trial}"
            shutil.copytree(template, ix)
            proc = subprocess.Popen([*cmd, str(ix)], cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(*KILL_WINDOW) * seconds)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            else:
                before_kill += 1
            proc.wait()
            outcome = classify(ix, before, after, partial_ok=op == "build")
            outcomes[outcome] += 1
            again(Index.open(ix, settings, embedder=embedder))
            ok = FolderStore.open(ix).hashes() == after and sound(ix)
            recovered += ok
            print(f"{op} trial {trial + 1}: {outcome}; next run {'ends in the new state' if ok else 'FAILED'}",
                  file=sys.stderr, flush=True)
            shutil.rmtree(ix)
        bad = sum(n for o, n in outcomes.items() if o not in ("old state", "new state", "committed batches"))
        failures += bad + (args.trials - recovered)
        rows.append((op, args.trials, before_kill, outcomes, recovered, seconds))
        print(f"{op}: {dict(outcomes)}; {recovered}/{args.trials} recovered", file=sys.stderr, flush=True)
    low, high = KILL_WINDOW
    print(f"\n{len(paths)} files; SIGKILL after a delay drawn uniformly from [{low}, {high}] x the time "
          f"an uninterrupted run took\n")
    print("| command | trials | finished before the kill | old state | committed batches | new state | other / broken | next run ends in the new state | uninterrupted run |")
    print("|---|---|---|---|---|---|---|---|---|")
    for op, n, early, o, rec, secs in rows:
        other = n - o["old state"] - o["committed batches"] - o["new state"]
        name = {"rebuild": "build --rebuild"}.get(op, op)
        print(f"| {name} | {n} | {early} | {o['old state']} | {o['committed batches']} | {o['new state']} | {other} | {rec}/{n} | {secs:.1f} s |")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
