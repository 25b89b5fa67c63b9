"""What training reports, as plain dataclasses: the metric names used by the CLI, store and UI.

A run yields ``RunStarted``, then per layer and epoch an ``EpochMetrics``, every ``eval_every``
epochs an ``EvalMetrics``, and last a ``RunFinished``. Consumers iterate them through the training
driver (``driver.py``), which applies the one divergence rule. ``to_dict`` gives JSON-friendly dicts
(arrays as lists) with an ``event`` key, so events can cross process boundaries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "started"
    config: dict[str, Any]
    device: str
    n_train: int
    n_test: int
    input_dim: int
    n_params: int
    epoch_events: int  # how many EpochMetrics the run will yield, for progress bars and ETAs


@dataclass
class EpochMetrics(Event):
    """One layer's epoch. Goodness is the batch mean, with the significance factors (eq. 3) and
    ``*_no_significance`` without them (eq. 2).

    For BP, ``layer`` is 0 (the whole network) and the goodness fields are None.
    """

    kind: ClassVar[str] = "epoch"
    layer: int
    epoch: int  # 1-based, within the layer for the greedy schedule
    step: int  # 1-based count of EpochMetrics in the run
    loss: float
    g_pos: float | None
    g_neg: float | None
    g_pos_no_significance: float | None
    g_neg_no_significance: float | None
    seconds: float
    significance: np.ndarray | None = field(default=None, repr=False)


@dataclass
class EvalMetrics(Event):
    """Accuracy on the fixed evaluation subsets, with the layers trained so far (``predict_layers``).

    ``layer_*_acc``: the prediction rule with the goodness of this event's ``layer`` alone (with the
    significance factors); None for BP. The simultaneous schedule yields one event per layer.
    """

    kind: ClassVar[str] = "eval"
    layer: int
    epoch: int
    step: int
    train_acc: float
    test_acc: float
    train_acc_no_significance: float | None
    test_acc_no_significance: float | None
    layer_train_acc: float | None = None
    layer_test_acc: float | None = None


@dataclass
class RunFinished(Event):
    kind: ClassVar[str] = "finished"
    status: str  # "done" or "stopped" from the trainer; "failed" from the training driver (``driver.py``)
    test_acc: float | None
    test_acc_no_significance: float | None
    train_acc: float | None
    train_acc_no_significance: float | None
    train_seconds: float
    epoch_seconds_median: float
    wall_seconds: float
    # the linear softmax readout on the frozen hidden activities (readout_epochs > 0), never the goodness rule
    readout_train_acc: float | None = None
    readout_test_acc: float | None = None
    # why the run ended as it did, one sentence set by the training driver: a failed run's reason, or the
    # verdict of a run that ended at chance level; None otherwise. Not a metric.
    reason: str | None = None


EPOCH_METRIC_NAMES = tuple(f.name for f in dataclasses.fields(EpochMetrics) if f.name != "significance")
EVAL_METRIC_NAMES = tuple(f.name for f in dataclasses.fields(EvalMetrics))
FINAL_METRIC_NAMES = tuple(f.name for f in dataclasses.fields(RunFinished) if f.name != "reason")
