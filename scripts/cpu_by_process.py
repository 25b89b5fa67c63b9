"""CPU seconds per kind of process (Streamlit server, training workers, Chromium, ...) over a stretch of time.

Linux only (reads /proc). A background thread samples every process's user+system time once a second, so a
process that starts and ends between two samples is missed, and one that ends is counted up to its last
sample. Used by ``demo_timing.py --cpu`` to see who takes the CPU from the training during a browser demo.
"""

from __future__ import annotations

import collections
import os
import threading
import time

GROUPS = (("streamlit", "streamlit server"), ("spawn_main", "training workers"), ("chrom", "chromium"),
          ("node", "playwright driver"))


def _group(cmdline: str) -> str:
    return next((name for needle, name in GROUPS if needle in cmdline), "other")


def _sample() -> dict[tuple[str, str], tuple[str, float]]:
    """(pid, start time) -> (group, CPU seconds so far) for every process that can be read."""
    tick = os.sysconf("SC_CLK_TCK")
    seen = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline") as f:
                cmdline = f.read().replace("\0", " ")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        seen[(pid, fields[19])] = (_group(cmdline or stat), (int(fields[11]) + int(fields[12])) / tick)
    return seen


class CpuByProcess:
    """``with CpuByProcess() as cpu: ...`` then ``cpu.seconds``: CPU seconds per group over the block."""

    def __init__(self, every: float = 1.0) -> None:
        self.every, self.seconds, self.wall = every, {}, 0.0

    def __enter__(self) -> CpuByProcess:
        self._start, self._last = _sample(), {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._last.update(_sample())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._last.update(_sample())
        self.wall = time.perf_counter() - self._t0
        totals: collections.Counter[str] = collections.Counter()
        for key, (group, cpu) in self._last.items():
            totals[group] += cpu - self._start.get(key, (group, 0.0))[1]
        self.seconds = {group: round(cpu, 1) for group, cpu in sorted(totals.items())}
