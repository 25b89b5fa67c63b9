"""The per-epoch bookkeeping of a training run: batch-mean statistics kept on the device and copied to
the host in batches (one sync per flush, not per step), and the clock that times layer-epochs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

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
