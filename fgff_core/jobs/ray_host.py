"""Run jobs on a Ray cluster, the host side: one Ray task per run, its events streamed back into the store.

``RayExecutor`` implements the ``Executor`` protocol. Each run is a Ray task (``ray_worker.py``, the
worker side) with resource requests from its config (``num_cpus``: ``$FGFF_RAY_CPUS_PER_RUN``, default
1; ``num_gpus=1`` when the run asks for CUDA), so Ray places runs on free CPUs and GPUs across the
nodes. A run holds its CPUs until it ends: its task never blocks in ``ray.get`` (which would let Ray
lend them to the next run; see ``ray_worker``), so a node never trains more runs than it has CPUs for,
however many runs this app or other apps sharing the cluster hand to Ray. Workers cannot write the
host's SQLite, so a small channel actor pinned to the host's node collects the events (start, node,
epochs with their significance snapshots, evaluations), sent in batches with consecutive epochs as
columns (``ray_wire``); the channel holds a bounded number of events (a full one makes the senders wait,
and so the runs: back-pressure, nothing dropped). A drain thread here writes them into the store, every
run's epochs of one drain in one transaction, and takes again at once while there is a backlog, so live
curves look the same as with local jobs. The final metrics, the checkpoint (as bytes) and when the run
trained on its node come back as the task's result; the checkpoint goes into the run's folder on the host.

A cold Ray worker takes 10-35 s (loaded machine) to start and import torch; unless ``$FGFF_WARM_WORKER=0``, the
executor starts one warm-up task on each live node (``ray_warm``, asking for no CPU): its worker returns to the
node's idle pool ready to train. Runs submitted before the warm-ups ended wait for them (at most
``ray_warm.WARM_WAIT_S``) instead of starting a cold worker; a GPU run still starts its own (Ray keeps CPU and
GPU workers apart).

A run that no live node could take (``cuda`` on a cluster without GPUs, more CPUs per run than a
node has) would wait in Ray's queue for ever: ``check_placeable`` refuses it at submit, ``start``
fails it at once, and one still waiting when the node it needed leaves fails within
``PLACEMENT_CHECK_S`` (all with "no node in the cluster has a GPU ..." or the CPUs it lacks).

Cancel: the drain thread passes the store's cancel flag to the channel, and the worker reads it with
every batch acknowledged, at least every second (cooperative stop after the epoch); a run that has
not started yet, or one still going ``CANCEL_GRACE_S`` after the request, is cancelled by Ray.
Automatic retries are off (``max_retries=0``): a rerun would duplicate rows. A worker or node that
dies fails its run with a readable reason; the other runs go on. Tasks are owned by the app's
process (Ray's fate sharing), so when the app stops its runs stop too, and the restarted app marks
them interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._files import atomic_write
from ..config.schema import RunConfig
from ..format import duration, shorten
from ..store import CHECKPOINT_NAME, RunStore, RunWriter
from ..vocabulary import RunStatus, stopped
from .ray_cluster import cluster_info, connect, disconnect
from .ray_warm import WarmReport, WarmWorkers
from .ray_wire import EPOCHS, event_count
from .ray_worker import EventChannel, RemoteOutcome, train_on_worker

CPUS_PER_RUN_ENV = "FGFF_RAY_CPUS_PER_RUN"
CANCEL_GRACE_S = 10.0  # a started run still going this long after a stop request is cancelled by Ray
PLACEMENT_CHECK_S = 1.0  # how often runs waiting in Ray's queue are checked against the live nodes
BUSY_EVENTS = 1000  # a drain that took at least this many events takes again at once (a backlog), else waits
LOST_AFTER_S = 60.0  # events that cannot be collected for this long: the runs fail (the cluster is gone)

log = logging.getLogger("fgff_core.jobs")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, cut at a sentence or word end when long."""
    text = str(exc).strip()
    return shorten(text.splitlines()[0]) if text else ""


def ray_failure_reason(exc: BaseException) -> str:
    """A readable reason for a run whose Ray task did not return (worker or node gone, ...)."""
    from ray import exceptions as rex

    first = first_line(exc)
    if isinstance(exc, rex.NodeDiedError):
        return f"the Ray node running this run left the cluster ({first})"
    if isinstance(exc, rex.WorkerCrashedError | rex.LocalRayletDiedError):
        return ("the Ray worker process running this run died (killed, e.g. by the out-of-memory killer or "
                "kill -9, or its node left the cluster)")
    if isinstance(exc, rex.OutOfMemoryError):
        return f"the Ray node ran out of memory and killed this run: {first}"
    return f"Ray: {type(exc).__name__}: {first}"


class TrainingSpan(NamedTuple):
    """When a run's task held its CPUs on its node (the node's ``time.time()``), as the task reported it."""

    run_id: str
    node: str
    start: float
    end: float


@dataclass
class _RayRun:
    writer: RunWriter
    ref: Any = None
    gpus: int = 0
    node: str = ""
    unplaceable: str | None = None  # why it was taken out of Ray's queue (its node left)
    started: bool = False
    config_json: str = ""
    deferred: bool = False  # waiting for the warm workers before it is handed to Ray
    stop_flag: int = 0
    stop_sent_at: float | None = None
    forced: bool = False
    ended: bool = False


class RayExecutor:
    """One Ray task per run; events drained into the store on this host (see the module doc)."""

    local_devices = False  # runs use the cluster's devices: do not check CUDA on the app's host
    SPANS_KEPT = 1000

    def __init__(self, runs_dir: str | os.PathLike, address: str | None = None, cpus_per_run: int | None = None,
                 poll_interval: float = 0.1, owns_ray: bool = False, warm_worker: bool = True) -> None:
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
        self._warm = WarmWorkers(self.cpus_per_run, warm_worker)
        self._runs: dict[str, _RayRun] = {}
        self.spans: deque[TrainingSpan] = deque(maxlen=self.SPANS_KEPT)  # the last runs' times on their nodes
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._problem: str | None = None
        self._placement_checked = 0.0
        self.poll_interval = poll_interval
        self._thread = threading.Thread(target=self._drain_loop, name="fgff-ray-drain", daemon=True)
        self._thread.start()

    @property
    def warm(self) -> list[WarmReport]:
        """The workers made ready ahead of the first runs (``ray_warm``), as their warm-ups reported."""
        return self._warm.reports

    def capacity(self) -> int:
        """Runs the cluster can train at once (CPUs / CPUs per run), for the manager's default."""
        info = cluster_info()
        return max(1, int((info.cpus_total if info else 1) // self.cpus_per_run))

    def check_placeable(self, config: RunConfig) -> None:
        """ValueError (naming ``device`` or the CPUs per run) when no live node of the cluster could take the run."""
        reason = self._why_unplaceable(self._gpus_for(config))
        if reason:
            raise ValueError(f"device: {reason}" if "GPU (" in reason else reason)

    def _why_unplaceable(self, gpus: int) -> str | None:
        info = cluster_info()
        return None if info is None else info.why_no_node_fits(self.cpus_per_run, gpus)

    def _gpus_for(self, config: RunConfig) -> int:
        if config.device.startswith("cuda"):
            return 1
        info = cluster_info()
        return 1 if config.device == "auto" and info is not None and info.gpus_total > 0 else 0

    # -- Executor protocol ---------------------------------------------------------------------
    def start(self, run_id: str, config: RunConfig, slot: int | None) -> int | None:
        run = _RayRun(writer=self.store.writer(run_id), gpus=self._gpus_for(config))
        with self._lock:
            self._runs[run_id] = run
        reason = self._why_unplaceable(run.gpus)
        if reason:  # Ray would keep it waiting for a node that is not there
            run.writer.finish(RunStatus.FAILED, error=reason)
            run.ended = True
            return None
        run.config_json = config.to_json()
        if self._warm.holding():
            run.deferred = True  # handed to Ray when a worker is ready (``_start_deferred``)
        else:
            self._submit(run_id, run)
        return None  # the worker's pid is recorded when it reports its node

    def _submit(self, run_id: str, run: _RayRun) -> None:
        with self._lock:
            if run.ended or run.ref is not None:
                return
            run.deferred = False
            run.ref = self._task.options(num_cpus=self.cpus_per_run, num_gpus=run.gpus, max_retries=0,
                                         name=f"fgff-run-{run_id}").remote(run_id, run.config_json, self._channel,
                                                                           self.cpus_per_run)

    def _start_deferred(self) -> None:
        """Hand the runs that waited for the warm workers to Ray once they are ready (or failed, or took over
        ``WARM_WAIT_S``); one cancelled meanwhile (or stopped by the app's shutdown) never trains."""
        with self._lock:
            waiting = [(r, run) for r, run in self._runs.items() if run.deferred and not run.ended]
        if not waiting:
            return
        go = not self._warm.holding()
        for run_id, run in waiting:
            flag = run.writer.cancel_flag()
            if flag:
                end = stopped(flag)
                run.writer.finish(end.status, error=end.reason)
                with self._lock:
                    run.ended, run.deferred = True, False
            elif go:
                self._submit(run_id, run)

    def is_alive(self, run_id: str) -> bool:
        with self._lock:
            run = self._runs.get(run_id)
            return run is not None and not run.ended

    def kill(self, run_id: str) -> None:
        import ray

        with self._lock:
            run = self._runs.get(run_id)
            if run is not None and run.deferred and not run.ended:  # never handed to Ray: nothing runs
                run.ended, run.deferred = True, False
                return
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
            self._warm.close()
        with contextlib.suppress(Exception):
            ray.kill(self._channel)
        if self._owns_ray:
            disconnect()

    # -- draining ----------------------------------------------------------------------------------
    def _drain_loop(self) -> None:
        failing_since: float | None = None
        while not self._stop.is_set():
            taken = 0
            try:
                taken = self._drain_once()
                problem, failing_since = None, None
            except Exception as exc:  # noqa: BLE001 - keep draining; say it once
                problem = f"{type(exc).__name__}: {first_line(exc)}"
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > LOST_AFTER_S:
                    self._fail_all(f"lost contact with the Ray cluster for {duration(LOST_AFTER_S)} ({problem})")
            if problem != self._problem:
                if problem:
                    log.error("Ray executor: cannot collect events: %s", problem)
                else:
                    log.warning("Ray executor: collecting events again")
                self._problem = problem
            if taken < BUSY_EVENTS:  # a backlog is drained at once, batch after batch
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

    def _drain_once(self) -> int:
        """Take what the channel holds into the store, pass stop requests on, end the runs whose tasks ended;
        return how many events it took."""
        import ray

        batches = ray.get(self._channel.take.remote())
        self._apply_all(batches)
        taken = sum(event_count(wire) for _, wire in batches)
        self._warm.collect()
        self._start_deferred()
        with self._lock:
            runs = {r: run for r, run in self._runs.items() if not run.ended and run.ref is not None}
        now = time.monotonic()
        for run_id, run in runs.items():
            self._pass_stop_request(run_id, run, now)
        if now - self._placement_checked > PLACEMENT_CHECK_S:
            self._placement_checked = now
            self._fail_unplaceable([run for run in runs.values() if not run.started and not run.unplaceable])
        if not runs:
            return taken
        refs = [run.ref for run in runs.values()]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        if ready:
            # A task returns only after its last event was acknowledged: take them before the end.
            self._apply_all(ray.get(self._channel.take.remote()))
            done = set(ready)
            for run_id, run in runs.items():
                if run.ref in done:
                    self._finish(run_id, run)
        return taken

    def _fail_unplaceable(self, waiting: list[_RayRun]) -> None:
        """Take the runs waiting in Ray's queue that no live node could take any more out of it (they fail)."""
        import ray

        reasons: dict[int, str | None] = {}
        for run in waiting:
            if run.gpus not in reasons:
                reasons[run.gpus] = self._why_unplaceable(run.gpus)
            if reasons[run.gpus]:
                run.unplaceable = reasons[run.gpus]
                with contextlib.suppress(Exception):
                    ray.cancel(run.ref)

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

    def _apply_all(self, batches: list[tuple[str, list[tuple[str, Any]]]]) -> None:
        """Write drained batches into the store: each run's other events in their order, then every run's
        epochs (rows from the wire's columns) in one transaction, so a drain costs one commit, not one per run
        or per epoch. An evaluation written before the epoch it follows makes the same row (both are upserts
        of their own columns)."""
        by_run: dict[str, list[tuple[str, Any]]] = {}
        for run_id, wire in batches:
            by_run.setdefault(run_id, []).extend(wire)
        epochs: list[tuple[RunWriter, list[tuple[Any, ...]]]] = []
        for run_id, run_events in by_run.items():
            with self._lock:
                run = self._runs.get(run_id)
            if run is not None:
                epochs.append((run.writer, self._apply_run(run_id, run, run_events)))
        RunWriter.epoch_rows_of_runs(epochs)

    def _apply_run(self, run_id: str, run: _RayRun, events: list[tuple[str, Any]]) -> list[tuple[Any, ...]]:
        """Write a run's events other than epochs; return its epochs' rows, for the drain's one transaction."""
        writer, epochs = run.writer, []
        for kind, payload in events:
            if kind == EPOCHS:
                epochs.extend(payload.rows(run_id))
            elif kind == "node":
                run.node = payload.label()
                writer.set_node(run.node)
                self.store.queue.set_pid(run_id, payload.pid)
                run.started = True
            elif kind == "started":
                writer.started(*payload)
            elif kind == "eval":
                writer.evaluation(payload)
        return epochs

    def _finish(self, run_id: str, run: _RayRun) -> None:
        import ray
        from ray import exceptions as rex

        try:
            outcome = RemoteOutcome(*ray.get(run.ref))
        except rex.TaskCancelledError:  # a kill, a run that never started, or one that did not stop in time
            end = stopped(run.stop_flag)
            outcome = (RemoteOutcome(RunStatus.FAILED.value, error=run.unplaceable) if run.unplaceable
                       else RemoteOutcome(end.status.value, error=end.reason))
        except rex.RayError as exc:
            outcome = RemoteOutcome(RunStatus.FAILED.value, error=ray_failure_reason(exc),
                                    error_detail=f"{type(exc).__name__}: {exc}")
        if outcome.trained is not None:
            self.spans.append(TrainingSpan(run_id, run.node, *outcome.trained))
        checkpoint = None
        if outcome.checkpoint:
            checkpoint = atomic_write(self.store.run_dir(run_id, create=True) / CHECKPOINT_NAME, outcome.checkpoint)
        run.writer.finish(outcome.status, final=outcome.final, checkpoint=checkpoint, error=outcome.error,
                          error_detail=outcome.error_detail)
        with self._lock:
            run.ended = True
