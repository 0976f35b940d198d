"""Calibration: the reader's span-minus-null margin mapped to the probability that its answer is
right (a 1-D logistic fit on held-out readings), the held-out figures ``reader.json`` records,
and refitting an exported reader (``--recalibrate``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from qa.eval.metrics import best_threshold
from qa.training.data import Example, negative_items, perturbed_items
from qa.training.reading import read_items


def fit_calibration(margins: list[float], labels: list[int]) -> tuple[float, float]:
    """1-D logistic regression ``P(label=1) = sigmoid(a * margin + b)``.

    Fitted on standardised margins by damped Newton steps (step halving when the
    regularised log-loss does not drop), then mapped back to raw margins.

    Args:
        margins: span minus null logit per reading.
        labels: 1 when the reading's span was right, 0 otherwise.

    Returns:
        ``(a, b)``; falls back to ``(0.5, 0.0)`` with too little data.
    """
    import numpy as np

    x = np.asarray(margins, dtype=float)
    keep = np.isfinite(x)
    x, y = x[keep], np.asarray(labels, dtype=float)[keep]
    if len(x) < 10 or y.min() == y.max():
        return 0.5, 0.0
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    z = (x - mu) / sd
    lam = 1e-3 * len(z)

    def loss(w):
        t = w[0] * z + w[1]
        return float(np.sum(np.logaddexp(0, t) - y * t) + 0.5 * lam * w[0] ** 2)

    w = np.zeros(2)
    cur = loss(w)
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(w[0] * z + w[1], -500, 500)))
        r = p * (1 - p) + 1e-9
        g = np.array([np.sum((p - y) * z) + lam * w[0], np.sum(p - y)])
        h = np.array([[np.sum(r * z * z) + lam, np.sum(r * z)], [np.sum(r * z), np.sum(r)]])
        step = np.linalg.solve(h, g)
        t = 1.0
        while t > 1e-6 and loss(w - t * step) > cur:
            t /= 2
        w = w - t * step
        new = loss(w)
        if abs(cur - new) < 1e-10:
            break
        cur = new
    a = float(w[0] / sd)
    return a, float(w[1] - a * mu)


def calibrate(model, tokenizer, contexts: list[str], heldout: list[Example], limit: int, seed: int, rcfg,
              bf16: bool = False) -> tuple:
    """Score held-out questions and no-answer passages, and fit the score calibration.

    Args:
        model: the QA model as it will be used (eval mode; quantised or not).
        tokenizer: its tokenizer.
        contexts: all contexts.
        heldout: held-out examples.
        limit: held-out questions used.
        seed: seed for picking no-answer passages.
        rcfg: ``qa.readers.neural.ReaderConfig`` (windows).
        bf16: read with bfloat16 matrix products.

    Returns:
        ``(reader_config_with_calibration, answerable_result, no_answer_result, kept_pos)``;
        ``no_answer_result`` holds the counts and kept rates of each kind of no-answer reading.
    """
    from qa.readers.neural import ReaderConfig, calibrated

    items = [(e.question, contexts[e.context_id], e.answers) for e in heldout[:limit]]
    res = read_items(model, tokenizer, items, rcfg, progress="held-out", bf16=bf16)
    print(f"held-out: {res['n']} questions EM {res['em']:.1f} F1 {res['f1']:.1f} ({res['ms_per_question']:.0f} ms/question)", flush=True)
    # No-answer readings, half of each kind: a stretch of the question's own context without the
    # answer, and the question's unanswerable twin over its whole context.
    n_neg = max(2, len(items) // 4)
    region = read_items(model, tokenizer, negative_items(contexts, heldout[:limit], seed, limit=n_neg),
                      rcfg, bf16=bf16)
    twins = read_items(model, tokenizer, perturbed_items(contexts, heldout[:limit], seed, limit=n_neg), rcfg, bf16=bf16)
    # Twins that swap in another name or number of the same context: scored, not fitted, so the
    # calibration stays comparable between readers trained with and without them.
    within = read_items(model, tokenizer, perturbed_items(contexts, heldout[:limit], seed, limit=n_neg,
                                                        kinds=("swap_within",)), rcfg, bf16=bf16)
    neg_res = {"n": region["n"] + twins["n"], "margins": region["margins"] + twins["margins"],
               "n_region": region["n"], "n_twins": twins["n"], "n_within": within["n"]}
    margins = res["margins"] + neg_res["margins"]
    labels = [int(f >= 0.5) for f in res["f1s"]] + [0] * len(neg_res["margins"])
    a, b = fit_calibration(margins, labels)
    rcfg = ReaderConfig(**{**asdict(rcfg), "calib_a": a, "calib_b": b})

    def kept(ms: list[float]) -> float:
        return sum(calibrated(m, rcfg) >= rcfg.threshold for m in ms) / max(1, len(ms))

    pos = kept(res["margins"])
    neg_res.update(kept_region=kept(region["margins"]), kept_twins=kept(twins["margins"]),
                   kept_within=kept(within["margins"]),
                   best_f1_region=balanced_best_f1(res["margins"], res["f1s"], region["margins"]),
                   best_f1_twins=balanced_best_f1(res["margins"], res["f1s"], twins["margins"]),
                   best_f1_within=balanced_best_f1(res["margins"], res["f1s"], within["margins"]))
    right = [calibrated(m, rcfg) >= rcfg.threshold for m, f in zip(res["margins"], res["f1s"]) if f >= 0.5]
    print(f"calibration: a={a:.3f} b={b:.3f}; at threshold {rcfg.threshold}: answers kept on {100 * pos:.1f}% of "
          f"held-out questions ({100 * sum(right) / max(1, len(right)):.1f}% of those it gets right), wrongly kept on "
          f"{100 * neg_res['kept_region']:.1f}% of {region['n']} no-answer stretches and {100 * neg_res['kept_twins']:.1f}% "
          f"of {twins['n']} unanswerable twins ({100 * neg_res['kept_within']:.1f}% of {within['n']} twins made within "
          f"the context, not fitted)", flush=True)
    print(f"best balanced F1 (answerable and no-answer weighted equally, as in SQuAD 2.0): "
          f"{neg_res['best_f1_region']:.1f} with the no-answer stretches, {neg_res['best_f1_twins']:.1f} with the twins, "
          f"{neg_res['best_f1_within']:.1f} with the twins made within the context", flush=True)
    return rcfg, res, neg_res, pos


def heldout_record(res: dict, neg_res: dict, kept_answerable: float, threshold: float) -> dict:
    """The held-out figures ``reader.json`` records, from ``calibrate``'s results (kept rates
    at the calibrated score ``threshold``)."""
    return {
        "questions": res["n"], "em": round(res["em"], 2), "f1": round(res["f1"], 2),
        "kept_at": threshold,
        "no_answer_passages": neg_res["n_region"], "unanswerable_twins": neg_res["n_twins"],
        "kept_rate_answerable": round(kept_answerable, 4), "kept_rate_no_answer": round(neg_res["kept_region"], 4),
        "kept_rate_twins": round(neg_res["kept_twins"], 4),
        "best_balanced_f1_no_answer": round(neg_res["best_f1_region"], 2),
        "best_balanced_f1_twins": round(neg_res["best_f1_twins"], 2),
        "twins_within": neg_res["n_within"], "kept_rate_twins_within": round(neg_res["kept_within"], 4),
        "best_balanced_f1_twins_within": round(neg_res["best_f1_within"], 2),
    }


def balanced_best_f1(margins: list[float], f1s: list[float], neg_margins: list[float]) -> float:
    """Best F1 over abstention thresholds when answerable and unanswerable readings weigh the same.

    At threshold ``t`` an answerable reading scores its span F1 when its margin is at least
    ``t`` (0 otherwise) and an unanswerable one scores 1 when its margin is below ``t``; the
    figure is the best over ``t`` of the mean of the two averages (SQuAD 2.0's F1 with as many
    unanswerable questions as answerable ones): ``qa.eval.metrics.best_threshold`` with each
    group weighing one half. The calibrated score is monotone in the margin, so this does not
    depend on the calibration.

    Args:
        margins: span minus null logit of the answerable readings.
        f1s: their span F1 (0..1).
        neg_margins: margins of the unanswerable readings.

    Returns:
        The best balanced F1 in percent (0.0 without both kinds of reading).
    """
    if not margins or not neg_margins:
        return 0.0
    weights = [0.5 / len(margins)] * len(margins) + [0.5 / len(neg_margins)] * len(neg_margins)
    _, value = best_threshold([*margins, *neg_margins], [*f1s, *[0.0] * len(neg_margins)],
                              [*[0.0] * len(margins), *[1.0] * len(neg_margins)], weights=weights)
    return 100 * value


def recalibrate(out: Path, contexts: list[str], heldout: list[Example], limit: int, seed: int, precision: str = "fp32") -> int:
    """Refit the calibration of an exported reader and rewrite
    ``reader.json`` and ``SHA256SUMS``.

    Args:
        out: exported reader folder.
        contexts: all contexts.
        heldout: held-out examples.
        limit: held-out questions used.
        seed: seed for picking no-answer passages.
        precision: calibrate the reader as it computes with this precision (``NeuralReader.load``).

    Returns:
        Exit code.
    """
    from qa.readers.neural import READER_CONFIG_FILE, NeuralReader, write_checksums

    reader = NeuralReader.load(out, precision=precision, cached=False)
    rcfg, res, neg_res, pos = calibrate(reader.model, reader.tokenizer, contexts, heldout, limit, seed, reader.config,
                                             bf16=reader.bf16)
    d = json.loads((out / READER_CONFIG_FILE).read_text())
    d.update(calib_a=rcfg.calib_a, calib_b=rcfg.calib_b)
    record = heldout_record(res, neg_res, pos, rcfg.threshold)
    d["calibration"] = {
        "precision": reader.precision,
        **record,
        "command": f"python -m qa.train_reader --recalibrate --eval-limit {limit} --out {out} --precision {precision}",
    }
    # A reader that was never scored at export (an average of others) gets its held-out scores here.
    d.setdefault("heldout", record)
    (out / READER_CONFIG_FILE).write_text(json.dumps(d, indent=1) + "\n")
    write_checksums(out)
    print(f"rewrote {out / READER_CONFIG_FILE}", flush=True)
    return 0
