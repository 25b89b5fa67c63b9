"""Save and load trained models as safetensors: tensors and JSON metadata, never pickle.

A checkpoint from someone else cannot run code when loaded: safetensors holds raw tensors and a
string header only. Anything else (a pickled ``torch.save`` file, say) is refused. Its metadata is
not trusted either: the config is checked with ``RunConfig``'s rules and every tensor's shape
against that config, from the file's header, before a tensor is read or a model is built.
"""

from __future__ import annotations

import errno
import json
import re
import tempfile
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as serialise

from .._files import atomic_write
from ..config.schema import MAX_LAYERS, RunConfig, parse_field
from ..config.values import short_repr
from ..vocabulary import has_goodness, trains_locally
from .model import BPNet, FFNet, MFNet, build_network

FORMAT = "fgff-checkpoint/1"
MAX_INPUT_DIM = 1 << 24  # 16M inputs: far above any image dataset here, far below an absurd claim
MAX_CLASSES = 1000
MAX_TENSORS = 3 * MAX_LAYERS + 2  # FF: weight, bias, s_raw per layer; BP: + the head
MAX_METADATA_CHARS = 64 * 1024
# Checkpoints written before FFLayer's raw parameter was renamed hold it as layers.{i}.significance
# (the same tensor: the parameter, which is s only when significance_param is unconstrained).
_OLD_RAW_NAME = re.compile(r"(layers\.\d+)\.significance")
_RAW_NAME = "s_raw"


class CheckpointError(ValueError):
    """The file is not a checkpoint this library wrote (or it is damaged)."""


class CheckpointSaveError(OSError):
    """A checkpoint cannot be written where it was asked for (the message says why, in one line)."""


# -- saving ---------------------------------------------------------------------------------------

def check_save_target(path: str | Path) -> Path:
    """Check, before any training, that a checkpoint can be written at ``path``.

    The folder must exist (it is not created silently) and be writable, and ``path`` must not be a
    folder. An existing file is replaced when the new one is complete. Raises ``CheckpointSaveError``.
    """
    path = Path(path).expanduser()
    parent = path.parent
    if path.is_dir():
        raise CheckpointSaveError(f"cannot save the model to {path}: it is a folder; give a file name "
                                  "such as model.safetensors")
    if path.exists() and not path.is_file():
        raise CheckpointSaveError(f"cannot save the model to {path}: it exists and is not a regular file")
    if not parent.exists():
        raise CheckpointSaveError(f"cannot save the model to {path}: the folder {parent} does not exist "
                                  "(create it first)")
    if not parent.is_dir():
        raise CheckpointSaveError(f"cannot save the model to {path}: {parent} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise CheckpointSaveError(f"cannot save the model to {path}: {_reason(exc, parent)}") from None
    return path


def save_checkpoint(path: str | Path, model: FFNet | MFNet | BPNet, config: RunConfig) -> Path:
    """Write ``model``'s weights (and significance factors) with its config to ``path``, atomically.

    The file appears under its name only when complete; a failure (full disk, read-only folder)
    leaves no temporary file and raises ``CheckpointSaveError``. The folder must exist.
    """
    path = check_save_target(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "config": config.to_json(),
        "input_dim": str(model.input_dim),
        "n_classes": str(model.n_classes),
        "label_value": str(getattr(model, "label_value", "")),
    }
    payload = serialise(tensors, metadata=meta)
    try:
        atomic_write(path, payload)  # a crash never leaves half a checkpoint under the real name
    except OSError as exc:
        raise CheckpointSaveError(f"cannot save the model to {path}: {_reason(exc, path.parent)}") from None
    return path


def _reason(exc: OSError, folder: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return f"no space left on device in {folder}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"the folder {folder} is not writable"
    return exc.strerror or str(exc)


# -- loading --------------------------------------------------------------------------------------

def _read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """The metadata and the tensor shapes, from the header only (no tensor is read)."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist" if not path.exists() else "is not a regular file"
        raise CheckpointError(f"{path.name or path} {what}; a checkpoint is a .safetensors file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
            names = list(handle.keys())
            if len(names) > MAX_TENSORS:
                raise CheckpointError(f"{path.name} holds {len(names)} tensors; a checkpoint of at most "
                                      f"{MAX_LAYERS} layers holds at most {MAX_TENSORS}")
            shapes = {_current_name(k): tuple(handle.get_slice(k).get_shape()) for k in names}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name} is not a safetensors checkpoint ({exc}); pickled files are refused "
                              "because loading them can run arbitrary code") from None
    if len(shapes) != len(names):
        raise CheckpointError(f"{path.name} holds the layers' factor parameter twice (under its old name "
                              f"'significance' and its new name '{_RAW_NAME}')")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is a safetensors file but not an FGFF Explorer checkpoint "
                              f"(format {short_repr(meta.get('format'))}, expected {FORMAT!r})")
    if sum(len(k) + len(v) for k, v in meta.items()) > MAX_METADATA_CHARS:
        raise CheckpointError(f"{path.name} has more than {MAX_METADATA_CHARS} characters of metadata; "
                              "a checkpoint's config is a few hundred")
    return meta, shapes


def _current_name(name: str) -> str:
    """A tensor's name in today's models: ``layers.{i}.significance`` of older checkpoints is ``layers.{i}.s_raw``."""
    old = _OLD_RAW_NAME.fullmatch(name)
    return f"{old[1]}.{_RAW_NAME}" if old else name


def _int_meta(meta: dict[str, str], key: str, lo: int, hi: int) -> int:
    text = meta.get(key)
    if not isinstance(text, str) or not text.strip().isascii() or not text.strip().isdigit() \
            or not lo <= int(text) <= hi:
        raise ValueError(f"{key} must be an integer in [{lo}, {hi}], got {text!r}")
    return int(text)


def _expected_shapes(config: RunConfig, input_dim: int, n_classes: int) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes the config implies, computed without building the model."""
    sizes = (input_dim, *config.layers)
    out = {}
    if has_goodness(config.algo):  # FF, FGFF: W, b and s per layer
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            out[f"layers.{i}.{_RAW_NAME}"], out[f"layers.{i}.linear.weight"] = (b,), (b, a)
            out[f"layers.{i}.linear.bias"] = (b,)
        return out
    if trains_locally(config.algo):  # MF: W, b and the projection M per layer
        return MFNet.state_shapes(input_dim, config.layers, n_classes)
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):  # BP: the hidden layers and one head
        out[f"hidden.{i}.weight"], out[f"hidden.{i}.bias"] = (b, a), (b,)
    out["head.weight"], out["head.bias"] = (n_classes, sizes[-1]), (n_classes,)
    return out


class _Checked(NamedTuple):
    """Metadata that passed every check: safe to build a model of this size."""

    config: RunConfig
    input_dim: int
    n_classes: int
    label_value: float


def _check_metadata(path: Path, meta: dict[str, str], shapes: dict[str, tuple[int, ...]]) -> _Checked:
    try:
        config = RunConfig.from_json(meta.get("config", ""))
        input_dim = _int_meta(meta, "input_dim", 1, MAX_INPUT_DIM)
        n_classes = _int_meta(meta, "n_classes", 2, MAX_CLASSES)
        label_value = 0.0
        if has_goodness(config.algo):  # the label is written into the input
            label_value = parse_field("label_value", meta.get("label_value"))
            if not isinstance(label_value, float):
                raise ValueError(f"label_value must be a number, got {meta.get('label_value')!r}")
            if input_dim < n_classes:
                raise ValueError(f"input_dim {input_dim} has no room for the {n_classes} label inputs")
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path.name} has damaged metadata: {exc}") from None
    expected = _expected_shapes(config, input_dim, n_classes)
    if set(shapes) != set(expected):
        missing, extra = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
        raise CheckpointError(f"{path.name}: its tensors do not match its config (missing {missing[:4]}, "
                              f"unexpected {extra[:4]})")
    for name, shape in expected.items():
        if shapes[name] != shape:
            raise CheckpointError(f"{path.name}: tensor {name} has shape {list(shapes[name])} but its config "
                                  f"({config.algo}, layers {list(config.layers)}, input_dim {input_dim}) "
                                  f"implies {list(shape)}")
    return _Checked(config, input_dim, n_classes, label_value)


class _Contents(NamedTuple):
    """A checkpoint that passed every check: its raw metadata, what it was checked as, its tensors."""

    meta: dict[str, str]
    checked: _Checked
    tensors: dict[str, torch.Tensor]


def _read_checked(path: Path) -> _Contents:
    """Every check a checkpoint goes through, header first, then the tensors' values: the one
    function behind ``load_checkpoint`` and ``checkpoint_info``."""
    meta, shapes = _read_header(path)
    checked = _check_metadata(path, meta, shapes)
    try:
        tensors = {_current_name(k): v for k, v in load_file(str(path)).items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name}: its tensors cannot be read ({exc})") from None
    for name, tensor in tensors.items():
        if not tensor.is_floating_point():
            raise CheckpointError(f"{path.name}: tensor {name} is not floating point ({tensor.dtype})")
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path.name}: tensor {name} holds NaN or infinite values (a diverged or "
                                  "damaged model); there is nothing to inspect in it")
    return _Contents(meta, checked, tensors)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[FFNet | MFNet | BPNet, RunConfig]:
    """Read a checkpoint written by ``save_checkpoint``; refuse anything else with ``CheckpointError``.

    Every check runs on the header first, so a file claiming a huge model is refused at once. The
    messages name the file, not its folder (an upload's temporary folder is the server's business).
    """
    path = Path(path)
    contents = _read_checked(path)
    checked, config = contents.checked, contents.checked.config
    model = build_network(config, checked.input_dim, checked.n_classes, checked.label_value)
    model.load_state_dict(contents.tensors)  # names and shapes were checked above
    return model.to(device), config


def checkpoint_info(path: str | Path) -> dict:
    """The metadata of a checkpoint (config as a dict), checked exactly as ``load_checkpoint`` checks
    it (the tensors' values included); no model is built. Raises ``CheckpointError`` when a load would."""
    path = Path(path)
    contents = _read_checked(path)
    return {**contents.meta, "config": json.loads(contents.checked.config.to_json())}
