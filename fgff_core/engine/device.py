"""Where a run computes and in what precision: the device, and the ``precision`` speed modes.

``fp32`` is exact. ``tf32`` lets CUDA matmuls use TensorFloat-32 for the run only (``matmul_precision``).
``bf16`` runs the FF layers' matrix products in bfloat16 (``goodness.py``, ``mm_dtype``) and the
backprop baseline under autocast (``autocast``); weights and optimizer state stay fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA if present, then Apple MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} was asked for but CUDA is not available here; use auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device: 'mps' was asked for but Apple MPS is not available here; use auto or cpu")
    return torch.device(name)


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """With ``tf32``: TensorFloat-32 CUDA matmuls inside the block, the previous setting after it."""
    if precision != "tf32":
        yield
        return
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """With ``bf16``: bfloat16 autocast on ``device``; otherwise nothing changes."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
