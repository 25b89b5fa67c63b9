"""How much memory a run may use: the memory available now where it trains, and a server's cap.

``memory_limit(device)`` is ``USABLE_FRACTION`` of the memory available now (Linux's MemAvailable, else
psutil's, else the free pages; a CUDA device: the GPU's free memory), and at most ``$FGFF_MEMORY_LIMIT`` (bytes,
or with a unit: ``8G``, ``512M``). A container's own memory limit is not read: a server in one sets the
variable to it. No torch at import; only the device ``auto`` and a GPU without nvidia-smi ask it.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from collections.abc import Mapping
from typing import NamedTuple

from ..format import size

MEMORY_LIMIT_ENV = "FGFF_MEMORY_LIMIT"
# The safety margin: a run may use at most this share of the memory available when it is checked, leaving the
# rest to the OS, the app and what other processes allocate meanwhile.
USABLE_FRACTION = 0.9


class MemoryBudget(NamedTuple):
    """The most a run may use, and where that figure comes from, for the message."""

    bytes: int
    source: str  # "90 % of this machine's available memory, 18.4 GiB", "$FGFF_MEMORY_LIMIT"


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str, name: str = MEMORY_LIMIT_ENV) -> int:
    """Bytes from ``"8G"``, ``"512 MiB"``, ``"1.5g"`` or ``"2000000000"``: K, M, G, T are powers of 1024, with
    or without a following B or iB. ``ValueError`` naming ``name`` for anything else or below 1 MiB."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(text), re.IGNORECASE)
    value = float(match[1]) * _UNITS[match[2].upper()] if match else math.nan
    if not (value >= _UNITS["M"] and math.isfinite(value)):
        raise ValueError(f"{name}: expected a size of at least 1 MiB, as bytes or with a unit (8G, 512M, 1.5GiB), "
                         f"got {str(text)[:100]!r}")
    return int(value)


def memory_cap(environ: Mapping[str, str] | None = None) -> int | None:
    """``$FGFF_MEMORY_LIMIT`` in bytes, or None when unset or empty."""
    raw = (os.environ if environ is None else environ).get(MEMORY_LIMIT_ENV, "").strip()
    return parse_size(raw) if raw else None


def device_of(device: str) -> tuple[str, int]:
    """(device type, CUDA index) that ``device`` resolves to (``auto`` asks torch)."""
    if device == "cpu" or device == "mps":
        return device, 0
    if device.startswith("cuda"):
        return "cuda", int(device.partition(":")[2] or 0)
    from .device import resolve_device

    resolved = resolve_device(device)
    return resolved.type, resolved.index or 0


def machine_available_bytes() -> int | None:
    """The RAM the machine can give now: Linux's MemAvailable, else psutil's, else free pages; None if unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, AttributeError, OSError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gpu_free_bytes(index: int) -> int | None:
    """Free memory of CUDA device ``index`` from nvidia-smi, which opens no CUDA context (torch's
    ``mem_get_info`` would hold one in the asking process, a server's too); else the device's total memory."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits",
                              "-i", str(index)], capture_output=True, text=True, timeout=10, check=True).stdout
        return int(out.split()[0]) << 20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        pass
    try:
        import torch

        return int(torch.cuda.get_device_properties(index).total_memory)
    except (ImportError, RuntimeError, AssertionError, AttributeError):
        return None


def memory_limit(device: str = "cpu", environ: Mapping[str, str] | None = None) -> MemoryBudget | None:
    """The most a run on ``device`` may use: ``USABLE_FRACTION`` of the memory available there now (the GPU's
    for CUDA, else the machine's), and at most ``$FGFF_MEMORY_LIMIT``; None when neither is known."""
    cap = memory_cap(environ)
    kind, index = device_of(device)
    free = gpu_free_bytes(index) if kind == "cuda" else machine_available_bytes()
    where = f"GPU cuda:{index}'s free memory" if kind == "cuda" else "this machine's available memory"
    budgets = [MemoryBudget(cap, f"${MEMORY_LIMIT_ENV}")] if cap is not None else []
    if free is not None:
        budgets.append(MemoryBudget(int(free * USABLE_FRACTION),
                                    f"{round(100 * USABLE_FRACTION)} % of {where}, {size(free)}"))
    return min(budgets, default=None)
