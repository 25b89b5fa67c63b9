"""``JobManager``: submit training runs, follow and stop them; a thin API over the scheduler.

The manager keeps its queue in the run store; its ``Scheduler`` (``scheduler.py``) starts queued runs,
at most ``max_concurrent`` at a time, through an ``Executor`` (``executors.py``), notices workers that
died without writing a final status (``failed: worker died (signal 9, SIGKILL)``) and keeps a
heartbeat (``liveness.py``) so that other processes can tell whether this manager is alive. Reading
runs is the store's job: ``jm.store.runs()``, ``jm.store.metrics(rid)``.

Statuses (``fgff_core.vocabulary.RunStatus``): queued -> running -> done | failed | cancelled |
interrupted. ``interrupted`` means the server stopped while the run was queued or running:
``shutdown()`` marks its own runs so, and a new manager marks the runs of managers that died (no
heartbeat, or a dead process) so when it starts. Interrupted runs are not re-queued: silently
starting old jobs after a restart would surprise a shared server's users; ``resubmit(run_id)``
starts a run again with the same config.

When the runs folder's disk is full, the running run fails with "no space left on device in
<folder>" (what it wrote to its folder is removed), queued runs wait while less than
``MIN_FREE_BYTES`` is free, after the database's free pages were given back (``space.py``; their
``wait_reason`` says how much is free and needed; ``jm.problem`` too) and the scheduler logs the
problem once, and once more when it is over.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..config.schema import RunConfig
from ..store import RunStore, StoreError, UnknownRunError, check_run_id
from ..vocabulary import ACTIVE_STATUSES, CANCEL_SHUTDOWN, FINISHED_STATUSES
from . import launch
from .executors import (
    MAX_CONCURRENT_ENV,
    Executor,
    ExecutorChoice,
    choose_executor,
    default_max_concurrent,
    open_executor,
)
from .limits import Limits
from .liveness import ManagerRegistry, OrphanRecovery
from .owners import Requester, RunAccess
from .scheduler import Scheduler, gpu_count
from .space import MIN_FREE_BYTES


class Submitted(NamedTuple):
    """What ``JobManager.submit_or_join`` did: the run to follow, and whether it was already queued or running."""

    run_id: str
    joined: bool  # True: an identical run (config and seed) was queued or running, nothing new was queued


class JobError(RuntimeError):
    """The job manager cannot do what was asked (shut down, a run that will not stop, ...)."""


_LIVE_MANAGERS: weakref.WeakSet = weakref.WeakSet()


def _live_manager_ids() -> set[str]:
    """Ids of the managers of this process that are not shut down (never mistaken for dead ones)."""
    return {m.id for m in list(_LIVE_MANAGERS) if not m.closed}


class JobManager:
    """Submit training runs and follow them; the queue and all results live in ``self.store``.

    Creating a manager starts it, in this order: the store and this manager's entry in it (so that
    nothing starts when the store refuses writes), the recovery of dead managers' runs, the executor
    (with its warm worker) and the scheduler thread. A manager that exists is scheduling: runs
    submitted to it start without another call, and ``shutdown()`` (or leaving a ``with`` block, or
    the process exiting) stops it.

    Args:
        runs_dir: data folder (default ``$FGFF_RUNS_DIR`` or ``./runs``).
        max_concurrent: jobs running at once (default ``$FGFF_MAX_CONCURRENT``, else one per GPU,
            one on a CPU-only machine; with Ray, as many as the cluster's CPUs hold, followed as nodes
            join and leave).
        limits: caps checked at submit (default: ``Limits.from_env()``, no caps when unset).
        access: who may cancel or delete a run when a requester is given (``owners.py``; default
            ``RunAccess.from_env()``, the teacher key in ``$FGFF_TEACHER_KEY``).
        executor: where jobs run: an ``Executor``, or ``"local"`` (one process per job on this
            machine) or ``"ray"`` (a Ray cluster at ``$RAY_ADDRESS``, else a local Ray instance);
            default ``$FGFF_EXECUTOR``, else local.
        poll_interval: seconds between the scheduler's ticks while a run of this manager is active.
        heartbeat_timeout: seconds without a heartbeat after which another manager counts as dead.
        warm_worker: keep one worker process started ahead of time, so that a new run starts
            training at once instead of after the seconds it takes to import torch (default:
            ``$FGFF_WARM_WORKER``, on unless set to 0).
    """

    MIN_FREE_BYTES = MIN_FREE_BYTES  # queued runs wait while the runs folder's disk has less free space

    def __init__(self, runs_dir: str | os.PathLike | None = None, max_concurrent: int | None = None,
                 limits: Limits | None = None, executor: Executor | str | None = None, *, poll_interval: float = 0.05,
                 heartbeat_timeout: float = 15.0, warm_worker: bool | None = None,
                 access: RunAccess | None = None) -> None:
        if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int)
                                           or max_concurrent < 1):
            raise ValueError(f"max_concurrent: expected a positive integer, got {max_concurrent!r}")
        # Refused before the store creates its folder: bad $FGFF_LIMIT_* or $FGFF_EXECUTOR, a Ray that does not answer.
        self.limits = limits if limits is not None else Limits.from_env()
        self.access = access if access is not None else RunAccess.from_env()
        choice = choose_executor(executor)
        self.id = uuid.uuid4().hex
        try:
            self.store = RunStore(runs_dir)
            self.registry = ManagerRegistry(self.store)
            self.registry.register(self.id)  # the store must take writes before any worker process is started
        except BaseException:
            choice.release()
            raise
        self._closed = False
        self._submit_lock = threading.RLock()  # submit_or_join holds it around submit
        self._orphans = OrphanRecovery(self.registry, self.id, heartbeat_timeout, _live_manager_ids)
        _LIVE_MANAGERS.add(self)
        gpus = self._recover_and_open_executor(choice, max_concurrent, warm_worker)
        follow = None  # a cluster's capacity, unless the caller or $FGFF_MAX_CONCURRENT fixed the cap
        if max_concurrent is None and not os.environ.get(MAX_CONCURRENT_ENV, "").strip():
            follow = getattr(self.executor, "capacity", None)
        self._scheduler = Scheduler(self.store, self.registry, self.id, self.executor, self._max_concurrent, gpus,
                                    self._orphans, poll_interval=poll_interval, capacity=follow)
        self._scheduler.start()
        atexit.register(_shutdown_at_exit, weakref.ref(self))

    def _recover_and_open_executor(self, choice: ExecutorChoice, max_concurrent: int | None,
                                   warm_worker: bool | None) -> int:
        """Recover dead managers' runs, then open the executor; return the GPUs it spreads runs over.
        On failure, undo what was done (the executor closed if ours, this manager unregistered)."""
        try:
            self.recover_orphans()
            gpus = gpu_count()
            self.executor: Executor = open_executor(choice, self.store.root, gpus, max_concurrent, warm_worker)
            self._max_concurrent = (max_concurrent if max_concurrent is not None
                                    else default_max_concurrent(self.executor))
            return gpus
        except BaseException:
            if getattr(self, "executor", None) is None:
                choice.release()
            elif isinstance(choice.executor, str):  # ours to close; a caller's executor stays the caller's
                with contextlib.suppress(Exception):
                    getattr(self.executor, "close", lambda: None)()
            _LIVE_MANAGERS.discard(self)
            with contextlib.suppress(StoreError):
                self.registry.unregister(self.id)
            raise

    def __enter__(self) -> JobManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"JobManager({str(self.store.root)!r}, max_concurrent={self.max_concurrent})"

    @property
    def max_concurrent(self) -> int:
        """Jobs this manager runs at once now (on a Ray cluster without a fixed cap: what its live nodes hold)."""
        scheduler = getattr(self, "_scheduler", None)
        return self._max_concurrent if scheduler is None else scheduler.max_concurrent

    @property
    def closed(self) -> bool:
        """True once ``shutdown()`` was called: the manager takes no new runs."""
        return self._closed

    @property
    def problem(self) -> str | None:
        """Why queued runs are not starting right now (e.g. a full disk), or None."""
        return self._scheduler.problem

    # -- submitting and controlling --------------------------------------------------------------
    def submit(self, config: RunConfig | Mapping[str, Any], name: str | None = None, owner: str | None = None) -> str:
        """Queue a run; returns its id at once. ValueError for a bad config or a limit exceeded."""
        if self._closed:
            raise JobError("this JobManager was shut down; create a new one to submit runs")
        config = RunConfig.coerce(config)  # ValueError naming the field
        if getattr(self.executor, "local_devices", True):  # a cluster's devices are checked where the run lands
            from ..engine.device import resolve_device

            resolve_device(config.device)  # ValueError if e.g. cuda is asked for on a CPU-only machine
        else:  # a cluster: ValueError if no node of it has e.g. a GPU
            getattr(self.executor, "check_placeable", lambda _config: None)(config)
        self.limits.check_memory(config, local=getattr(self.executor, "local_devices", True))  # estimate vs limit
        with self._submit_lock:  # count and insert together, so concurrent submits cannot pass the cap
            self.limits.check(config, self.store.queue.count_active(owner) if self.limits.max_queued_per_owner else 0)
            run_id = self.store.create_run(config, name=name, owner=owner, manager_id=self.id)
        self._scheduler.wake()
        return run_id

    def submit_or_join(self, config: RunConfig | Mapping[str, Any], name: str | None = None,
                       owner: str | None = None) -> Submitted:
        """Queue a run, unless one with the same config and seed is queued or running (``launch.active_twin``):
        then that run is returned with ``joined=True`` and nothing is queued. Looked up and queued under the
        submit lock, so that a class pressing Start on the same preset at once shares one run, not a few."""
        config = RunConfig.coerce(config)
        with self._submit_lock:
            twin = launch.active_twin(self.store.runs(), config)
            if twin is not None:
                return Submitted(twin, True)
            return Submitted(self.submit(config, name=name, owner=owner), False)

    def submit_with_free_seed(self, config: RunConfig | Mapping[str, Any], name: str | None = None,
                              owner: str | None = None) -> str:
        """Queue ``config`` with the smallest seed above its own that no stored run of that config used
        (``launch.free_seed``): one's own run instead of a shared one. Chosen and queued under the submit lock,
        so that students pressing at once get distinct seeds."""
        config = RunConfig.coerce(config)
        with self._submit_lock:
            seed = launch.free_seed(self.store.runs(), config)
            return self.submit(dataclasses.replace(config, seed=seed), name=name, owner=owner)

    def resubmit(self, run_id: str, name: str | None = None, owner: str | None = None) -> str:
        """Queue a new run with the config of ``run_id`` (e.g. an interrupted one)."""
        old = self.store.run(run_id)
        return self.submit(self.store.config(run_id), name=name or old["name"],
                           owner=owner if owner is not None else old["owner"])

    def cancel(self, run_id: str, by: Requester | None = None) -> None:
        """Cancel a queued run at once or a running one after its current epoch; no-op when finished.

        ``by``: who asks (a page's browser session); RunPermissionError, a PermissionError saying why, when
        ``self.access`` does not let them (not the owner, not the teacher). None: the caller may cancel any run."""
        if by is not None:
            self.access.check(self.store.run(run_id), by, "cancel")
        self.store.request_cancel(run_id)
        self._scheduler.wake()

    def kill(self, run_id: str) -> None:
        """Stop a running job of this manager at once (no waiting for the epoch); marked cancelled."""
        check_run_id(run_id)
        self.store.status(run_id)  # an unknown run is an UnknownRunError, as for cancel()
        self._scheduler.kill(run_id)

    def wait(self, run_id: str, timeout: float | None = None) -> str:
        """Block until the run has a final status (or ``timeout`` seconds passed); return its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.02
        while True:
            status = self.store.status(run_id)
            if status in FINISHED_STATUSES or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 1.5, 0.25)

    def wait_all(self, run_ids: list[str] | None = None, timeout: float | None = None) -> dict[str, str]:
        """Wait for several runs (default: all runs this manager queued or started)."""
        ids = run_ids if run_ids is not None else self._own_active_runs()
        deadline = None if timeout is None else time.monotonic() + timeout
        return {r: self.wait(r, None if deadline is None else max(0.0, deadline - time.monotonic())) for r in ids}

    def _own_active_runs(self) -> list[str]:
        return [r["run_id"] for r in self.store.queue.active_runs() if r["manager_id"] == self.id]

    def delete(self, run_id: str, timeout: float = 30.0, by: Requester | None = None) -> None:
        """Delete a run; a queued or running one is cancelled first (JobError if it will not stop).
        ``by``: who asks, as for ``cancel`` (RunPermissionError when not allowed; nothing is changed then)."""
        if by is not None:
            self.access.check(self.store.run(run_id), by, "delete")
        if self.store.status(run_id) in ACTIVE_STATUSES:
            self.cancel(run_id)
            if self.wait(run_id, timeout) in ACTIVE_STATUSES:
                raise JobError(f"run {run_id} did not stop within {timeout} s; not deleted")
        self.store.delete(run_id)

    def rename(self, run_id: str, name: str, by: Requester | None = None) -> None:
        """Rename a run (``RunStore.rename``: ValueError for a bad name); ``by`` as for ``cancel``."""
        if by is not None:
            self.access.check(self.store.run(run_id), by, "rename")
        self.store.rename(run_id, name)

    # -- lifecycle ------------------------------------------------------------------------------
    def recover_orphans(self) -> list[str]:
        """Mark queued/running runs of dead managers as interrupted; return their ids."""
        return self._orphans()

    def shutdown(self, wait: bool = False, timeout: float = 10.0) -> None:
        """Stop the manager. ``wait``: let queued and running jobs finish first (not while the
        queue is stalled, e.g. by a full disk).

        Otherwise queued runs are marked interrupted and running ones are asked to stop after
        their epoch (killed after ``timeout`` seconds); they end as interrupted.
        """
        if self._closed:
            return
        if wait:
            while self.problem is None and self._own_active_runs():
                time.sleep(0.1)
        self._closed = True
        self._scheduler.stop_starting()
        for run_id in self._own_active_runs():
            with contextlib.suppress(UnknownRunError, StoreError):
                self.store.request_cancel(run_id, CANCEL_SHUTDOWN)
        self._scheduler.stop(timeout)
        close = getattr(self.executor, "close", None)
        if close is not None:
            close()
        with contextlib.suppress(StoreError):
            self.registry.unregister(self.id)


def shutdown_all(timeout: float = 10.0) -> int:
    """Shut down every JobManager of this process that is still open; return how many there were.

    For a host that ends without exiting (a test session, an application embedding the library): a
    manager left open keeps its scheduler thread polling the store. A process that exits needs no
    call: each manager shuts itself down at exit.
    """
    managers = [m for m in list(_LIVE_MANAGERS) if not m.closed]
    for manager in managers:
        manager.shutdown(timeout=timeout)
    return len(managers)


def _shutdown_at_exit(ref: weakref.ref) -> None:
    manager = ref()
    if manager is not None:
        with contextlib.suppress(Exception):
            manager.shutdown(timeout=5.0)
