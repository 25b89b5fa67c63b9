"""``retain_freed_memory``: freed tensors stay in the process for reuse instead of going back to the OS."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from fgff_core.engine.runtime import retain_freed_memory

ROOT = Path(__file__).resolve().parents[1]

# Frees a 256 MiB tensor and prints by how much the resident set shrank (KiB).
PROBE = """
import sys, torch
from fgff_core.engine.runtime import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
def rss_kib():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
t = torch.ones(64 * 2**20)
before = rss_kib()
del t
print(before - rss_kib())
"""


def _freed_kib(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def _glibc_linux() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallopt")
    except OSError:
        return False


@pytest.mark.skipif(not _glibc_linux(), reason="the setting is glibc's (Linux)")
def test_freed_tensor_memory_is_kept_only_when_asked():
    assert _freed_kib("default") > 200 * 1024  # glibc unmaps a big block on free...
    assert _freed_kib("retain") < 16 * 1024  # ...and keeps it for reuse once asked to


def test_returns_whether_it_applied():
    assert retain_freed_memory() is _glibc_linux()
