"""The worker side of a Ray run: the task that trains it, and what travels between it and the host.

``train_on_worker`` is the body of each run's Ray task (``ray_host.RayExecutor`` starts it): it trains
with ``execute_run`` and sends every event, as it happens, to an ``EventChannel``, a small actor on the
host's node that the host drains into its store. Each event's acknowledgement carries the run's stop
flag back, so a cancel stops the run after its epoch. The task returns a ``RemoteOutcome``: its end,
final metrics and checkpoint (as bytes); a training failure travels back in it, it is never raised.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, NamedTuple

from ..config.schema import RunConfig
from ..store import CHECKPOINT_NAME
from ..vocabulary import RunStatus, stopped
from .worker import execute_run, failure_reason, final_metrics


class NodeReport(NamedTuple):
    """Where a run trains: sent by the worker before its first epoch."""

    hostname: str
    ip: str
    node_id: str
    pid: int

    def label(self) -> str:
        return f"{self.hostname} ({self.ip}, node {self.node_id[:8]})"


class RemoteOutcome(NamedTuple):
    """What a run's Ray task returns: its end, final metrics and checkpoint bytes."""

    status: str
    final: dict[str, float] | None = None
    checkpoint: bytes | None = None
    error: str | None = None
    error_detail: str | None = None


class EventChannel:
    """A Ray actor on the host's node: workers put events, the host takes them; carries stop flags."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str, Any]] = []
        self._flags: dict[str, int] = {}

    def put(self, run_id: str, kind: str, payload: Any) -> int:
        self._events.append((run_id, kind, payload))
        return self._flags.get(run_id, 0)

    def flag(self, run_id: str) -> int:
        return self._flags.get(run_id, 0)

    def take(self) -> list[tuple[str, str, Any]]:
        events, self._events = self._events, []
        return events

    def stop(self, run_id: str, flag: int) -> None:
        self._flags[run_id] = flag


class _ChannelSink:
    """``EventSink`` for ``execute_run`` on a worker: every event is sent (and acknowledged) at once."""

    POLL_S = 1.0  # between epochs longer than this, should_stop asks the channel itself

    def __init__(self, channel: Any, run_id: str) -> None:
        self.channel, self.run_id, self.flag = channel, run_id, 0
        self._last = time.monotonic()

    def send(self, kind: str, payload: Any) -> None:
        import ray

        self.flag = ray.get(self.channel.put.remote(self.run_id, kind, payload))
        self._last = time.monotonic()

    def started(self, device: str, n_params: int, epoch_events: int) -> None:
        self.send("started", (device, n_params, epoch_events))

    def epoch(self, event: Any) -> None:
        self.send("epoch", event)

    def evaluation(self, event: Any) -> None:
        self.send("eval", event)

    def should_stop(self) -> bool:
        if not self.flag and time.monotonic() - self._last > self.POLL_S:
            import ray

            self.flag = ray.get(self.channel.flag.remote(self.run_id))
            self._last = time.monotonic()
        return bool(self.flag)


def train_on_worker(run_id: str, config_json: str, channel: Any, threads: int) -> RemoteOutcome:
    """The body of a run's Ray task: train, streaming events to ``channel``; never raises for a
    training failure (the reason travels back in the outcome)."""
    import ray
    import torch

    sink = _ChannelSink(channel, run_id)
    try:
        config = RunConfig.from_json(config_json)
        if config.device.startswith("cuda:"):  # Ray shows this task only the GPU it was given
            config = config.replace(device="cuda")
        torch.set_num_threads(max(1, threads))
        sink.send("node", NodeReport(socket.gethostname(), ray.util.get_node_ip_address(),
                                     ray.get_runtime_context().get_node_id(), os.getpid()))
        if sink.should_stop():
            end = stopped(sink.flag)
            return RemoteOutcome(end.status.value, error=end.reason)
        with tempfile.TemporaryDirectory(prefix="fgff-ray-") as tmp:
            path = Path(tmp) / CHECKPOINT_NAME
            result = execute_run(config, sink, sink.should_stop, path)
            checkpoint = path.read_bytes() if path.exists() else None
        if result.status in (RunStatus.DONE, RunStatus.FAILED):  # failed: the driver's NaN/inf rule
            return RemoteOutcome(result.status, final_metrics(result), checkpoint, result.reason)
        end = stopped(sink.flag)
        return RemoteOutcome(end.status.value, final_metrics(result), checkpoint, end.reason)
    except Exception as exc:  # noqa: BLE001 - every failure must reach the store
        return RemoteOutcome(RunStatus.FAILED.value, error=failure_reason(exc), error_detail=traceback.format_exc())
