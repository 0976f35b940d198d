"""What ``docs/bench/bigfolder.py`` measures in fresh processes, apart from the build itself:
the committed index opened as a reader opens it, one merge of its segments, a folder listing,
and the merges the store's policy would make over a whole build (replayed, nothing written).
``probe_store`` writes an index to measure a merge on without the model (``--merge-probe``).

Each probe runs as ``python -c`` in a fresh process, so the memory it reports is that of the
work alone (imports done before the first reading).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PER_FOLDER = 100

# Every probe starts with this: the repository on the path, and ``status(key)``, a figure of
# /proc/self/status in MB ("VmRSS": resident now, "VmHWM": the peak).
PRELUDE = """
import sys
sys.path.insert(0, sys.argv[1])
def status(key):
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith(key + ":")) / 1024
"""


def run_probe(script: str, *args: str, repo: Path = REPO) -> dict:
    """The JSON that ``PRELUDE + script`` prints, run as ``python -c`` in a fresh process with the
    repository (``repo``: its code is the one imported) and ``args`` as its arguments."""
    out = subprocess.run([sys.executable, "-c", PRELUDE + script, str(repo), *args], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


PROBE = """
import json, os
from index.backends.folder import FolderStore
import faiss, numpy, sqlite3
before = status("VmRSS")
store = FolderStore.open(sys.argv[2])
state = store._state
where = {source: doc for source, (_, doc, _) in state.where().items()}
after = status("VmRSS")
print(json.dumps({"rss_before_open_mb": round(before, 1), "rss_after_open_mb": round(after, 1),
                  "chunks": store.count(), "documents": len(where), "segments": store.segments(),
                  "bytes": sum(os.path.getsize(s) for s in where if os.path.exists(s)), "doc_ids": where}))
"""


def probe(index: Path) -> dict:
    """What the committed index holds, opened in a fresh process, and the memory that takes."""
    if not (index / "CURRENT").exists():
        return {"rss_before_open_mb": 0.0, "rss_after_open_mb": 0.0, "chunks": 0, "documents": 0, "segments": [],
                "bytes": 0, "doc_ids": {}}
    return run_probe(PROBE, str(index))


MERGE_PROBE = """
import json, shutil
from index.backends import segments
from index.backends.folder import FolderStore
store = FolderStore.open(sys.argv[2], load_parts=False)
lives = list(store._state.segments)
before = status("VmRSS")
merged = segments.merge(lives, store.path / "segments", "seg-merge-probe", int(store.manifest()["dimension"]),
                        keep_parts=False)
peak = status("VmHWM")
shutil.rmtree(merged.path)
print(json.dumps({"segments": len(lives), "chunks": sum(l.live_count() for l in lives), "kind": merged.kind,
                  "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1)}))
"""


def merge_probe(index: Path, repo: Path = REPO) -> dict | None:
    """The memory one merge of every committed segment takes, in a fresh process opened as a build
    opens the index (the merged segment is deleted again; the index is left as it was), with the
    merge code of the repository ``repo``."""
    if not (index / "CURRENT").exists():
        return None
    found = run_probe(MERGE_PROBE, str(index), repo=repo)
    found["bytes_per_chunk"] = round((found["peak_rss_mb"] - found["rss_before_mb"]) * 2**20 / max(found["chunks"], 1))
    return found


def probe_store(folder: Path, index: Path, chunks: int, per_commit: int, seed: int = 0) -> dict:
    """Write the folder index ``index`` from the files under ``folder`` (in name order) as a
    build reads them, without the model: each file loaded and chunked as ``python -m index build``
    does (``load_document``, ``chunk_document`` with the default settings) and committed once
    ``per_commit`` chunks are pending, until ``chunks`` chunks (or a few more: whole files) are
    committed. Each chunk's vector is a random unit vector (seeded): what a merge holds does not
    depend on the vectors' values. The store's merges are off while it is written, so each
    commit stays one segment for ``merge_probe`` to merge at once."""
    sys.path.insert(0, str(REPO))
    import numpy as np

    from index.backends import folder as folder_store
    from index.chunking import chunk_document
    from index.embedding import DEFAULT_MODEL_NAME
    from index.loaders import load_document

    rng = np.random.default_rng(seed)
    store = folder_store.FolderStore.open(index, create=True, load_parts=False)
    manifest = {"model": DEFAULT_MODEL_NAME, "dimension": 384}
    pending: list = []
    done = 0
    planned = folder_store.plan_merge
    folder_store.plan_merge = lambda *args, **kwargs: []
    try:
        for path in sorted(folder.rglob("*.txt")):
            if done >= chunks:
                break
            doc = load_document(path)
            pending.append((doc, chunk_document(doc)))
            waiting = sum(len(c) for _, c in pending)
            if waiting >= per_commit or done + waiting >= chunks:
                with store.writer(manifest) as w:
                    for doc, cut in pending:
                        vectors = rng.standard_normal((len(cut), 384)).astype(np.float32)
                        w.add(doc, cut, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
                done, pending = done + waiting, []
    finally:
        folder_store.plan_merge = planned
    return {"chunks": store.count(), "documents": len(store.documents()), "segments": len(store.segments())}


def merge_replay(total_chunks: int, commit_chunks: int, bytes_per_chunk: int | None = None) -> dict:
    """The merges ``index.backends.segments.plan_merge`` makes while a build commits
    ``total_chunks`` in commits of ``commit_chunks`` (no removals): the largest, when it comes,
    how many chunks are rewritten in all, and the segments left at the end (those over half the
    cap on a merged segment are full). With ``bytes_per_chunk`` (what ``merge_probe`` measured),
    the memory the largest merge would take."""
    sys.path.insert(0, str(REPO))
    from index.backends.segments import MAX_MERGED_ROWS, plan_merge

    sizes: list[int] = []
    merges: list[tuple[int, int]] = []  # (chunks committed so far, chunks merged)
    done = 0
    while done < total_chunks:
        sizes.append(min(commit_chunks, total_chunks - done))
        done += sizes[-1]
        plan = plan_merge(sizes)
        if plan:
            merged = sum(sizes[i] for i in plan)
            merges.append((done, merged))
            sizes = [n for i, n in enumerate(sizes) if i not in plan] + [merged]
    largest = max(merges, key=lambda m: m[1], default=(0, 0))
    out = {"total_chunks": total_chunks, "commit_chunks": commit_chunks, "cap": MAX_MERGED_ROWS,
           "merges": len(merges), "largest_merge_chunks": largest[1], "largest_merge_at_chunks": largest[0],
           "first_merge_at_chunks": merges[0][0] if merges else None,
           "chunks_rewritten": sum(m for _, m in merges), "segments_at_end_count": len(sizes),
           "full_segments_at_end": sum(n > MAX_MERGED_ROWS // 2 for n in sizes),
           "segments_at_end": sorted(sizes, reverse=True)}
    if bytes_per_chunk:
        out["largest_merge_mb_est"] = round(largest[1] * bytes_per_chunk / 2**20)
    return out


LISTING_PROBE = """
import hashlib, json
from index.files import scan, source_name
from index.loaders import SUPPORTED_SUFFIXES
before = status("VmRSS")
root = sys.argv[2]
found = {source_name(p, root): p for p in scan(root).files}
items = [(s, p) for s, p in found.items() if p.suffix.lower() in SUPPORTED_SUFFIXES]
known = {s: hashlib.sha256(s.encode()).hexdigest() for s in found}
print(json.dumps({"files": len(items), "mb": round(status("VmRSS") - before, 1)}))
"""


def listing_probe(files: int, work: Path) -> dict:
    """The memory a build's folder listing takes, with a stored hash per file, as ``Index.build``
    holds them (``scan``, the source names, the store's hashes): ``files`` one-byte ``.txt`` files
    are written under ``work`` (100 to a folder), listed in a fresh process, and deleted."""
    folder = work / "listing"
    for n in range(files):
        path = folder / f"part-{n // PER_FOLDER:05d}" / f"doc-{n:07d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    try:
        found = run_probe(LISTING_PROBE, str(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    found["bytes_per_file"] = round(found["mb"] * 2**20 / max(found["files"], 1))
    return found
