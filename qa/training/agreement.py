"""Choosing ``agree_margin``: when the typed rule-based span of the reader's sentence replaces the
neural span (``qa.readers.neural``), chosen on the held-out slice (``--tune-agreement``)."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from qa.eval.metrics import exact_match, f1_score
from qa.training.data import Example

AGREE_GRID = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)


def tune_agreement(out: Path, contexts: list[str], heldout: list[Example], limit: int, grid=AGREE_GRID) -> int:
    """Choose ``agree_margin`` (see ``qa.readers.neural.ReaderConfig``) on the held-out slice and
    write it into ``reader.json`` (and ``SHA256SUMS``).

    Each held-out question is read once with its context; for every margin in ``grid``
    the answer is the neural best span, or the typed rule-based span of the same sentence
    when its logit is within the margin. The margin with the best F1 (ties: the smaller)
    is kept.

    Args:
        out: exported reader folder.
        contexts: all contexts.
        heldout: held-out examples.
        limit: held-out questions used (0: all).
        grid: margins tried.

    Returns:
        Exit code.
    """
    from qa.readers.neural import (READER_CONFIG_FILE, NeuralReader, best_of_windows, read_windows, scored_typed_alternative,
                           typed_span_wins, write_checksums)

    reader = NeuralReader.load(out, precision="fp32", cached=False)
    cfg = reader.config
    items = heldout[:limit] if limit else heldout
    em = {m: 0.0 for m in grid}
    f1 = {m: 0.0 for m in grid}
    changed = {m: 0 for m in grid}
    for ex in tqdm(items, desc="agreement", unit="q", mininterval=5):
        ctx = contexts[ex.context_id]
        wins = read_windows(reader.model, reader.tokenizer, ex.question, [ctx], cfg)[0]
        logit, _, s, e = best_of_windows(wins, cfg.max_answer_tokens)
        alt = scored_typed_alternative(ex.question, ctx, wins, s, e, cfg.max_answer_tokens) if s is not None else None
        for m in grid:
            use_alt = alt is not None and typed_span_wins(alt[0], logit, m)
            pred = ctx[alt[1]:alt[2]] if use_alt else (ctx[s:e] if s is not None else "")
            changed[m] += use_alt
            em[m] += exact_match(pred, ex.answers)
            f1[m] += f1_score(pred, ex.answers)
    n = max(1, len(items))
    rows = {m: {"em": round(100 * em[m] / n, 2), "f1": round(100 * f1[m] / n, 2), "changed": changed[m]} for m in grid}
    for m, r in rows.items():
        print(f"agree_margin {m:<5} EM {r['em']:.2f} F1 {r['f1']:.2f}  typed span chosen on {r['changed']} of {n}", flush=True)
    best = max(grid, key=lambda m: (rows[m]["f1"], -m))
    d = json.loads((out / READER_CONFIG_FILE).read_text())
    d["agree_margin"] = best
    d["agreement"] = {"questions": n, "grid": {str(m): r for m, r in rows.items()}, "chosen": best,
                      "command": f"python -m qa.train_reader --tune-agreement --eval-limit {limit} --out {out}"}
    (out / READER_CONFIG_FILE).write_text(json.dumps(d, indent=1) + "\n")
    write_checksums(out)
    print(f"agree_margin = {best}; rewrote {out / READER_CONFIG_FILE}", flush=True)
    return 0
