"""Verify a folder store, and repair what can be repaired without embedding again.

Checked: ``CURRENT`` names a generation whose manifest is readable and whose segments all
have every part (catalog, ids, vectors, BM25 postings, the deletion file listed); in every
segment, each row has its chunk and each chunk its row, vectors and BM25 postings, each
chunk its document and each document its chunks; no leftovers of killed writers
(``.tmp-*``, older generations, unlisted segments and deletion files, a rebuild's staging folder).

Repaired: leftovers removed; ``CURRENT`` pointed at the newest sound generation when it
names a missing or damaged one; a damaged segment rewritten from what is sound in it
(rows without a chunk dropped, BM25 postings computed again from the chunk texts, chunks
without a document dropped, documents whose chunks lack vectors, or that have no chunks,
dropped, with the command that indexes them again).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from index.backends.folder import (READABLE_VERSIONS, SEGMENTS, STAGING, FolderStore, _State,
                                   generation_number)
from index.backends.legacy import LEGACY_VERSIONS
from index.backends.segments import IDS_FILE, Live, load_live, write_segment
from index.catalog import Catalog
from index.terms import TermIndex
from index.vectors import FaissVectorStore


def _load(store: FolderStore, generation: str) -> _State:
    """A generation, parts checked; raises with the reason when one is missing or unreadable."""
    manifest = json.loads((store.path / generation / "manifest.json").read_text())
    if manifest.get("format_version") not in READABLE_VERSIONS or "model" not in manifest or "dimension" not in manifest:
        raise ValueError(f"{generation}/manifest.json is not a readable manifest")
    if manifest["format_version"] in LEGACY_VERSIONS:
        return store.load_generation(generation)
    for entry in manifest["segments"]:
        verdict = Catalog.open(store.path / SEGMENTS / entry["name"]).integrity()
        if verdict != "ok":
            raise ValueError(f"{entry['name']}/catalog.sqlite is damaged ({verdict})")
    return store.load_generation(generation)


def check_folder(store: FolderStore, repair: bool = False) -> list[str]:
    """Findings about ``store``, one line each; with ``repair``, fixed ones start with "repaired:".

    Holds the store's write lock while it looks, so no writer changes the folder meanwhile.
    """
    findings: list[str] = []
    fixed = "repaired: " if repair else ""
    with store.locked():
        path = store.path
        current_file = path / "CURRENT"
        current = current_file.read_text().strip() if current_file.exists() else None
        generations = sorted((p for p in path.iterdir() if generation_number(p.name) is not None),
                             key=lambda p: generation_number(p.name), reverse=True)
        if current is None and not generations:
            return [f"no index at {path}: nothing to check"]

        loaded = None
        if current is not None:
            try:
                loaded = _load(store, current)
            except Exception as e:
                findings.append(f"CURRENT names {current}, which cannot be read ({e})")
        else:
            findings.append("CURRENT is missing")
        if loaded is None:
            for candidate in generations:
                if candidate.name == current:
                    continue
                try:
                    loaded = _load(store, candidate.name)
                except Exception:
                    continue
                findings.append(f"{fixed}the newest sound generation is {candidate.name}"
                                + ("; CURRENT now names it" if repair else "; --repair makes it live"))
                if repair:
                    store._switch(candidate.name)
                    current = candidate.name
                    findings[0] = fixed + findings[0]
                break
            else:
                findings.append(f"no sound generation is left in {path}: rebuild it with "
                                f"python -m index build FOLDER --index {path} --rebuild")
                return findings

        findings += [fixed + f for f in _leftovers(path, loaded, repair)]
        problems, entries = [], []
        for live in loaded.segments:
            found, sound = _check_segment(live, repair)
            problems += found
            entries.append(sound)
        findings += [fixed + f for f in problems]
        if repair:
            store._state = _State(loaded.generation, store._stamp(), loaded.manifest, loaded.segments, loaded.next_id)
            if problems or loaded.manifest["format_version"] in LEGACY_VERSIONS:
                number = store._next_generation()
                entries = [_rewrite(store, e, number, i) if isinstance(e, tuple) else e for i, e in enumerate(entries)]
                entries = store._materialized([e for e in entries if e is not None], number)
                manifest = {k: v for k, v in loaded.manifest.items() if k not in ("segments", "next_id", "saved_at")}
                store.publish(number, entries, manifest, loaded.next_id)
            else:
                store.collect(store._state)
    return findings


def _leftovers(path: Path, state: _State, repair: bool) -> list[str]:
    findings = []
    for p in sorted(path.iterdir()):
        if p.name.startswith(".tmp-") or p.name == "CURRENT.tmp" or (
                generation_number(p.name) is not None and p.name != state.generation):
            findings.append(f"{p.name} is left over from an interrupted or earlier write")
    listed = {live.segment.name: live.deletes for live in state.segments}
    root = path / SEGMENTS
    for p in sorted(root.iterdir()) if root.is_dir() else ():
        if p.name not in listed:
            findings.append(f"{SEGMENTS}/{p.name} is listed by no generation (left over from a killed write or a merge)")
        else:
            for f in sorted(p.iterdir()):
                if (f.name.startswith("del-") and f.name != listed[p.name]) or f.name.startswith(".tmp-"):
                    findings.append(f"{SEGMENTS}/{p.name}/{f.name} is left over from an earlier write")
    if (path / STAGING).exists():
        findings.append(f"{STAGING} holds a rebuild that was stopped"
                        + (" (removed)" if repair else "; build --rebuild again finishes it, --repair removes it"))
        if repair:
            shutil.rmtree(path / STAGING, ignore_errors=True)
    return findings


def _check_segment(live: Live, repair: bool) -> tuple[list[str], Live | tuple]:
    """Findings about one segment, and either the segment (sound) or what a rewrite keeps."""
    seg, findings = live.segment, []
    drop = " (dropped)" if repair else ""
    catalog = {cid: doc for cid, doc in seg.catalog.chunk_docs()}
    docs = {row[0]: row for row in seg.catalog.document_rows()}
    rows = np.arange(len(seg.ids))
    orphans = [cid for cid, doc in catalog.items() if doc not in docs]
    if orphans:
        findings.append(f"{len(orphans)} chunk(s) have no document row (in {seg.name}){drop}")
    extra = rows[~np.isin(seg.ids, np.fromiter(catalog, np.int64, len(catalog)))]
    if len(extra):
        findings.append(f"{len(extra)} vector(s) belong to no chunk (in {seg.name}){drop}")
    with_rows = set(seg.ids.tolist())
    bad_docs = {doc for cid, doc in catalog.items() if cid not in with_rows and doc in docs}
    for doc_id in sorted(bad_docs, key=lambda d: docs[d][1]):
        source = docs[doc_id][1]
        findings.append(f"{source} has chunks without vectors" + (
            f"; it was dropped: index it again with python -m index add {source}" if repair
            else "; --repair drops it (then index it again)"))
    counted = {doc for doc in catalog.values()}
    for doc_id in sorted(set(docs) - counted - live.deleted_docs):
        source = docs[doc_id][1]
        bad_docs.add(doc_id)
        findings.append(f"{source} has no chunks" + (
            f"; it was dropped: index it again with python -m index add {source}" if repair
            else "; --repair drops it (then index it again)"))
    if live.segment.terms.count() != len(seg.ids) or _stale_terms(seg) or not seg.terms.bounds_agree():
        findings.append(f"BM25 holds postings that disagree with the chunk texts (in {seg.name})"
                        + ("; computed again from them" if repair else ""))
    if not findings:
        return [], live
    keep = live.live.copy()
    keep[extra] = False
    keep &= ~np.isin(seg.ids, [cid for cid, doc in catalog.items() if doc in bad_docs or doc not in docs])
    return findings, (live, keep, sorted(set(docs) - live.deleted_docs - bad_docs))


def _stale_terms(seg) -> bool:
    """Whether the postings' chunk lengths disagree with the chunk texts (checked on small segments only)."""
    if len(seg.ids) > 20_000 or seg.terms.count() != len(seg.ids):
        return False
    return not np.array_equal(TermIndex.build(t for _, t in seg.catalog.texts()).lengths, seg.terms.lengths) \
        if len(seg.catalog.chunk_ids()) == len(seg.ids) else False


def _rewrite(store: FolderStore, damaged: tuple, number: int, i: int) -> Live | None:
    """A new segment with what is sound in ``damaged`` (see ``_check_segment``)."""
    live, keep, doc_ids = damaged
    seg = live.segment
    catalog = Catalog()
    catalog.copy_from(seg.catalog, doc_ids)
    wanted = set(seg.ids[keep].tolist())
    catalog.delete_chunks(cid for cid in catalog.chunk_ids() if cid not in wanted)
    ids = np.asarray(catalog.chunk_ids(), dtype=np.int64)
    if not len(ids):
        return None
    rows, _ = seg.rows_of(ids)
    vectors = FaissVectorStore.build(seg.vectors.vectors(rows), dimension=seg.vectors.dimension)
    terms = TermIndex.build(text for _, text in catalog.texts())
    new = write_segment(store.path / SEGMENTS, f"seg-{number:06d}-x{i}", catalog, ids, vectors, terms)
    return load_live(new, None)


__all__ = ["check_folder", "IDS_FILE"]
