"""Reading scored questions with the model being trained (held-out EM/F1 and the margins that
calibration fits), and the closed-mode SQuAD score of an exported reader (``--eval-only``)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from tqdm import tqdm

from qa.eval.metrics import exact_match, f1_score, percentile


def read_items(model, tokenizer, items: list[tuple[str, str, tuple[str, ...]]], rcfg, progress: str = "",
               bf16: bool = False) -> dict:
    """EM/F1 of the best span, reading each (question, context) pair.

    Args:
        model: QA model (eval mode).
        tokenizer: its tokenizer.
        items: ``(question, context, gold_answers)``.
        rcfg: ``qa.readers.neural.ReaderConfig`` (windows, span length).
        progress: label of a progress bar with the running EM/F1 ("": none).
        bf16: read with bfloat16 matrix products (``qa.readers.neural.read_contexts``).

    Returns:
        ``{"n", "em", "f1", "ms_per_question", "margins", "f1s"}`` (em/f1 in percent).
    """
    from qa.readers.neural import read_contexts

    em = f1 = 0.0
    margins, f1s = [], []
    t0 = time.perf_counter()
    bar = tqdm(items, desc=progress, unit="q", disable=not progress, mininterval=5)
    for k, (q, ctx, golds) in enumerate(bar):
        span_logit, null_logit, s, e = read_contexts(model, tokenizer, q, [ctx], rcfg, bf16=bf16)[0]
        pred = ctx[s:e] if s is not None else ""
        em += exact_match(pred, golds)
        f = f1_score(pred, golds)
        f1 += f
        margins.append(span_logit - null_logit)
        f1s.append(f)
        if progress:
            bar.set_postfix(EM=f"{100 * em / (k + 1):.1f}", F1=f"{100 * f1 / (k + 1):.1f}", refresh=False)
    n = max(1, len(items))
    return {
        "n": len(items),
        "em": 100 * em / n,
        "f1": 100 * f1 / n,
        "ms_per_question": 1000 * (time.perf_counter() - t0) / n,
        "margins": margins,
        "f1s": f1s,
    }


def eval_squad(model_dir: Path, squad_path: Path, sample: int, precision: str = "fp32", seed: int = 0) -> dict:
    """Closed-mode SQuAD scores of a shipped reader: each question read with its gold paragraph.

    Also times ``NeuralReader.extract`` over 5 passages per question (the gold paragraph and
    the 4 next paragraphs of the same article), as the engine would call it.

    Args:
        model_dir: exported reader folder.
        squad_path: SQuAD-format JSON (evaluation only, never training).
        sample: number of random questions (0: all).
        precision: "fp32", "bf16", "int8" or "auto" (``NeuralReader.load``).
        seed: sampling seed.

    Returns:
        ``{"n", "em", "f1", "ms_per_question", "extract5_p50_ms", "extract5_p90_ms"}``.
    """
    import torch

    from qa.readers.neural import NeuralReader
    from qa.types import Passage

    torch.set_num_threads(2)
    reader = NeuralReader.load(model_dir, precision=precision, cached=False)
    data = json.loads(Path(squad_path).read_text(encoding="utf-8"))
    rows = []
    for article in data["data"]:
        paras = [p["context"] for p in article["paragraphs"]]
        for pi, para in enumerate(article["paragraphs"]):
            for qa in para["qas"]:
                golds = tuple(a["text"] for a in qa["answers"])
                if golds:
                    rows.append((qa["question"], paras, pi, golds))
    rng = random.Random(seed)
    if sample and sample < len(rows):
        rows = rng.sample(rows, sample)
    items = [(q, paras[pi], golds) for q, paras, pi, golds in rows]
    res = read_items(reader.model, reader.tokenizer, items, reader.config, progress="reading", bf16=reader.bf16)
    times = []
    for q, paras, pi, _ in rows[:200]:
        texts = [paras[(pi + k) % len(paras)] for k in range(5)]
        passages = [Passage(chunk_id=k, source="squad", start=0, end=len(t), text=t, score=0.0) for k, t in enumerate(texts)]
        t0 = time.perf_counter()
        reader.extract(q, passages)
        times.append(1000 * (time.perf_counter() - t0))
    res.update(extract5_p50_ms=percentile(times, 50), extract5_p90_ms=percentile(times, 90),
               load_seconds=reader.load_seconds, precision=reader.precision)
    return res


def format_squad_result(path: Path, res: dict) -> str:
    """One line for ``eval_squad``'s result."""
    return (f"{Path(path).name}: {res['n']} questions (seed 0, gold paragraph), precision {res['precision']}: "
            f"EM {res['em']:.1f} F1 {res['f1']:.1f}, {res['ms_per_question']:.0f} ms/question; "
            f"extract() over 5 passages p50 {res['extract5_p50_ms']:.0f} ms p90 {res['extract5_p90_ms']:.0f} ms; "
            f"load {res['load_seconds']:.2f}s")
