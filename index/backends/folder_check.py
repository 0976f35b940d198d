"""Verify a folder store, and repair what can be repaired without embedding again.

Checked: ``CURRENT`` names a generation that has every file (manifest, catalog, vectors,
terms) and a readable manifest; every chunk id is in the catalog, FAISS and BM25 alike;
every chunk has its document row and every document its chunks; no leftovers of killed
writers (``.tmp-*`` folders, older generations, a rebuild's staging folder).

Repaired: leftovers removed; ``CURRENT`` pointed at the newest sound generation when
it names a missing or damaged one; vectors without a chunk dropped; BM25 refitted from
the catalog's chunk texts; chunks without a document dropped; documents whose chunks lack
vectors (or that have no chunks) dropped, with the command that indexes them again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np

from index.backends.folder import READABLE_VERSIONS, STAGING, FolderStore, generation_number
from index.catalog import Catalog
from index.terms import TermIndex
from index.vectors import FaissVectorStore

PARTS = ("manifest.json", "catalog.sqlite", "vectors.faiss", "terms/ids.json")


def _load(folder: Path) -> tuple[dict, Catalog, FaissVectorStore, TermIndex]:
    """A generation's parts; raises with the reason when one is missing or unreadable."""
    missing = [part for part in PARTS if not (folder / part).exists()]
    if missing:
        raise ValueError(f"{folder.name} lacks {', '.join(missing)}")
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("format_version") not in READABLE_VERSIONS or "model" not in manifest or "dimension" not in manifest:
        raise ValueError(f"{folder.name}/manifest.json is not a readable manifest")
    with sqlite3.connect(f"file:{folder / Catalog.FILENAME}?mode=ro", uri=True) as conn:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if verdict != "ok":
        raise ValueError(f"{folder.name}/catalog.sqlite is damaged ({verdict})")
    return manifest, Catalog.load(folder), FaissVectorStore.load(folder, int(manifest["dimension"])), TermIndex.load(folder)


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
                loaded = _load(path / current)
            except Exception as e:
                findings.append(f"CURRENT names {current}, which cannot be read ({e})")
        else:
            findings.append("CURRENT is missing")
        if loaded is None:
            for candidate in generations:
                if candidate.name == current:
                    continue
                try:
                    loaded = _load(candidate)
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

        for p in sorted(path.iterdir()):
            leftover = (p.name.startswith(".tmp-") or p.name == "CURRENT.tmp"
                        or (generation_number(p.name) is not None and p.name != current))
            if leftover:
                findings.append(f"{fixed}{p.name} is left over from an interrupted or earlier write")
                if repair:
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        if (path / STAGING).exists():
            findings.append(f"{fixed}{STAGING} holds a rebuild that was stopped"
                            + (" (removed)" if repair else "; build --rebuild again finishes it, --repair removes it"))
            if repair:
                shutil.rmtree(path / STAGING, ignore_errors=True)

        manifest, catalog, vectors, terms = loaded
        consistent = _check_ids(catalog, vectors, terms, findings, fixed, repair)
        if repair and not consistent:
            store.commit(catalog, vectors, {k: v for k, v in manifest.items() if k != "saved_at"})
        elif repair:
            with store._load_lock:
                store._state = store._load()
    return findings


def _check_ids(catalog: Catalog, vectors: FaissVectorStore, terms: TermIndex, findings: list[str], fixed: str,
               repair: bool) -> bool:
    """Compare the ids of the three parts; with ``repair``, fix ``catalog`` and ``vectors`` in place
    (BM25 is refitted from the catalog when the caller commits). True when all agreed."""
    sound = True
    orphans = catalog.orphan_chunk_ids()
    if orphans:
        sound = False
        findings.append(f"{fixed}{len(orphans)} chunk(s) have no document row" + (" (dropped)" if repair else ""))
        if repair:
            catalog.delete_chunks(orphans)
            vectors.remove(np.asarray(orphans, dtype=np.int64))
    in_catalog = set(catalog.chunk_ids())
    in_vectors = set(vectors.ids().tolist())
    in_terms = set(terms.ids().tolist())
    extra = sorted(in_vectors - in_catalog)
    if extra:
        sound = False
        findings.append(f"{fixed}{len(extra)} vector(s) belong to no chunk" + (" (dropped)" if repair else ""))
        if repair:
            vectors.remove(np.asarray(extra, dtype=np.int64))
    lacking = sorted(in_catalog - in_vectors)
    empty = [d.source for d in catalog.documents() if d.chunks == 0]
    for source in catalog.sources_of(lacking) + empty:
        sound = False
        reason = "has chunks without vectors" if source not in empty else "has no chunks"
        findings.append(f"{fixed}{source} {reason}" + (
            f"; it was dropped: index it again with python -m index add {source}" if repair
            else "; --repair drops it (then index it again)"))
        if repair:
            vectors.remove(np.asarray(catalog.remove_document(source), dtype=np.int64))
    if in_terms != in_catalog:
        sound = False
        findings.append(f"{fixed}BM25 holds {len(in_terms)} chunk ids, the catalog {len(in_catalog)} "
                        f"({len(in_terms ^ in_catalog)} differ)" + ("; refitted from the catalog" if repair else ""))
    return sound
