"""The worker side of a Ray run: the task that trains it, and what travels between it and the host.

``train_on_worker`` is the body of each run's Ray task (``ray_host.RayExecutor`` starts it): it trains
with ``execute_run`` and hands every event to a ``_ChannelSink``, whose sender thread passes them in
batches to an ``EventChannel``, a small actor on the host's node that the host drains into its store.
Each batch's acknowledgement carries the run's stop flag back, so a cancel stops the run after its
epoch. The task returns a ``RemoteOutcome``: its end, final metrics, checkpoint (as bytes) and when it
trained on the node; a training failure travels back in it, it is never raised.

A run owns its CPUs for its whole life: the task never calls ``ray.get`` or ``ray.wait``. A task
blocked in either tells Ray it is idle, and Ray lends its CPUs to the next task in the queue, so a
one-CPU node would train two runs at once (measured: 4 runs on 2 CPUs trained 3 at a time with a
``ray.get`` or a ``ray.wait(timeout=0)`` per epoch, 2 at a time without; the same holds for several
apps sharing the cluster). Acknowledgements are awaited with ``ObjectRef.future()``, a plain Python
future that Ray does not count as blocking.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NamedTuple

from ..config.schema import RunConfig
from ..format import node_label
from ..store import CHECKPOINT_NAME
from ..vocabulary import RunStatus, stopped
from .ray_wire import event_count, pack
from .worker import execute_run, failure_reason, final_metrics


class NodeReport(NamedTuple):
    """Where a run trains: sent by the worker before its first epoch (``since``: when its task began, the
    node's ``time.time()``)."""

    hostname: str
    ip: str
    node_id: str
    pid: int
    since: float = 0.0

    def label(self) -> str:
        return node_label(self.hostname, self.node_id)


class RemoteOutcome(NamedTuple):
    """What a run's Ray task returns: its end, final metrics and checkpoint bytes."""

    status: str
    final: dict[str, float] | None = None
    checkpoint: bytes | None = None
    error: str | None = None
    error_detail: str | None = None
    trained: tuple[float, float] | None = None  # when the task began and ended, the node's time.time()


class EventChannel:
    """A Ray actor on the host's node: workers put batches of events (``ray_wire.pack``), the host takes them;
    carries the runs' stop flags back.

    Bounded: it holds at most ``capacity`` events (``CAPACITY``, plus the one batch that crossed it). A put past
    that is refused, not queued: the batch stays with its sender, which waits for room (``wait_room``, a call
    without the batch) and puts it again, while its run's next events gather in its own bounded buffer, so a
    drain that cannot keep up slows the runs down (back-pressure) instead of growing the app's memory; no event is
    dropped. Async: a sender waiting for room never holds up a put, a take or a stop.
    """

    CAPACITY = 50_000  # events: about 25 MB of digits epochs (a 100-float snapshot each), 1.4 s of 100 runs' epochs
    ROOM_POLL_S = 0.01

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = capacity or self.CAPACITY
        self._batches: list[tuple[str, list[tuple[str, Any]]]] = []
        self._held = 0
        self._flags: dict[str, int] = {}

    async def put(self, run_id: str, wire: list[tuple[str, Any]], count: int) -> tuple[bool, int]:
        """Take a run's packed batch of ``count`` events, unless the channel is full; return (taken, stop flag)."""
        if count and self._held >= self.capacity:
            return False, self._flags.get(run_id, 0)
        if count:
            self._batches.append((run_id, wire))
            self._held += count
        return True, self._flags.get(run_id, 0)

    async def wait_room(self, run_id: str, timeout: float) -> int:
        """Return when the channel has room again, or after ``timeout`` seconds; the run's stop flag."""
        import asyncio

        deadline = time.monotonic() + timeout
        while self._held >= self.capacity and time.monotonic() < deadline:
            await asyncio.sleep(self.ROOM_POLL_S)
        return self._flags.get(run_id, 0)

    async def take(self) -> list[tuple[str, list[tuple[str, Any]]]]:
        """Every batch held, oldest first, as (run_id, packed events); the channel is empty after it."""
        batches, self._batches, self._held = self._batches, [], 0
        return batches

    async def held(self) -> int:
        return self._held

    async def stop(self, run_id: str, flag: int) -> None:
        self._flags[run_id] = flag


class _ChannelSink:
    """``EventSink`` for ``execute_run`` on a worker: events go to the channel in batches, one batch in flight.

    ``send`` only appends to a buffer; a sender thread sends what has gathered as soon as the batch
    before it is acknowledged (so events travel at once while the channel keeps up, several per
    message when it does not), packed as columns (``ray_wire.pack``), and asks for the stop flag every
    ``POLL_S`` seconds when there is nothing to send. A batch the full channel refuses is kept and put again
    once the channel has room. Training waits only when ``MAX_BUFFERED`` events are still unsent (besides
    the batch in flight): what a run holds back is bounded, as is the channel. Waiting is on
    threading primitives and ``ObjectRef.future()``, never ``ray.get``/``ray.wait`` (see the module
    doc). A send that fails (the channel is gone) is raised by the next ``send`` or ``close``.
    """

    POLL_S = 1.0
    MAX_BUFFERED = 1000

    def __init__(self, channel: Any, run_id: str) -> None:
        self.channel, self.run_id, self.flag = channel, run_id, 0
        self._buffer: list[tuple[str, Any]] = []
        self._in_flight = False
        self._closing = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._send_loop, name=f"fgff-events-{run_id}", daemon=True)
        self._thread.start()

    # -- the training thread -------------------------------------------------------------------------
    def send(self, kind: str, payload: Any) -> None:
        with self._cond:
            self._cond.wait_for(lambda: len(self._buffer) < self.MAX_BUFFERED or self._error is not None)
            self._raise_error()
            self._buffer.append((kind, payload))
            self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every event sent so far is acknowledged (and the flag with it is known)."""
        with self._cond:
            self._cond.wait_for(lambda: (not self._buffer and not self._in_flight) or self._error is not None)
            self._raise_error()

    def close(self) -> None:
        """``flush``, then stop the sender thread."""
        try:
            self.flush()
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join(timeout=10)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"cannot send events to the app: {self._error}") from self._error

    def started(self, device: str, n_params: int, epoch_events: int) -> None:
        self.send("started", (device, n_params, epoch_events))

    def epoch(self, event: Any) -> None:
        self.send("epoch", event)

    def evaluation(self, event: Any) -> None:
        self.send("eval", event)

    def should_stop(self) -> bool:
        return bool(self.flag)

    # -- the sender thread ---------------------------------------------------------------------------
    def _send_loop(self) -> None:
        last = time.monotonic()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._buffer or self._closing, timeout=max(0.0, last + self.POLL_S
                                                                                        - time.monotonic()))
                if self._closing and not self._buffer:
                    return
                batch, self._buffer, self._in_flight = self._buffer, [], True
                self._cond.notify_all()  # room in the buffer
            try:  # an empty batch asks for the stop flag
                self._put(pack(batch))
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread
                with self._cond:
                    self._error, self._in_flight = exc, False
                    self._cond.notify_all()
                return
            last = time.monotonic()
            with self._cond:
                self._in_flight = False
                self._cond.notify_all()

    def _put(self, wire: list[tuple[str, Any]]) -> None:
        """Hand ``wire`` to the channel, waiting for room while it is full; keep the stop flags it answers."""
        count = event_count(wire)
        while True:
            taken, flag = self.channel.put.remote(self.run_id, wire, count).future().result()
            self._note_flag(flag)
            if taken:
                return
            self._note_flag(self.channel.wait_room.remote(self.run_id, self.POLL_S).future().result())

    def _note_flag(self, flag: int) -> None:
        with self._cond:
            self.flag = flag or self.flag


def train_on_worker(run_id: str, config_json: str, channel: Any, threads: int) -> RemoteOutcome:
    """The body of a run's Ray task: train, streaming events to ``channel``; never raises for a
    training failure (the reason travels back in the outcome)."""
    since = time.time()
    sink = _ChannelSink(channel, run_id)
    try:
        outcome = _train(run_id, config_json, sink, threads, since)
    except Exception as exc:  # noqa: BLE001 - every failure must reach the store
        outcome = RemoteOutcome(RunStatus.FAILED.value, error=failure_reason(exc),
                                error_detail=traceback.format_exc())
    with contextlib.suppress(Exception):  # the task returns only after its last event was acknowledged
        sink.close()
    return outcome._replace(trained=(since, time.time()))


def _train(run_id: str, config_json: str, sink: _ChannelSink, threads: int, since: float) -> RemoteOutcome:
    import ray
    import torch

    config = RunConfig.from_json(config_json)
    if config.device.startswith("cuda:"):  # Ray shows this task only the GPU it was given
        config = config.replace(device="cuda")
    torch.set_num_threads(max(1, threads))
    sink.send("node", NodeReport(socket.gethostname(), ray.util.get_node_ip_address(),
                                 ray.get_runtime_context().get_node_id(), os.getpid(), since))
    sink.flush()  # the stop flag of a run cancelled while it waited for a CPU
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
