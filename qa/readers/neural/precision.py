"""Arithmetic precision of the neural reader: what this CPU does fast, and "auto" resolved."""

from __future__ import annotations

from qa.settings import PRECISIONS


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), so that reading in
    bf16 is faster than fp32 rather than emulated and slower."""
    import torch

    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(torch.cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except RuntimeError:
            continue
    return False


def resolve_precision(precision: str) -> str:
    """``"auto"`` -> ``"bf16"`` where the CPU has native bf16, else ``"fp32"``; others as given.

    Raises:
        ValueError: an unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}. Currently, precision is {precision!r}")
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    return precision
