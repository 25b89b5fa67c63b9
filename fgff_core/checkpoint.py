"""Save and load trained models as safetensors: tensors and JSON metadata, never pickle.

A checkpoint from someone else cannot run code when loaded: safetensors holds raw tensors and a
string header only. Anything else (a pickled ``torch.save`` file, say) is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import RunConfig
from .model import BPNet, FFNet

FORMAT = "fgff-checkpoint/1"


class CheckpointError(ValueError):
    """The file is not a checkpoint this library wrote (or it is damaged)."""


def save_checkpoint(path: str | Path, model: FFNet | BPNet, config: RunConfig) -> Path:
    """Write ``model``'s weights (and significance factors) with its config to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "config": config.to_json(),
        "input_dim": str(model.input_dim),
        "n_classes": str(model.n_classes),
        "label_value": str(getattr(model, "label_value", "")),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)  # atomic: a crash never leaves half a checkpoint under the real name
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[FFNet | BPNet, RunConfig]:
    """Read a checkpoint written by ``save_checkpoint``; refuse anything else."""
    path = Path(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CheckpointError(f"{path} is not a safetensors checkpoint ({exc}); pickled files are refused "
                              "because loading them can run arbitrary code") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not an FGFF Explorer checkpoint "
                              f"(format {meta.get('format')!r}, expected {FORMAT!r})")
    try:
        config = RunConfig.from_json(meta["config"])
        input_dim, n_classes = int(meta["input_dim"]), int(meta["n_classes"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path} has damaged metadata: {exc}") from None
    if config.algo == "bp":
        model: FFNet | BPNet = BPNet(input_dim, config.layers, n_classes)
    else:
        model = FFNet(input_dim, config.layers, n_classes, float(meta["label_value"]), config.factorize,
                      config.significance_param)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the stored config: {exc}") from None
    return model.to(device), config


def checkpoint_info(path: str | Path) -> dict:
    """The metadata of a checkpoint (config as a dict) without loading the weights."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is not a safetensors checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an FGFF Explorer checkpoint")
    meta["config"] = json.loads(meta["config"])
    return meta
