"""``JobManager``: the queue of training runs, its scheduler thread and the runs' life cycle.

The manager keeps its queue in the run store and starts queued runs, at most ``max_concurrent``
at a time, through an ``Executor`` (``executors.py``). A scheduler thread starts queued jobs,
notices workers that died without writing a final status (``failed: worker died (signal 9,
SIGKILL)``) and keeps a heartbeat (``liveness.py``) so that other processes can tell whether this
manager is alive. Reading runs is the store's job: ``jm.store.runs()``, ``jm.store.metrics(rid)``.

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
import logging
import os
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..config.schema import RunConfig
from ..store import (
    CANCEL_SHUTDOWN,
    RunStore,
    StoreError,
    UnknownRunError,
    check_run_id,
)
from ..vocabulary import ACTIVE_STATUSES, FINISHED_STATUSES, RunStatus
from .executors import (
    Executor,
    choose_executor,
    default_max_concurrent,
    exit_description,
    open_executor,
)
from .limits import Limits
from .liveness import ManagerRegistry, manager_dead
from .space import MIN_FREE_BYTES, Stall, make_room, stall_for
from .worker import failure_reason

log = logging.getLogger("fgff_core.jobs")


class JobError(RuntimeError):
    """The job manager cannot do what was asked (shut down, a run that will not stop, ...)."""


class _RunEnd(NamedTuple):
    """A final status the manager must still write (the store refused it, e.g. a full disk)."""

    status: RunStatus
    reason: str


_LIVE_MANAGERS: weakref.WeakSet = weakref.WeakSet()


class JobManager:
    """Submit training runs and follow them; the queue and all results live in ``self.store``.

    Args:
        runs_dir: data folder (default ``$FGFF_RUNS_DIR`` or ``./runs``).
        max_concurrent: jobs running at once (default ``$FGFF_MAX_CONCURRENT``, else one per GPU,
            one on a CPU-only machine; with Ray, as many as the cluster's CPUs hold).
        limits: caps checked at submit (default: ``Limits.from_env()``, no caps when unset).
        executor: where jobs run: an ``Executor``, or ``"local"`` (one process per job on this
            machine) or ``"ray"`` (a Ray cluster at ``$RAY_ADDRESS``, else a local Ray instance);
            default ``$FGFF_EXECUTOR``, else local.
        warm_worker: keep one worker process started ahead of time, so that a new run starts
            training at once instead of after the seconds it takes to import torch (default:
            ``$FGFF_WARM_WORKER``, on unless set to 0).
        heartbeat_timeout: seconds without a heartbeat after which another manager counts as dead.
    """

    HEARTBEAT_INTERVAL = 1.0
    ORPHAN_SWEEP_INTERVAL = 5.0
    # With no job of its own active, only the heartbeat is due: a submit or cancel here wakes the
    # scheduler at once, so an idle server does not query the store ``1 / poll_interval`` times a second.
    IDLE_POLL_INTERVAL = HEARTBEAT_INTERVAL
    MIN_FREE_BYTES = MIN_FREE_BYTES  # queued runs wait while the runs folder's disk has less free space

    def __init__(self, runs_dir: str | os.PathLike | None = None, max_concurrent: int | None = None,
                 limits: Limits | None = None, executor: Executor | str | None = None, *, poll_interval: float = 0.05,
                 heartbeat_timeout: float = 15.0, warm_worker: bool | None = None) -> None:
        if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int)
                                           or max_concurrent < 1):
            raise ValueError(f"max_concurrent: expected a positive integer, got {max_concurrent!r}")
        # Refused before the store creates its folder: bad $FGFF_LIMIT_* or $FGFF_EXECUTOR, a Ray that does not answer.
        self.limits = limits if limits is not None else Limits.from_env()
        choice = choose_executor(executor)
        self.id = uuid.uuid4().hex
        try:
            self.store = RunStore(runs_dir)
            self.registry = ManagerRegistry(self.store)
            self.registry.register(self.id)  # the store must take writes before any worker process is started
        except BaseException:
            choice.release()
            raise
        self.poll_interval = poll_interval
        self.heartbeat_timeout = heartbeat_timeout
        self._active: dict[str, int | None] = {}  # run_id -> GPU slot
        self._killed: set[str] = set()  # runs stopped with kill(): cancelled, not failed
        self._unrecorded: dict[str, _RunEnd] = {}  # ends the store could not take yet
        self._problem: str | None = None
        self._problem_key: str | None = None  # the problem last logged
        self._waiting_noted: tuple[str | None, tuple[str, ...]] | None = None  # wait reason last stored
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._closed = False
        try:
            _LIVE_MANAGERS.add(self)
            self.recover_orphans()
            self._gpus = self._gpu_count()
            self.executor: Executor = open_executor(choice, self.store.root, self._gpus, max_concurrent, warm_worker)
            self.max_concurrent = (max_concurrent if max_concurrent is not None
                                   else default_max_concurrent(self.executor))
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
        self._last_heartbeat = self._last_sweep = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name=f"fgff-jobs-{self.id[:6]}", daemon=True)
        self._thread.start()
        atexit.register(_shutdown_at_exit, weakref.ref(self))

    def __enter__(self) -> JobManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"JobManager({str(self.store.root)!r}, max_concurrent={self.max_concurrent})"

    @staticmethod
    def _gpu_count() -> int:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0

    @property
    def closed(self) -> bool:
        """True once ``shutdown()`` was called: the manager takes no new runs."""
        return self._closed

    @property
    def problem(self) -> str | None:
        """Why queued runs are not starting right now (e.g. a full disk), or None."""
        return self._problem

    # -- submitting and controlling --------------------------------------------------------------
    def submit(self, config: RunConfig | Mapping[str, Any], name: str | None = None, owner: str | None = None) -> str:
        """Queue a run; returns its id at once. ValueError for a bad config or a limit exceeded."""
        if self._closed:
            raise JobError("this JobManager was shut down; create a new one to submit runs")
        config = RunConfig.coerce(config)  # ValueError naming the field
        if getattr(self.executor, "local_devices", True):  # a cluster's devices are checked where the run lands
            from ..engine.device import resolve_device

            resolve_device(config.device)  # ValueError if e.g. cuda is asked for on a CPU-only machine
        self.limits.check_memory(config, local=getattr(self.executor, "local_devices", True))  # estimate vs limit
        with self._lock:  # count and insert together, so concurrent submits cannot pass the cap
            self.limits.check(config, self.store.queue.count_active(owner) if self.limits.max_queued_per_owner else 0)
            run_id = self.store.create_run(config, name=name, owner=owner, manager_id=self.id)
        self._wake.set()
        return run_id

    def resubmit(self, run_id: str, name: str | None = None, owner: str | None = None) -> str:
        """Queue a new run with the config of ``run_id`` (e.g. an interrupted one)."""
        old = self.store.run(run_id)
        return self.submit(self.store.config(run_id), name=name or old["name"],
                           owner=owner if owner is not None else old["owner"])

    def cancel(self, run_id: str) -> None:
        """Cancel a queued run at once or a running one after its current epoch; no-op when finished."""
        self.store.request_cancel(run_id)
        self._wake.set()

    def kill(self, run_id: str) -> None:
        """Stop a running job of this manager at once (no waiting for the epoch); marked cancelled."""
        check_run_id(run_id)
        self.store.status(run_id)  # an unknown run is an UnknownRunError, as for cancel()
        with self._lock:
            if run_id in self._active:
                self.store.request_cancel(run_id)
                self.executor.kill(run_id)
                self._killed.add(run_id)
        self._wake.set()

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

    def delete(self, run_id: str, timeout: float = 30.0) -> None:
        """Delete a run; a queued or running one is cancelled first (JobError if it will not stop)."""
        if self.store.status(run_id) in ACTIVE_STATUSES:
            self.cancel(run_id)
            if self.wait(run_id, timeout) in ACTIVE_STATUSES:
                raise JobError(f"run {run_id} did not stop within {timeout} s; not deleted")
        self.store.delete(run_id)

    # -- lifecycle ------------------------------------------------------------------------------
    def shutdown(self, wait: bool = False, timeout: float = 10.0) -> None:
        """Stop the manager. ``wait``: let queued and running jobs finish first (not while the
        queue is stalled, e.g. by a full disk).

        Otherwise queued runs are marked interrupted and running ones are asked to stop after
        their epoch (killed after ``timeout`` seconds); they end as interrupted.
        """
        if self._closed:
            return
        if wait:
            while self._problem is None and self._own_active_runs():
                time.sleep(0.1)
        self._closed = True
        for run_id in self._own_active_runs():
            with contextlib.suppress(UnknownRunError, StoreError):
                self.store.request_cancel(run_id, CANCEL_SHUTDOWN)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not any(self.executor.is_alive(r) for r in self._active):
                    break
            time.sleep(0.05)
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=10)
        with self._lock:
            for run_id in list(self._active):
                if self.executor.is_alive(run_id):
                    self.executor.kill(run_id)
                code = self.executor.reap(run_id)
                with contextlib.suppress(StoreError):  # a full disk: the next manager marks it
                    self.store.finish_run(run_id, RunStatus.INTERRUPTED, "the server stopped while this run was "
                                          f"running ({exit_description(code, self.store.root)}); resubmit it "
                                          "to train again")
                self._active.pop(run_id, None)
        close = getattr(self.executor, "close", None)
        if close is not None:
            close()
        with contextlib.suppress(StoreError):
            self.registry.unregister(self.id)

    def recover_orphans(self) -> list[str]:
        """Mark queued/running runs of dead managers as interrupted; return their ids."""
        managers = {m.manager_id: m for m in self.registry.managers()}
        now = time.time()
        live_here = {m.id for m in list(_LIVE_MANAGERS) if not m.closed}
        marked = []
        for run in self.store.queue.active_runs():
            owner_id = run["manager_id"]
            if owner_id == self.id or (owner_id in live_here):
                continue
            m = managers.get(owner_id)
            if m is not None and not manager_dead(m, now, live_here, self.heartbeat_timeout):
                continue
            if run["status"] == RunStatus.QUEUED:
                why = "the server stopped before this run started; resubmit it"
            else:
                why = "the server stopped while this run was running (found on restart); resubmit it to train again"
            if self.store.finish_run(run["run_id"], RunStatus.INTERRUPTED, why):
                marked.append(run["run_id"])
        for m in managers.values():  # forget dead managers
            if m.manager_id != self.id and manager_dead(m, now, live_here, self.heartbeat_timeout):
                with contextlib.suppress(StoreError):
                    self.registry.unregister(m.manager_id)
        return marked

    # -- scheduler thread ---------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            stall = None
            try:
                self._tick()
            except Exception as error:  # noqa: BLE001 - the scheduler must survive a bad tick (e.g. a locked DB)
                stall = stall_for(error, self.store, self.MIN_FREE_BYTES)
            self._note_problem(stall)
            idle = not self._active and not self._unrecorded and self._problem is None
            self._wake.wait(self.IDLE_POLL_INTERVAL if idle else self.poll_interval)
            self._wake.clear()

    def _note_problem(self, stall: Stall | None) -> None:
        """Remember why the queue is stalled, log it only when the problem changes (not on every tick,
        nor as the free space it names changes), and store it with the waiting runs (retried until
        the store takes it)."""
        problem = None if stall is None else stall.message
        if (None if stall is None else stall.key) != self._problem_key:
            if stall is None:
                log.warning("job scheduler recovered (was: %s); queued runs start again", self._problem)
            else:
                exc = stall.exc
                log.error("job scheduler: %s; queued runs wait until this is resolved", problem,
                          exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None)
            self._problem_key = None if stall is None else stall.key
        if problem is not None or self._waiting_noted:
            with contextlib.suppress(StoreError):  # a full disk may refuse it: tried again at the next tick
                queued = [r["run_id"] for r in self.store.queue.active_runs()
                          if r["manager_id"] == self.id and r["status"] == RunStatus.QUEUED]
                noted = (problem, tuple(queued))
                if noted != self._waiting_noted:
                    self.store.queue.set_wait_reason(queued, problem)
                    self._waiting_noted = noted if problem is not None else None
        self._problem = problem  # after the waiting runs carry it, so that whoever sees it finds it stored

    def _tick(self) -> None:
        with self._lock:
            self._record_pending()
            self._reap_dead()
            if not self._closed:
                make_room(self.store, self.MIN_FREE_BYTES)
                self._start_queued()
        now = time.monotonic()
        if now - self._last_heartbeat >= self.HEARTBEAT_INTERVAL:
            self.registry.heartbeat(self.id)
            self._last_heartbeat = now
        if now - self._last_sweep >= self.ORPHAN_SWEEP_INTERVAL:
            self.recover_orphans()
            self._last_sweep = now

    def _record_pending(self) -> None:
        for run_id, end in list(self._unrecorded.items()):
            with contextlib.suppress(UnknownRunError):
                self.store.finish_run(run_id, end.status, end.reason)
            self._unrecorded.pop(run_id)

    def _reap_dead(self) -> None:
        for run_id in list(self._active):
            if self.executor.is_alive(run_id):
                continue
            code = self.executor.reap(run_id)
            self._active.pop(run_id)
            self.store.discard_unrecorded_files(run_id)  # a worker that died mid-write; before the row needs room
            if run_id in self._killed:
                self._killed.discard(run_id)
                end = _RunEnd(RunStatus.CANCELLED, "killed on request before the epoch ended")
            else:
                end = _RunEnd(RunStatus.FAILED, exit_description(code, self.store.root))
            self._unrecorded[run_id] = end  # written now, or at a later tick if the store refuses it
        self._record_pending()

    def _start_queued(self) -> None:
        while len(self._active) < self.max_concurrent:
            run_id = self.store.queue.next_queued(self.id)
            if run_id is None or not self.store.queue.claim(run_id, self.id):
                if run_id is None:
                    return
                continue
            slot = self._free_slot()
            try:
                config = self.store.config(run_id)
                pid = self.executor.start(run_id, config, slot if self._gpus > 1 else None)
            except Exception as exc:  # noqa: BLE001 - a job that cannot start fails, the manager goes on
                self.store.finish_run(run_id, RunStatus.FAILED, f"could not start the worker: {failure_reason(exc)}",
                                      traceback.format_exc())
                continue
            self._active[run_id] = slot
            if pid is not None:  # a Ray worker's pid arrives with its node report
                self.store.queue.set_pid(run_id, pid)

    def _free_slot(self) -> int | None:
        if self._gpus == 0:
            return None
        used = list(self._active.values())
        return min(range(self._gpus), key=used.count)  # the least used GPU


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
