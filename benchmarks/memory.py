"""How close the memory estimate (``fgff_core/engine/memory.py``) comes to what runs really use.

    python -m benchmarks.memory                          # the digits configs, prints a table
    python -m benchmarks.memory --write                  # and writes benchmarks/MEMORY.md
    python -m benchmarks.memory --data-dir ../shared/datasets --write   # with the MNIST configs too

Each config trains in its own process, ``python -m fgff_core train --device cpu`` (the CLI, with its memory
check and its ``retain_freed_memory``), and its peak resident set size is read from the operating system
(``wait4``'s ``ru_maxrss``) when it exits. The estimate counts that process's own runtime (torch and
scikit-learn imported, ``RUNTIME_BYTES``); the baseline row, a 4-unit layer for one epoch, shows what the
runtime really is on this machine. The estimate should be an upper bound within a factor of about 2: the
table gives measured / estimate, and how many times their live size the temporaries took (the measured peak
less the baseline and the persistent parts, over the estimate's live training and evaluation temporaries),
which ``ALLOCATOR_SLACK`` must stay above. Not a test: the figures depend on the machine, torch and glibc.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from fgff_core.config import RunConfig
from fgff_core.engine.memory import ALLOCATOR_SLACK, RUNTIME_BYTES, MemoryEstimate, estimate_for_config
from fgff_core.engine.memory_budget import machine_available_bytes
from fgff_core.format import size

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The calibration configs: widths from the quick demo to the 65536, minibatches, both schedules, the
# plain first layer, BP, and a readout. Few epochs: the peak is reached in the first epoch of each layer.
SHORT = {"epochs": 2, "eval_every": 1}
DIGITS: list[dict[str, Any]] = [
    {"layers": [4], "epochs": 1, "eval_every": 0},  # the baseline: the process and its runtime
    {"layers": [100, 100], **SHORT},
    {"layers": [2000], **SHORT},
    {"layers": [8000], **SHORT},
    {"layers": [4000, 4000], **SHORT},
    {"layers": [16000], **SHORT},
    {"layers": [8000], "batch_size": 100, **SHORT},
    {"layers": [4000, 4000], "schedule": "simultaneous", **SHORT},
    {"layers": [8000], "factorize": False, **SHORT},
    {"layers": [2000, 2000], "algo": "bp", **SHORT},
    {"layers": [2000, 2000], "readout_epochs": 2, **SHORT},
    {"layers": [32768], "epochs": 1, "eval_every": 1},
    {"layers": [65536], "epochs": 1, "eval_every": 1},  # the run
]
MNIST: list[dict[str, Any]] = [
    {"dataset": "mnist", "layers": [1000, 1000], "batch_size": 1000, "train_subset": 30000, "epochs": 1,
     "eval_every": 1},
    {"dataset": "mnist", "layers": [2000], "epochs": 1, "eval_every": 1},
]


class Row(NamedTuple):
    config: dict[str, Any]
    estimate: MemoryEstimate
    peaks: list[int]  # peak RSS of each run, bytes

    @property
    def measured(self) -> int:
        return max(self.peaks)


def _peak_rss(config: dict[str, Any], data_dir: str | None) -> int:
    """Peak RSS in bytes of ``python -m fgff_core train`` with ``config`` on the CPU."""
    argv = [sys.executable, "-m", "fgff_core", "train", "--device", "cpu", "--quiet", "--json"]
    for key, value in {**config, **({"data_dir": data_dir} if data_dir else {})}.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        else:
            argv += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    env = {k: v for k, v in os.environ.items() if k != "FGFF_MEMORY_LIMIT"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage (Popen.wait would reap it unread)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{config} failed: {err.read().strip()[-500:]}")
        json.loads(out.read().strip().splitlines()[-1])  # it finished and reported
    return usage.ru_maxrss * 1024  # KiB on Linux


def measure(configs: list[dict[str, Any]], data_dir: str | None, repeat: int = 2) -> list[Row]:
    """Each config's estimate and its highest peak over ``repeat`` runs (the peak varies from run to run with
    the order in which two threads free their blocks)."""
    rows = []
    for config in configs:
        estimate = estimate_for_config(RunConfig.from_dict({**config, "device": "cpu"}), "cpu")
        row = Row(config, estimate, [_peak_rss(config, data_dir) for _ in range(repeat)])
        rows.append(row)
        print(f"{_label(config):55s} estimate {size(estimate.total):>9s}  measured {size(row.measured):>9s}  "
              f"ratio {row.measured / estimate.total:.2f}", flush=True)
    return rows


def _label(config: dict[str, Any]) -> str:
    shown = {k: v for k, v in config.items() if k not in SHORT}
    layers = "x".join(map(str, shown.pop("layers")))
    dataset = shown.pop("dataset", "digits")
    rest = " ".join(f"{k}={v}" for k, v in shown.items())
    return f"{dataset} {layers} {rest}".strip()


def table(rows: list[Row]) -> str:
    """Markdown: the estimate against the measured peak, and the temporaries' measured size over their live one."""
    baseline = rows[0].measured
    lines = ["| config | estimate | measured peak RSS (each run) | measured / estimate "
             "| temporaries: measured / live |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        e = row.estimate
        persistent = e.weights + e.gradients + e.optimizer + e.significance + e.data
        live = e.training + e.evaluation
        slack = f"{(row.measured - baseline - persistent) / live:.2f}" if row is not rows[0] else "– (the baseline)"
        peaks = " / ".join(size(p) for p in row.peaks)
        lines.append(f"| {_label(row.config)} | {size(e.total)} | {size(row.measured)} ({peaks}) | "
                     f"{row.measured / e.total:.2f} | {slack} |")
    return "\n".join(lines)


def report(rows: list[Row], repeat: int) -> str:
    import torch

    ratios = [row.measured / row.estimate.total for row in rows]
    return f"""# Memory: the estimate against real peaks

Written by `python -m benchmarks.memory --data-dir ../shared/datasets --write`
({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC) on {os.cpu_count()} CPU cores
({platform.processor() or platform.machine()}), {size(machine_available_bytes())} of memory available when it
ran, Python {platform.python_version()}, torch {torch.__version__}.

Each config trains in its own process through the CLI on the CPU (`python -m fgff_core train --device cpu`:
its memory check, and glibc keeping freed memory as `retain_freed_memory` sets it), {SHORT['epochs']} epochs
per layer with an evaluation every epoch unless the row says otherwise, {repeat} times; the peak resident set
size is the kernel's (`ru_maxrss`), the highest of the {repeat}. The estimate is
`fgff_core.engine.memory.estimate_for_config(config).total`. It counts the process itself (Python, torch,
scikit-learn) as {size(RUNTIME_BYTES)} (`RUNTIME_BYTES`); the first row, a 4-unit layer for one epoch, is what
it measures here. Estimates are the live sizes of the training and evaluation temporaries times
`ALLOCATOR_SLACK` = {ALLOCATOR_SLACK:g} (the heap holds more than is live), plus the weights, the optimizer and
the data (`fgff_core/engine/memory.py` says how each part is counted).

Measured / estimate: {min(ratios):.2f} to {max(ratios):.2f}. Above 1 the check would let through a run that
needs more than it says; far below 1 it refuses runs that would fit.

{table(rows)}

The last column is why the slack is there: glibc serves a new block from a freed one only when it fits, so the
temporaries take more than their live size, by a factor that also varies from run to run with the order in which
the two threads free their blocks (compare each run's peak). The check (README, "Memory") refuses a run whose
estimate is over 90 % of the memory available when it is submitted, or over `$FGFF_MEMORY_LIMIT`.
"""


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="a folder with the MNIST files: adds the MNIST configs")
    parser.add_argument("--repeat", type=int, default=2, help="runs per config, the highest peak counts")
    parser.add_argument("--write", action="store_true", help="write benchmarks/MEMORY.md")
    args = parser.parse_args(argv)
    configs = DIGITS + (MNIST if args.data_dir else [])
    rows = measure(configs, args.data_dir, args.repeat)
    text = report(rows, args.repeat)
    print(text)
    if args.write:
        (HERE / "MEMORY.md").write_text(text)
    return rows


if __name__ == "__main__":
    main()
