"""Run jobs on a Ray cluster: one Ray task per run, its events streamed back to the app's host.

``RayExecutor`` implements the ``Executor`` protocol. Each run is a Ray task with resource
requests from its config (``num_cpus``: ``$FGFF_RAY_CPUS_PER_RUN``, default 1; ``num_gpus=1``
when the run asks for CUDA), so Ray places runs on free CPUs and GPUs across the nodes. Workers
cannot write the host's SQLite, so a small channel actor pinned to the host's node collects the
events (start, node, epochs with their significance snapshots, evaluations); a drain thread here
writes them into the store with ``RunWriter``, so live curves look the same as with local jobs.
The final metrics and the checkpoint (as bytes) come back as the task's result and are written
into the run's folder on the host.

Cancel: the drain thread passes the store's cancel flag to the channel, and the worker reads it
with every epoch it sends (cooperative stop after the epoch); a run that has not started yet, or
one still going ``CANCEL_GRACE_S`` after the request, is cancelled by Ray. Automatic retries are
off (``max_retries=0``): a rerun would duplicate rows. A worker or node that dies fails its run
with a readable reason; the other runs go on. Tasks are owned by the app's process (Ray's fate
sharing), so when the app stops its runs stop too, and the restarted app marks them interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .._files import atomic_write
from ..config.schema import RunConfig
from ..format import duration
from ..store import CHECKPOINT_NAME, RunStore, RunWriter
from ..vocabulary import RunStatus, stopped
from .ray_cluster import ClusterInfo, NodeInfo, RayUnavailableError, cluster_info, connect, disconnect
from .worker import execute_run, failure_reason, final_metrics

__all__ = ["ClusterInfo", "NodeInfo", "RayExecutor", "RayUnavailableError", "cluster_info", "connect"]

CPUS_PER_RUN_ENV = "FGFF_RAY_CPUS_PER_RUN"
CANCEL_GRACE_S = 10.0  # a started run still going this long after a stop request is cancelled by Ray
LOST_AFTER_S = 60.0  # events that cannot be collected for this long: the runs fail (the cluster is gone)

log = logging.getLogger("fgff_core.jobs")


# -- the worker side -------------------------------------------------------------------------------------
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


def ray_failure_reason(exc: BaseException) -> str:
    """A readable reason for a run whose Ray task did not return (worker or node gone, ...)."""
    from ray import exceptions as rex

    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    if isinstance(exc, rex.NodeDiedError):
        return f"the Ray node running this run left the cluster ({first})"
    if isinstance(exc, rex.WorkerCrashedError | rex.LocalRayletDiedError):
        return ("the Ray worker process running this run died (killed, e.g. by the out-of-memory killer or "
                "kill -9, or its node left the cluster)")
    if isinstance(exc, rex.OutOfMemoryError):
        return f"the Ray node ran out of memory and killed this run: {first}"
    return f"Ray: {type(exc).__name__}: {first}"


# -- the host side ---------------------------------------------------------------------------------------
@dataclass
class _RayRun:
    writer: RunWriter
    ref: Any = None
    started: bool = False
    stop_flag: int = 0
    stop_sent_at: float | None = None
    forced: bool = False
    ended: bool = False


class RayExecutor:
    """One Ray task per run; events drained into the store on this host (see the module doc)."""

    local_devices = False  # runs use the cluster's devices: do not check CUDA on the app's host

    def __init__(self, runs_dir: str | os.PathLike, address: str | None = None, cpus_per_run: int | None = None,
                 poll_interval: float = 0.1, owns_ray: bool = False) -> None:
        # ``owns_ray``: the caller connected (``choose_executor``) and hands this executor the shutdown.
        self._owns_ray = connect(address) or owns_ray
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.store = RunStore(runs_dir)
        self.cpus_per_run = cpus_per_run or int(os.environ.get(CPUS_PER_RUN_ENV, "1") or 1)
        if self.cpus_per_run < 1:
            raise ValueError(f"{CPUS_PER_RUN_ENV}: expected a positive integer, got {self.cpus_per_run}")
        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
        self._channel = ray.remote(EventChannel).options(num_cpus=0, max_restarts=0,
                                                          scheduling_strategy=here).remote()
        self._task = ray.remote(train_on_worker)
        self._runs: dict[str, _RayRun] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._problem: str | None = None
        self.poll_interval = poll_interval
        self._thread = threading.Thread(target=self._drain_loop, name="fgff-ray-drain", daemon=True)
        self._thread.start()

    def capacity(self) -> int:
        """Runs the cluster can train at once (CPUs / CPUs per run), for the manager's default."""
        info = cluster_info()
        return max(1, int((info.cpus_total if info else 1) // self.cpus_per_run))

    def _gpus_for(self, config: RunConfig) -> int:
        if config.device.startswith("cuda"):
            return 1
        info = cluster_info()
        return 1 if config.device == "auto" and info is not None and info.gpus_total > 0 else 0

    # -- Executor protocol ---------------------------------------------------------------------
    def start(self, run_id: str, config: RunConfig, slot: int | None) -> int | None:
        run = _RayRun(writer=self.store.writer(run_id))
        with self._lock:
            self._runs[run_id] = run
        run.ref = self._task.options(num_cpus=self.cpus_per_run, num_gpus=self._gpus_for(config), max_retries=0,
                                     name=f"fgff-run-{run_id}").remote(run_id, config.to_json(), self._channel,
                                                                       self.cpus_per_run)
        return None  # the worker's pid is recorded when it reports its node

    def is_alive(self, run_id: str) -> bool:
        with self._lock:
            run = self._runs.get(run_id)
            return run is not None and not run.ended

    def kill(self, run_id: str) -> None:
        import ray

        with self._lock:
            run = self._runs.get(run_id)
        if run is not None and run.ref is not None and not run.ended:
            with contextlib.suppress(Exception):
                ray.cancel(run.ref, force=True)

    def reap(self, run_id: str) -> int | None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is not None:
            run.writer.close()
        return 0

    def close(self) -> None:
        """Stop draining (after the last events are written) and release the channel."""
        import ray

        self._stop.set()
        self._thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self._drain_once()
        with contextlib.suppress(Exception):
            ray.kill(self._channel)
        if self._owns_ray:
            disconnect()

    # -- draining ----------------------------------------------------------------------------------
    def _drain_loop(self) -> None:
        failing_since: float | None = None
        while not self._stop.is_set():
            try:
                self._drain_once()
                problem, failing_since = None, None
            except Exception as exc:  # noqa: BLE001 - keep draining; say it once
                problem = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > LOST_AFTER_S:
                    self._fail_all(f"lost contact with the Ray cluster for {duration(LOST_AFTER_S)} ({problem})")
            if problem != self._problem:
                if problem:
                    log.error("Ray executor: cannot collect events: %s", problem)
                else:
                    log.warning("Ray executor: collecting events again")
                self._problem = problem
            self._stop.wait(self.poll_interval)

    def _fail_all(self, reason: str) -> None:
        """End every run still going with ``reason`` (their Ray tasks cannot report any more)."""
        with self._lock:
            runs = [run for run in self._runs.values() if not run.ended]
        for run in runs:
            with contextlib.suppress(Exception):
                run.writer.finish(RunStatus.FAILED, error=reason)
            with self._lock:
                run.ended = True

    def _drain_once(self) -> None:
        import ray

        self._apply_all(ray.get(self._channel.take.remote()))
        with self._lock:
            runs = {r: run for r, run in self._runs.items() if not run.ended and run.ref is not None}
        now = time.monotonic()
        for run_id, run in runs.items():
            self._pass_stop_request(run_id, run, now)
        if not runs:
            return
        refs = [run.ref for run in runs.values()]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        if ready:
            # A task returns only after its last event was acknowledged: take them before the end.
            self._apply_all(ray.get(self._channel.take.remote()))
            done = set(ready)
            for run_id, run in runs.items():
                if run.ref in done:
                    self._finish(run_id, run)

    def _pass_stop_request(self, run_id: str, run: _RayRun, now: float) -> None:
        import ray

        if run.stop_sent_at is None:
            flag = run.writer.cancel_flag()
            if flag:
                run.stop_flag, run.stop_sent_at = flag, now
                self._channel.stop.remote(run_id, flag)
                if not run.started:  # still waiting for a free CPU/GPU: it never trains
                    with contextlib.suppress(Exception):
                        ray.cancel(run.ref)
        elif not run.forced and now - run.stop_sent_at > CANCEL_GRACE_S:
            run.forced = True
            with contextlib.suppress(Exception):
                ray.cancel(run.ref, force=True)

    def _apply_all(self, events: list[tuple[str, str, Any]]) -> None:
        for run_id, kind, payload in events:
            with self._lock:
                run = self._runs.get(run_id)
            if run is None:
                continue
            writer = run.writer
            if kind == "node":
                writer.set_node(payload.label())
                self.store.queue.set_pid(run_id, payload.pid)
                run.started = True
            elif kind == "started":
                writer.started(*payload)
            elif kind == "epoch":
                writer.epoch(payload)
            elif kind == "eval":
                writer.evaluation(payload)

    def _finish(self, run_id: str, run: _RayRun) -> None:
        import ray
        from ray import exceptions as rex

        try:
            outcome = RemoteOutcome(*ray.get(run.ref))
        except rex.TaskCancelledError:  # a kill, a run that never started, or one that did not stop in time
            end = stopped(run.stop_flag)
            outcome = RemoteOutcome(end.status.value, error=end.reason)
        except rex.RayError as exc:
            outcome = RemoteOutcome(RunStatus.FAILED.value, error=ray_failure_reason(exc),
                                    error_detail=f"{type(exc).__name__}: {exc}")
        checkpoint = None
        if outcome.checkpoint:
            checkpoint = atomic_write(self.store.run_dir(run_id, create=True) / CHECKPOINT_NAME, outcome.checkpoint)
        run.writer.finish(outcome.status, final=outcome.final, checkpoint=checkpoint, error=outcome.error,
                          error_detail=outcome.error_detail)
        with self._lock:
            run.ended = True
