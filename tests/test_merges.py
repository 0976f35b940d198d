"""Segment merges: a streamed merge writes what one segment written from the live chunks at once
holds, and the largest merged segment is capped (``segments.MAX_MERGED_ROWS``)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from index import vectors as vector_rules
from index.backends import segments
from index.backends.folder import FolderStore
from index.backends.segments import load_live, merge, plan_merge
from index.terms import TermIndex
from tests.test_segments import _commit, _docs, corpus  # noqa: F401  (corpus: the module's fixture)


def _rows(folder, table: str, where: str = "") -> list[tuple]:
    with sqlite3.connect(folder / "catalog.sqlite") as conn:
        return conn.execute(f"SELECT * FROM {table} {where} ORDER BY id").fetchall()


def _assert_holds_the_live_chunks(merged, parts, reference: FolderStore) -> None:
    """``merged`` holds exactly what one segment written from the live chunks of ``parts`` holds:
    ids in order, the same catalog rows, the same vectors, the postings of those texts."""
    docs, chunks, ids = [], [], []
    for live in parts:
        seg = live.segment
        kept = ",".join(str(d) for d, *_ in seg.catalog.document_rows() if d not in live.deleted_docs) or "-1"
        docs += _rows(seg.path, "documents", f"WHERE id IN ({kept})")
        chunks += _rows(seg.path, "chunks", f"WHERE doc IN ({kept})")
        ids += seg.ids[live.live].tolist()
    assert merged.ids.tolist() == sorted(ids) == sorted(c[0] for c in chunks)
    assert _rows(merged.path, "documents") == sorted(docs)
    assert _rows(merged.path, "chunks") == sorted(chunks)
    assert np.array_equal(merged.read_vectors(np.arange(len(ids))), reference.vectors(merged.ids.tolist()))
    assert merged.kind == vector_rules.index_kind(len(ids))
    got, want = merged.read_terms(), TermIndex.build(c[6] for c in sorted(chunks))
    assert np.array_equal(got.lengths, want.lengths) and len(got.positions) == len(want.positions)
    assert set(want.vocab) <= set(got.vocab)   # terms only removed chunks held stay, without postings
    for term in got.vocab:
        for a, b in zip(got.postings(term), want.postings(term)):
            assert np.array_equal(a, b) and a.dtype == b.dtype, term


@pytest.mark.parametrize("threshold", [None, 10])     # exact segments, and HNSW ones built batch by batch
def test_a_streamed_merge_holds_what_one_segment_of_the_live_chunks_holds(tmp_path, corpus, monkeypatch,  # noqa: F811
                                                                         threshold):
    texts, vectors = corpus
    monkeypatch.setattr(segments, "VECTOR_BATCH", 5)      # several batches, some rows of two segments
    store = FolderStore.open(tmp_path / "ix", create=True, load_parts=False)
    for b in range(4):
        _commit(store, add=_docs(texts, vectors, 5 * b, 5 * b + 5))
    _commit(store, remove=["/docs/d001.txt", "/docs/d007.txt", "/docs/d008.txt", "/docs/d019.txt"])
    lives = list(store._state.segments)
    assert len(lives) == 4
    if threshold:
        monkeypatch.setattr(vector_rules, "HNSW_THRESHOLD", threshold)
    root = tmp_path / "ix" / "segments"

    whole = merge(lives, root, "seg-all-m", 384, keep_parts=False)           # id ranges one after another
    _assert_holds_the_live_chunks(whole, lives, store)
    outer = merge([lives[2], lives[0]], root, "seg-outer-m", 384, keep_parts=False)  # spans lives[1]'s ids
    mixed = merge([load_live(outer, None), lives[1], lives[3]], root, "seg-mixed-m", 384, keep_parts=True)
    _assert_holds_the_live_chunks(mixed, [lives[0], lives[1], lives[2], lives[3]], store)   # interleaved ids
    assert mixed.parts_held() and not whole.parts_held()
    for row in range(0, len(mixed.ids), 4):              # each vector finds itself, in either kind of index
        assert mixed.vectors.search(mixed.read_vectors(np.array([row]))[0], 1)[0][0] == row


def test_the_merge_policy_caps_a_merged_segment():
    cap = 250_000
    assert sorted(plan_merge([70_000] * 11, cap=10**9)) == list(range(10))       # without a cap: ten at a time
    assert sorted(plan_merge([70_000] * 11, cap=cap)) == [0, 1, 2]                # with it: what fits
    assert plan_merge([200_000] * 15 + [5] * 10, cap=cap) == []                   # full ones are not counted
    assert sorted(plan_merge([200_000] * 15 + [5] * 11, cap=cap)) == list(range(15, 25))
    assert plan_merge([cap, 5], deleted=[cap, 0], cap=cap) == [0]                 # removals still rewrite one alone
    assert sorted(plan_merge([40_000] * 5, large=50_000, cap=100_000)) == [0, 1]  # small ones: up to the cap
    rng = np.random.default_rng(0)
    for _ in range(300):
        sizes = rng.integers(1, cap, int(rng.integers(2, 30))).tolist()
        chosen = plan_merge(sizes, cap=cap)
        assert sum(sizes[i] for i in chosen) <= cap and (chosen or
                                                         sum(n <= cap // 2 for n in sizes) <= segments.MAX_SEGMENTS)


def test_a_long_build_never_merges_past_the_cap():
    """Commits of 2,050 chunks up to three million: no merge writes more than the cap, and the
    segments that can still grow never outnumber ``MAX_SEGMENTS``."""
    cap, sizes, largest = 250_000, [], 0
    for _ in range(3_000_000 // 2_050):
        sizes.append(2_050)
        plan = plan_merge(sizes, cap=cap)
        if plan:
            largest = max(largest, sum(sizes[i] for i in plan))
            sizes = [n for i, n in enumerate(sizes) if i not in plan] + [sum(sizes[i] for i in plan)]
        assert sum(n <= cap // 2 for n in sizes) <= segments.MAX_SEGMENTS + 1
    assert cap // 2 < largest <= cap and max(sizes) <= cap and len(sizes) > segments.MAX_SEGMENTS


def test_a_store_keeps_full_segments_apart_and_answers_as_one_never_merged(tmp_path, corpus, monkeypatch):  # noqa: F811
    texts, vectors = corpus
    monkeypatch.setattr(segments, "MAX_MERGED_ROWS", 8)   # four two-chunk documents fill a segment
    capped = FolderStore.open(tmp_path / "capped", create=True)
    plain = FolderStore.open(tmp_path / "plain", create=True)
    for store, limit in ((plain, 1000), (capped, 2)):
        monkeypatch.setattr(segments, "MAX_SEGMENTS", limit)
        for b in range(14):
            _commit(store, add=_docs(texts, vectors, b, b + 1))
    assert len(plain.segments()) == 14
    sizes = [s["live"] for s in capped.segments()]
    assert max(sizes) <= 8 and len(sizes) > 2 and sum(n > 4 for n in sizes) >= 2
    assert capped.count() == plain.count() == 28 and capped.documents() == plain.documents()
    for i in range(0, 28, 3):
        assert [c for c, _ in capped.search_dense(vectors[i], 5)] == [c for c, _ in plain.search_dense(vectors[i], 5)]
        words = " ".join(texts[i].split()[:6])
        found, expected = capped.search_terms(words, 5), plain.search_terms(words, 5)
        assert [c for c, _ in found] == [c for c, _ in expected]
        assert [s for _, s in found] == pytest.approx([s for _, s in expected], rel=1e-9)
    assert FolderStore.open(tmp_path / "capped").check() == []
