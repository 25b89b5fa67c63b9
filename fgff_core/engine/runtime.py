"""Process-wide settings for the processes that train: the CLI, the job workers, the benchmarks.

Kept out of ``Trainer`` on purpose: they change the whole process, so the entry points that own
their process call them, and a library user opts in (``fgff_core.retain_freed_memory()``).
"""

from __future__ import annotations

import ctypes
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_THRESHOLD_BYTES = 2**31 - 1  # the largest value mallopt takes: keep up to 2 GiB of free heap


def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the OS. True if applied.

    Why: a full-batch epoch allocates and frees the same large tensors every step, and glibc unmaps
    every freed block over 32 MiB, so each new one is page-faulted and zeroed again (measured in
    benchmarks/RESULTS.md, "How"). This is what PyTorch's CPU tuning guide gets from jemalloc or
    tcmalloc, done with glibc's own ``mallopt``. The cost: the process keeps its peak memory until it
    exits, which is right for a process that trains and ends, not for a long-lived server.

    No effect (returns False) off Linux or without glibc (e.g. musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES) == 1
