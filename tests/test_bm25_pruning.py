"""BM25 search with dynamic pruning returns exactly the exhaustive top k: the same chunks, the
same scores, ties by lower id, over several segments with removed rows, and over postings
saved before the per-term bounds existed."""

from __future__ import annotations

import json
import math
import zipfile
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index import bm25 as bm25_rules
from index.bm25 import Bm25, Part
from index.terms import TermIndex
from index.text import terms
from tests.test_segments import DATA, _real_texts

COPIES = 12   # each real text repeated under distinct ids, as a large store holds near-duplicates


def _reference(live: dict[int, str], query: str) -> dict[int, float]:
    """BM25 of every live chunk, one chunk at a time from its text (no postings)."""
    counts = {cid: Counter(terms(text)) for cid, text in live.items()}
    lengths = {cid: max(len(terms(text)), 1) for cid, text in live.items()}
    n, avg = len(live), sum(lengths.values()) / len(live)
    scores: dict[int, float] = {}
    for term, repeats in Counter(terms(query)).items():
        df = sum(term in c for c in counts.values())
        if not df:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for cid, c in counts.items():
            if term in c:
                tf = c[term]
                norm = bm25_rules.K1 * (1 - bm25_rules.B + bm25_rules.B * lengths[cid] / avg)
                scores[cid] = scores.get(cid, 0.0) + repeats * idf * tf / (tf + norm)
    return scores


def _assert_top_k(found: list[tuple[int, float]], reference: dict[int, float], k: int, query: str) -> None:
    """``found`` is a top ``k`` of ``reference``: as many chunks as it can hold, the best scores
    (to rounding), each chunk's own score, nothing better left out, ties by lower id."""
    best = sorted(reference.values(), reverse=True)[:k]
    assert len(found) == len(best), query
    assert [s for _, s in found] == pytest.approx(best, rel=1e-9), query
    assert all(reference[cid] == pytest.approx(s, rel=1e-9) for cid, s in found), query
    assert found == sorted(found, key=lambda hit: (-hit[1], hit[0])), query
    if found:
        chosen = {cid for cid, _ in found}
        assert all(s <= found[-1][1] * (1 + 1e-9) for cid, s in reference.items() if cid not in chosen), query


def _store(texts: list[str], cuts: list[int], removed: set[int]) -> tuple[Bm25, dict[int, str]]:
    """``texts`` as segments cut at ``cuts``, chunk ids 10 * row + 7 (ascending, not rows),
    with the chunks at ``removed`` rows no longer live."""
    parts, live_texts, bounds = [], {}, [0, *cuts, len(texts)]
    for a, b in zip(bounds, bounds[1:]):
        ids = np.arange(a, b, dtype=np.int64) * 10 + 7
        live = np.array([row not in removed for row in range(a, b)], dtype=bool)
        parts.append(Part(TermIndex.build(texts[a:b]), live, ids))
        live_texts.update({int(cid): texts[row] for cid, row in zip(ids, range(a, b)) if row not in removed})
    return Bm25(parts), live_texts


@pytest.fixture(scope="module")
def real_store():
    rng = np.random.default_rng(0)
    distinct = _real_texts()
    texts = [distinct[i] for i in rng.permutation(np.repeat(np.arange(len(distinct)), COPIES))]
    removed = set(rng.choice(len(texts), len(texts) // 20, replace=False).tolist())
    cuts = [len(texts) // 2, len(texts) // 2 + 100, len(texts) - 40]
    return _store(texts, cuts, removed)


def _queries() -> list[str]:
    squad = json.loads((DATA / "squad_tiny.json").read_text())
    questions = [q["question"] for a in squad["data"] for p in a["paragraphs"] for q in p["qas"]]
    questions += [json.loads(line)["question"] for line in open(DATA / "seed_questions.jsonl")]
    return questions + ["Huawei Huawei Huawei 5G networks", "the State Department said said said",
                        "security security", "volcano", "no such wordzzz", ""]


def test_pruned_search_returns_the_exhaustive_top_k_on_real_text(real_store):
    bm, live = real_store
    queries = _queries()
    assert len(queries) > 30
    for query in queries:
        reference = _reference(live, query)
        for k in (1, 3, 10, 50, len(live) + 5):
            pruned = bm.search(query, k)
            assert pruned == bm.search(query, k, prune=False), (query, k)   # the same floats, the same order
            _assert_top_k(pruned, reference, k, query)


def test_duplicates_tie_and_rank_by_lower_id(real_store):
    bm, live = real_store
    found = bm.search("Rob Strayer State Department", 20)
    scores = [s for _, s in found]
    assert len(set(scores)) < len(scores)            # the repeated texts score alike
    for (a, sa), (b, sb) in zip(found, found[1:]):
        assert sa > sb or (sa == sb and a < b)


def test_pruning_scores_fewer_postings_than_the_exhaustive_search(real_store, monkeypatch):
    """The point of pruning: queries with common terms leave most of their postings unscored."""
    bm, _ = real_store
    scored = Counter()
    contribution = bm25_rules._contribution

    def counting(weight, tfs, lengths, avg_length):
        scored[mode] += len(tfs)
        return contribution(weight, tfs, lengths, avg_length)

    monkeypatch.setattr(bm25_rules, "_contribution", counting)
    for mode, prune in (("pruned", True), ("exhaustive", False)):
        for query in _queries():
            bm.search(query, 10, prune=prune)
    assert scored["pruned"] < 0.7 * scored["exhaustive"], scored


def _without_bounds(saved: TermIndex, folder) -> TermIndex:
    """``saved`` written as postings were before the per-term bounds, and read back."""
    saved.save(folder)
    file = folder / TermIndex.DIRNAME / TermIndex.FILENAME
    with zipfile.ZipFile(file) as z:
        assert {"max_tfs.npy", "min_lengths.npy"} <= set(z.namelist())
    with np.load(file) as z:
        arrays = {name: z[name] for name in ("vocab", "indptr", "positions", "tfs", "lengths")}
    np.savez(file, **arrays)
    return TermIndex.load(folder)


def test_postings_saved_without_bounds_search_alike(tmp_path, real_store):
    bm, _ = real_store
    old_parts = [Part(_without_bounds(p.terms, tmp_path / f"seg{i}"), p.live, p.ids) for i, p in enumerate(bm.parts)]
    assert all(p.terms.max_tfs is None for p in old_parts)
    old = Bm25(old_parts)
    for query in _queries():
        assert old.search(query, 10) == bm.search(query, 10), query
    for new_part, old_part in zip(bm.parts, old_parts):
        for term in new_part.terms.vocab:
            assert old_part.terms.bound(term) == new_part.terms.bound(term), term
    back = TermIndex.load(tmp_path / "seg0")
    assert back.max_tfs is None and back.bound("no such wordzzz") == (0, 0)
    bm.parts[0].terms.save(tmp_path / "new")                     # a current file keeps its bounds
    reread = TermIndex.load(tmp_path / "new")
    assert np.array_equal(reread.max_tfs, bm.parts[0].terms.max_tfs)
    assert np.array_equal(reread.min_lengths, bm.parts[0].terms.min_lengths)


def _brute_bounds(index: TermIndex) -> dict[str, tuple[int, int]]:
    out = {}
    for term in index.vocab:
        rows, tfs = index.postings(term)
        out[term] = (int(tfs.max()), int(index.lengths[rows].min())) if len(rows) else (0, 0)
    return out


def test_bounds_are_each_terms_largest_tf_and_shortest_chunk_after_build_and_merge():
    texts = _real_texts()[:80] + ["qqlamp qqlamp qqlamp", "", "qqlamp"]
    a, b = TermIndex.build(texts[:50]), TermIndex.build(texts[50:])
    for index in (a, b):
        assert {t: index.bound(t) for t in index.vocab} == _brute_bounds(index)
    assert b.bound("qqlamp") == (3, 1)
    keep_a = np.arange(50) % 3 != 0
    keep_b = np.array([t != "qqlamp qqlamp qqlamp" for t in texts[50:]])
    kept = int(keep_a.sum() + keep_b.sum())
    merged = TermIndex.merge([(a, keep_a), (b, keep_b)], np.random.default_rng(1).permutation(kept))
    assert {t: merged.bound(t) for t in merged.vocab} == _brute_bounds(merged)
    assert merged.bound("qqlamp") == (1, 1)
    gone = [t for t in merged.vocab if not len(merged.postings(t)[0])]   # terms only removed rows held
    assert gone and all(merged.bound(t) == (0, 0) for t in gone)


WORDS = ("Huawei security networks State Department said Strayer volcano Sicily eruption "
         "lava people study year").split()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(st.lists(st.sampled_from(WORDS), max_size=10), min_size=1, max_size=60),
       copies=st.integers(1, 4), cuts=st.lists(st.integers(0, 240), max_size=3),
       removed=st.sets(st.integers(0, 239), max_size=40),
       query=st.lists(st.sampled_from(WORDS + ["wordzzz"]), min_size=1, max_size=8), k=st.integers(1, 30))
def test_pruned_search_equals_the_exhaustive_one_on_any_store(docs, copies, cuts, removed, query, k):
    texts = [" ".join(d) for d in docs] * copies
    bm, live = _store(texts, sorted({c for c in cuts if c < len(texts)}), removed)
    text = " ".join(query)
    if not live:
        assert bm.search(text, k) == []
        return
    pruned = bm.search(text, k)
    assert pruned == bm.search(text, k, prune=False)
    _assert_top_k(pruned, _reference(live, text), k, text)


def test_a_store_whose_postings_lack_bounds_opens_and_answers_alike(tmp_path, embedder, monkeypatch):
    """Segments written before the postings kept their bounds open, search as before, and
    merge into a segment that keeps them."""
    from index.backends import segments
    from index.backends.folder import FolderStore
    from tests.test_segments import _commit, _docs

    texts = _real_texts()[:60]
    vectors = embedder.encode(texts)
    store = FolderStore.open(tmp_path / "ix", create=True)
    for b in range(3):
        _commit(store, add=_docs(texts, vectors, 8 * b, 8 * b + 8))
    _commit(store, remove=["/docs/d003.txt"])
    queries = [" ".join(t.split()[:8]) for t in texts[::5]] + _queries()[:10]
    expected = {q: store.search_terms(q, 10) for q in queries}
    for seg in store.segments():
        _without_bounds(TermIndex.load(tmp_path / "ix" / "segments" / seg["name"]),
                        tmp_path / "ix" / "segments" / seg["name"])
    old = FolderStore.open(tmp_path / "ix")
    assert all(s.segment.terms.max_tfs is None for s in old._state.segments)
    assert {q: old.search_terms(q, 10) for q in queries} == expected
    gone = {c.id for c in old.chunks_of("/docs/d010.txt")}
    monkeypatch.setattr(segments, "MAX_SEGMENTS", 1)
    _commit(old, remove=["/docs/d010.txt"])                      # merges the old segments into one
    merged = FolderStore.open(tmp_path / "ix")
    [live] = merged._state.segments
    assert live.segment.terms.max_tfs is not None
    bm25 = merged._state.bm25()
    for q in queries:
        found = merged.search_terms(q, 10)
        assert found == bm25.search(q, 10, prune=False) and not gone & {c for c, _ in found}, q
