"""The training driver: the one loop over a trainer's events, with the one divergence rule.

The CLI, ``training.train`` (and so ``reproduce``), the job worker (local processes and Ray tasks) and the
lesson's stepper all iterate ``Driver(trainer)`` instead of ``trainer.run()``. It passes the trainer's events
on unchanged (the same events in the same order, the same numbers) and decides how the run ended:

- **A NaN or infinite loss ends the run as failed.** The first ``EpochMetrics`` whose loss is not finite is
  passed on (so its row is recorded), training stops there, and a ``RunFinished`` with status ``failed``, no
  accuracies and ``reason`` (``divergence_reason``: where it happened, and a hint that names the algorithm's
  own knobs) comes last.
- **A run that ends at chance says why** in its ``RunFinished.reason`` (``findings.chance_note``), e.g.
  "at chance: the run diverged; lower lr (now 10.0)": losses can diverge and stay finite.

It needs only an ``EventSource`` (a ``config`` and ``run(should_stop)``), so nothing here imports the trainer.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Protocol

from ..config.schema import RunConfig
from ..vocabulary import RunStatus, has_goodness, trains_locally
from .events import EpochMetrics, Event, RunFinished


class EventSource(Protocol):
    """What the driver drives: ``training.Trainer``."""

    config: RunConfig

    def run(self, should_stop: Callable[[], bool] | None = None) -> Iterator[Event]: ...


def divergence_hint(config: RunConfig) -> str:
    """What to change after a NaN or infinite loss: the knobs of ``config``'s algorithm, with their values."""
    if not has_goodness(config.algo):
        return (f"Hint: lower lr (now {config.lr}) or weight_decay (now {config.weight_decay}), or use another "
                f"optimizer (now {config.optimizer}).")
    if config.trains_factors:
        return (f"Hint: lower lr (now {config.lr}) or sig_lr (now {config.sig_lr}), or raise the threshold "
                f"(now {config.threshold}).")
    return f"Hint: lower lr (now {config.lr}) or raise the threshold (now {config.threshold})."


def divergence_reason(config: RunConfig, event: EpochMetrics) -> str:
    """The reason a run fails at ``event``, whose loss is NaN or infinite: where, and ``divergence_hint``."""
    where = "" if not trains_locally(config.algo) else f"layer {event.layer + 1} of {len(config.layers)}, "
    kind = "NaN" if math.isnan(event.loss) else "infinite"
    return f"{kind} loss at {where}epoch {event.epoch}. {divergence_hint(config)}"


class Driver:
    """One run of ``trainer`` under the divergence rule (see the module doc). Iterate it once for the events,
    or call ``run``.

    ``result`` is the run's final ``RunFinished``, set as soon as the end is decided: for a failed run that is
    before its last ``EpochMetrics`` is passed on, so a consumer that steps through the events (the lesson)
    can collect the end in the same step.
    """

    def __init__(self, trainer: EventSource, should_stop: Callable[[], bool] | None = None) -> None:
        self.trainer = trainer
        self.result: RunFinished | None = None
        self._events = self._drive(should_stop)

    def __iter__(self) -> Iterator[Event]:
        return self._events

    def run(self, on_event: Callable[[Event], None] | None = None) -> RunFinished:
        """Drive the run to its end, passing each event to ``on_event``; return the final ``RunFinished``."""
        for event in self._events:
            if on_event is not None:
                on_event(event)
        if self.result is None:  # pragma: no cover - the trainer always ends with RunFinished
            raise RuntimeError("training ended without a finished event")
        return self.result

    def _drive(self, should_stop: Callable[[], bool] | None) -> Iterator[Event]:
        config = self.trainer.config
        start, seconds = time.perf_counter(), []
        events = self.trainer.run(should_stop)
        for event in events:
            if isinstance(event, EpochMetrics):
                seconds.append(event.seconds)
                if not math.isfinite(event.loss):
                    events.close()  # training stops here: nothing after a NaN is worth computing
                    self.result = RunFinished(
                        status=RunStatus.FAILED.value, test_acc=None, test_acc_no_significance=None, train_acc=None,
                        train_acc_no_significance=None, train_seconds=sum(seconds),
                        epoch_seconds_median=statistics.median(seconds), wall_seconds=time.perf_counter() - start,
                        reason=divergence_reason(config, event))
                    yield event
                    yield self.result
                    return
            elif isinstance(event, RunFinished):
                event = self.result = _with_chance_note(config, event)
            yield event


def _with_chance_note(config: RunConfig, result: RunFinished) -> RunFinished:
    """``result``, with ``findings.chance_note`` as its reason where a finished run ended at chance."""
    from ..analysis.findings import chance_note  # it reads launch's tables (pandas): imported only at a run's end

    note = chance_note(config, result.test_acc) if result.status == RunStatus.DONE else None
    return result if note is None else replace(result, reason=note)
