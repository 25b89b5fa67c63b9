"""How long a run (or several, one after another) will train: its counted work times this server's speed.

The one estimate of the Train, Compare and Learn pages (``estimate_training``); ``launch.over_time_limit``
decides from it whether a page asks before starting.

**Work**: ``work.run_work`` counts a config's multiply-adds (layer sizes, the registry's dataset sizes, the
label passes of FF/FGFF training and scoring, the schedule) and its fixed-cost calls (layer steps: one per
layer-epoch full batch, ``ceil(N / batch_size)`` with minibatches; prediction chunks).

**Speed**: ``REFERENCE_SPEED`` (multiply-adds per second and seconds per call, per batch mode) was fitted to
runs timed on the idle 2-core development CPU (``python -m benchmarks.estimate``; benchmarks/RESULTS.md,
"Training-time estimate"). This server's own finished runs are the better calibration, so when it has some
on the same kind of device, the estimate is the reference figure times the median of *measured / reference
estimate* over its newest ``SPEED_SAMPLE_RUNS`` of them (those of the same batch mode, full batch or
minibatches, when there are any; none shorter than ``MIN_CALIBRATION_S``): a loaded or a faster machine shows
in that factor. Because the factor is taken against counted work, runs whose time is mostly fixed costs no
longer make a large run look 10-350x longer, as the old *sample x weight products per second* average did. No
calibration runs in the web server: its speed is not the workers'.

**Range**: from the lowest to the highest factor of those runs, widened by ``MODEL_LOW`` and ``MODEL_HIGH``,
the model's own error on the benchmark's configs. The expected figure (the median factor) is what the ask-first
rule compares with the server's limit.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config.presets import PRESETS, preset_of
from ..config.schema import RunConfig
from ..format import duration
from ..vocabulary import RunStatus, has_goodness
from .work import RunWork, run_work

if TYPE_CHECKING:  # only a type here: the GPU tables script (reproduce.gpu) estimates without pandas
    import pandas as pd


class Speed(NamedTuple):
    """A device's training speed: multiply-adds per second, and the fixed cost of a call in seconds."""

    macs_per_s: float
    call_s: float

    def seconds(self, work: RunWork) -> float:
        return work.macs / self.macs_per_s + work.calls * self.call_s


# Fitted on the idle development CPU, 2 threads (benchmarks/RESULTS.md, "Training-time estimate"), per batch mode:
# full batch multiplies large matrices at about twice the rate minibatches do. No GPU was available to time: a
# CUDA server uses the CPU figures until its first finished run calibrates them.
REFERENCE_SPEED = {("cpu", True): Speed(6.7e10, 1.0e-3), ("cpu", False): Speed(4.7e10, 1.0e-3)}
# The benchmark's configs measured from 0.75x to 1.9x the reference estimate (minibatches of 100 are slower per
# multiply-add than the model's one minibatch rate): the range is the estimate times these.
MODEL_LOW, MODEL_HIGH = 0.6, 2.0
SPEED_SAMPLE_RUNS = 10  # the newest finished runs whose speed calibrates the estimate
SCAN_RUNS = 50  # the newest finished runs searched for them (a page's cost stays flat as the store grows)
# Runs shorter than this at the reference speed are not timed as calibration: their seconds are the noise of a
# process (a page's tiny test runs), not a speed.
MIN_CALIBRATION_S = 0.5


class TrainingEstimate(NamedTuple):
    """Seconds of training: the expected figure and a range around it; ``measured_runs`` finished runs of this
    server calibrated it (0: the reference CPU's speed). ``preset_seconds``: the longest training time measured
    for the preset(s) these configs are, when every one of them is a preset with a measured time."""

    seconds: float
    low: float
    high: float
    measured_runs: int = 0
    preset_seconds: float | None = None

    def text(self) -> str:
        """``"about 50 s to 2 min 00 s of training (this server's speed on its last 3 finished runs)"``."""
        where = (f"this server's speed on its last {self.measured_runs} finished run"
                 f"{'s' if self.measured_runs != 1 else ''}" if self.measured_runs else "on an idle CPU")
        span = duration(self.low) if duration(self.low) == duration(self.high) else \
            f"{duration(self.low)} to {duration(self.high)}"
        measured = f"; measured for this preset: up to {duration(self.preset_seconds)}" \
            if self.preset_seconds is not None else ""
        return f"about {span} of training ({where}{measured})"


class ServerSpeed(NamedTuple):
    """How this server's finished runs compare with the reference estimate: measured / estimated."""

    factor: float  # the median ratio
    lowest: float
    highest: float
    runs: int

    @staticmethod
    def reference() -> ServerSpeed:
        return ServerSpeed(1.0, 1.0, 1.0, 0)


def device_kind(device: Any) -> str:
    """``"cuda"`` for a config's or a run's CUDA device (``cuda``, ``cuda:1``, ``cuda (GPU 0)``), else ``"cpu"``."""
    return "cuda" if str(device or "").startswith("cuda") else "cpu"


def reference_speed(kind: str, full_batch: bool) -> Speed:
    """The reference speed of a device kind and batch mode (a kind not timed: the CPU's)."""
    return REFERENCE_SPEED.get((kind, full_batch), REFERENCE_SPEED[("cpu", full_batch)])


def server_speed(runs: pd.DataFrame | list[dict[str, Any]], kind: str, full_batch: bool) -> ServerSpeed:
    """This server's factor on ``kind`` devices, from its newest finished runs there (``SPEED_SAMPLE_RUNS``),
    those of the same batch mode when it has any. ``runs``: the store's run table, or ``finished_runs`` of it."""
    rows = [r for r in (runs if isinstance(runs, list) else finished_runs(runs))
            if reference_speed(kind, r["work"].full_batch).seconds(r["work"]) >= MIN_CALIBRATION_S]
    same_device = [r for r in rows if device_kind(r.get("device")) == kind]
    same_mode = [r for r in same_device if r["work"].full_batch == full_batch]
    sample = (same_mode or same_device)[:SPEED_SAMPLE_RUNS]
    ratios = [r["seconds"] / reference_speed(kind, r["work"].full_batch).seconds(r["work"]) for r in sample]
    if not ratios:
        return ServerSpeed.reference()
    return ServerSpeed(statistics.median(ratios), min(ratios), max(ratios), len(ratios))


def finished_runs(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """The newest ``SCAN_RUNS`` done runs (newest first) with their measured training wall time (``seconds``)
    and counted work (``work``)."""
    if runs is None or runs.empty or "status" not in runs:
        return []
    out = []
    for row in runs[runs["status"] == RunStatus.DONE].head(SCAN_RUNS).to_dict("records"):
        seconds = _positive(row.get("wall_seconds")) or _positive(row.get("train_seconds"))
        if seconds is None or not row.get("config"):
            continue
        try:
            work = _stored_work(json.dumps(row["config"], sort_keys=True, default=str))
        except (TypeError, ValueError, KeyError):  # a config from an older version of the schema
            continue
        out.append({**row, "seconds": seconds, "work": work})
    return out


@functools.lru_cache(maxsize=512)
def _stored_work(config_json: str) -> RunWork:
    """``run_work`` of a stored run's config, kept: pages estimate on every rerun from the same runs."""
    return run_work(json.loads(config_json))


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def estimate_range(work: RunWork, speed: Speed, factor: float, lowest: float | None = None,
                   highest: float | None = None) -> tuple[float, float, float]:
    """(low, expected, high) seconds of ``work`` at ``speed`` times ``factor`` (the range: ``lowest`` to
    ``highest`` factor, default ``factor``, widened by ``MODEL_LOW`` and ``MODEL_HIGH``)."""
    base = speed.seconds(work)
    low = base * (factor if lowest is None else lowest) * MODEL_LOW
    high = base * (factor if highest is None else highest) * MODEL_HIGH
    return low, base * factor, high


def estimate_training(configs: RunConfig | Mapping[str, Any] | Sequence[RunConfig | Mapping[str, Any]],
                      runs: pd.DataFrame) -> TrainingEstimate:
    """Seconds of training of ``configs`` (one config, or several trained one after another) on this server,
    with the store's run table ``runs`` (newest first) as its calibration (module docstring)."""
    cfgs = [RunConfig.coerce(c) for c in ([configs] if isinstance(configs, (RunConfig, Mapping)) else configs)]
    if not cfgs:
        raise ValueError("configs: give at least one config to estimate")
    finished = finished_runs(runs)
    server_device = device_kind(finished[0].get("device")) if finished else "cpu"  # where ``auto`` configs run
    low = point = high = 0.0
    measured = 0
    for cfg in cfgs:
        work = run_work(cfg)
        kind = device_kind(cfg.device) if cfg.device != "auto" else server_device
        speed = server_speed(finished, kind, work.full_batch)
        lo, mid, hi = estimate_range(work, reference_speed(kind, work.full_batch), speed.factor, speed.lowest,
                                     speed.highest)
        low, point, high = low + lo, point + mid, high + hi
        measured = max(measured, speed.runs)
    budgets = [preset_budget(cfg) for cfg in cfgs]
    preset_seconds = sum(budgets) if all(b is not None for b in budgets) else None
    return TrainingEstimate(point, low, high, measured, preset_seconds)


def preset_budget(config: RunConfig) -> float | None:
    """The longest training time measured for the preset that ``config`` is (seed and the fields that change
    nothing learned aside), when it is an FF/FGFF preset with a measured time; else None."""
    if not has_goodness(config.algo):
        return None
    name = preset_of(config)
    measured = PRESETS[name].measured_seconds if name else None
    return float(measured[1]) if measured else None
