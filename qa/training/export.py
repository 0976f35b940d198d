"""Writing readers: resumable checkpoints, the shippable export (fp16 weights, tokenizer,
``reader.json``, checksums) and the weight-by-weight mean of several exported readers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def save_checkpoint(out: Path, model, optimizer, state: dict) -> None:
    """Write a resumable checkpoint into ``out/checkpoint`` (atomic rename).

    Args:
        out: output folder.
        model: the model.
        optimizer: AdamW.
        state: step counters etc. (JSON-serialisable).
    """
    import torch
    from safetensors.torch import save_file

    tmp = out / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}, tmp / "optim.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    final = out / "checkpoint"
    old = out / "checkpoint.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def export(out: Path, model, base_dir: Path, reader_cfg: dict) -> None:
    """Write the shippable reader: fp16 weights, config, tokenizer, reader.json, SHA256SUMS.

    Args:
        out: destination folder.
        model: trained model.
        base_dir: the bundled encoder folder (tokenizer files are copied from it).
        reader_cfg: contents of ``reader.json``.
    """
    from safetensors.torch import save_file

    from qa.readers.neural import READER_CONFIG_FILE, TOKENIZER_FILES, WEIGHTS_FILE, write_checksums

    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to("cpu").half().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(out / WEIGHTS_FILE), metadata={"format": "pt", "dtype": "float16"})
    model.config.dtype = "float32"  # what NeuralReader.load computes in (the file stores fp16)
    model.config.to_json_file(str(out / "config.json"))
    for name in TOKENIZER_FILES:
        if (Path(base_dir) / name).is_file():
            shutil.copyfile(Path(base_dir) / name, out / name)
    (out / READER_CONFIG_FILE).write_text(json.dumps(reader_cfg, indent=1) + "\n")
    write_checksums(out)


def average_readers(dirs: list[Path], out: Path, weights: list[float] | None = None) -> dict:
    """Write into ``out`` the weight-by-weight mean of exported readers ("model soup",
    Wortsman et al. 2022): each tensor averaged in fp32 and stored in fp16, tokenizer and
    config from the first reader, ``reader.json`` recording what was averaged.

    The readers must share an architecture and a base (runs of ``python -m qa.train_reader`` with
    different seeds, or a reader and its fine-tuning); the result still needs calibrating
    (``recalibrate``). With ``weights`` the mean is weighted: two readers and weights
    ``(1 - a, a)`` interpolate from the first to the second (WiSE-FT, Wortsman et al. 2022).

    Args:
        dirs: exported reader folders (at least two).
        out: destination folder (may not be one of ``dirs``).
        weights: one non-negative weight per reader, normalised to sum to one; equal if None.

    Returns:
        The ``reader.json`` written (calibration still that of the first reader).

    Raises:
        ValueError: fewer than two readers, ``out`` among them, weights that do not match the
            readers, or tensors that do not match.
    """
    from safetensors.torch import load_file, save_file

    from qa.readers.neural import (READER_CONFIG_FILE, TOKENIZER_FILES, WEIGHTS_FILE, ReaderConfig, verify_checksums,
                           write_checksums)

    dirs = [Path(d) for d in dirs]
    if len(dirs) < 2:
        raise ValueError("--average needs at least two reader folders")
    if weights is None:
        weights = [1.0] * len(dirs)
    if len(weights) != len(dirs) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"--average-weights needs one non-negative weight per reader ({len(dirs)}), "
                         f"not all zero; got {list(weights)}")
    share = [w / sum(weights) for w in weights]
    if any(d.resolve() == Path(out).resolve() for d in dirs):
        raise ValueError(f"--out {out} is one of the readers averaged; write the average to a new folder")
    total: dict = {}
    for d, w in zip(dirs, share):
        verify_checksums(d)
        sd = load_file(str(d / WEIGHTS_FILE))
        if total and set(sd) != set(total):
            raise ValueError(f"{d} has other tensors than {dirs[0]}: only readers of the same architecture average")
        for k, v in sd.items():
            if k in total and total[k].shape != v.shape:
                raise ValueError(f"{d}: {k} is {tuple(v.shape)}, {dirs[0]} has {tuple(total[k].shape)}")
            total[k] = total[k] + w * v.float() if k in total else w * v.float()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mean = {k: v.half().contiguous() for k, v in total.items()}
    save_file(mean, str(out / WEIGHTS_FILE), metadata={"format": "pt", "dtype": "float16"})
    for name in ("config.json", *TOKENIZER_FILES):
        if (dirs[0] / name).is_file():
            shutil.copyfile(dirs[0] / name, out / name)
    parts = [json.loads((d / READER_CONFIG_FILE).read_text()) for d in dirs]
    first = parts[0]
    reader_json = {k: first[k] for k in first if k not in ("training", "heldout", "agreement", "calibration",
                                                           "threshold_choice")}
    reader_json["threshold"] = ReaderConfig().threshold  # as a fresh export; the engine's is chosen afterwards
    reader_json["training"] = {
        "average_of": [{"folder": str(d), "weight": round(w, 6), "training": r.get("training"),
                        "heldout": r.get("heldout")} for d, w, r in zip(dirs, share, parts)],
        "command": "python -m qa.train_reader --average " + " ".join(str(d) for d in dirs)
                   + (" --average-weights " + " ".join(f"{w:g}" for w in weights) if len(set(weights)) > 1 else "")
                   + f" --out {out}",
    }
    (out / READER_CONFIG_FILE).write_text(json.dumps(reader_json, indent=1) + "\n")
    write_checksums(out)
    return reader_json
