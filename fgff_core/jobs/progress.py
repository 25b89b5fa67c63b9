"""Progress of a run for display: fraction done, current layer and epoch, elapsed time and ETA.

Computed from a run row (``RunStore.run``) and its metrics DataFrame, so the CLI, the app and
scripts agree on what "45 % done, layer 2 epoch 30, 3.0 s left" means (numbers written by ``fgff_core.format``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from ..format import duration, percent
from ..vocabulary import RunStatus, is_active


@dataclass(frozen=True)
class Progress:
    status: str
    done: int  # epoch events finished (one per layer per epoch)
    total: int  # epoch events expected; 0 when not known yet
    layer: int | None  # 1-based, for display
    epoch: int | None  # 1-based, within the layer for greedy training
    elapsed_s: float | None
    eta_s: float | None
    waiting: str | None = None  # why a queued run has not started (e.g. a full disk)

    @property
    def fraction(self) -> float:
        if self.status == RunStatus.DONE:
            return 1.0
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def active(self) -> bool:
        return is_active(self.status)

    def text(self) -> str:
        parts = [self.status]
        if self.total:
            parts.append(f"{self.done}/{self.total} epochs ({percent(self.fraction, 0)})")
        if self.layer is not None and self.active:
            parts.append(f"layer {self.layer}, epoch {self.epoch}")
        if self.elapsed_s is not None:
            parts.append(f"elapsed {duration(self.elapsed_s)}")
        if self.eta_s is not None and self.active:
            parts.append(f"ETA {duration(self.eta_s)}")
        if self.waiting and self.status == RunStatus.QUEUED:
            parts.append(f"waiting: {self.waiting}")
        return " · ".join(parts)


def _parse_time(value: Any) -> datetime | None:
    if not value or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _int_or_zero(value: Any) -> int:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0
    return 0 if math.isnan(value) else int(value)


def run_progress(run: dict, metrics: pd.DataFrame | None, now: datetime | None = None) -> Progress:
    """Where ``run`` stands; the ETA assumes the remaining epochs take as long as the finished ones took."""
    status = str(run.get("status", RunStatus.QUEUED))
    total = _int_or_zero(run.get("epoch_events"))
    done = _int_or_zero(run.get("epochs_done"))
    layer = epoch = None
    if metrics is not None and not metrics.empty:
        done = max(done, len(metrics))
        last = metrics.sort_values("step").iloc[-1]
        layer, epoch = int(last["layer"]) + 1, int(last["epoch"])
    now = now or datetime.now(timezone.utc)
    started, finished = _parse_time(run.get("started_at")), _parse_time(run.get("finished_at"))
    elapsed = None
    if started is not None:
        elapsed = max(0.0, ((finished or now) - started).total_seconds())
    eta = None
    if done and total and is_active(status):
        remaining = max(0, total - done)
        if metrics is not None and "seconds" in metrics and metrics["seconds"].notna().any():
            # Measured epoch times: the worker's start-up (spawn, imports, data) does not skew the rate.
            eta = float(metrics["seconds"].mean()) * remaining
        elif elapsed is not None:
            eta = elapsed / done * remaining
    return Progress(status, done, total, layer, epoch, elapsed, eta, run.get("wait_reason") or None)
