"""Calibration: a span's margin over "no answer" as the probability that the span is right."""

from __future__ import annotations

import math

from qa.readers.neural.files import ReaderConfig


def calibrated(margin: float, cfg: ReaderConfig) -> float:
    """Probability that a span with this margin is right: ``sigmoid(a * margin + b)``.

    Args:
        margin: ``span_logit - null_logit``.
        cfg: holds the fitted ``calib_a``/``calib_b``.

    Returns:
        A score in [0, 1].
    """
    if not math.isfinite(margin):
        return 0.0 if margin < 0 else 1.0
    z = cfg.calib_a * margin + cfg.calib_b
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)
