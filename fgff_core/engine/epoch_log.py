"""The per-epoch bookkeeping of a training run: batch-mean statistics kept on the device and copied to
the host in batches (one sync per flush, not per step), and the clock that times layer-epochs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from .events import EpochMetrics
from .goodness import LayerOutputs


class EpochStats(NamedTuple):
    """One layer-epoch's batch means: the loss and the goodness with the factors ``s`` (eq. 3) and
    without them (eq. 2). The goodness fields are None for BP. Field names are ``EpochMetrics``'s."""

    loss: float
    g_pos: float | None = None
    g_neg: float | None = None
    g_pos_no_significance: float | None = None
    g_neg_no_significance: float | None = None


def stats_on_device(loss: Tensor, out: LayerOutputs) -> Tensor:
    """``EpochStats`` of one step as a device vector in field order: no host sync per step."""
    return torch.stack([loss.detach(), out.g_pos.detach().mean(), out.g_neg.detach().mean(),
                        out.g_pos_no_significance.mean(), out.g_neg_no_significance.mean()])


@dataclass
class PendingEpoch:
    """A layer-epoch whose metrics are still on the device (copied to the host in batches)."""

    layer: int
    epoch: int
    step: int
    stats: Tensor  # ``EpochStats`` in field order (BP: the loss only)
    s: Tensor | None  # the layer's significance factors after the epoch


class EpochClock:
    """Seconds per layer-epoch, measured between metric flushes; evaluation time is left out."""

    def __init__(self) -> None:
        self._since = time.perf_counter()

    def restart(self) -> None:
        self._since = time.perf_counter()

    def seconds_per(self, n_epochs: int) -> float:
        return (time.perf_counter() - self._since) / n_epochs


class EpochLog:
    """A run's layer-epochs: numbered as they are added (``step``), kept on the device until ``flush``
    copies them to the host in one transfer, and timed between flushes (``epoch_seconds``)."""

    def __init__(self) -> None:
        self._pending: list[PendingEpoch] = []
        self._steps = 0
        self._clock = EpochClock()
        self.epoch_seconds: list[float] = []  # one per flushed layer-epoch

    def __len__(self) -> int:
        """Layer-epochs waiting for the next flush."""
        return len(self._pending)

    def add(self, layer: int, epoch: int, stats: Tensor, s: Tensor | None) -> int:
        """Keep a layer-epoch's ``EpochStats`` vector and factors ``s`` until the next flush; return its step."""
        self._steps += 1
        self._pending.append(PendingEpoch(layer, epoch, self._steps, stats, s))
        return self._steps

    def restart_clock(self) -> None:
        """Time from now: what happened since (an evaluation) is not training time."""
        self._clock.restart()

    def flush(self) -> Iterator[EpochMetrics]:
        """Copy the pending epochs' metrics to the host in one transfer and yield them."""
        pending = self._pending
        if not pending:
            self._clock.restart()
            return
        rows = torch.stack([p.stats for p in pending]).cpu().tolist()  # the one sync point
        host_s = [p.s.cpu().numpy() if p.s is not None else None for p in pending]
        # Seconds per layer-epoch, averaged over the flushed ones: exact on GPU because the
        # transfer above waits for the queued work.
        seconds = self._clock.seconds_per(len(pending))
        for p, row, s in zip(pending, rows, host_s):
            self.epoch_seconds.append(seconds)
            yield EpochMetrics(layer=p.layer, epoch=p.epoch, step=p.step, **EpochStats(*row)._asdict(),
                               seconds=seconds, significance=s)
        pending.clear()
        self._clock.restart()
