"""``Scheduler``: the job manager's thread that starts queued runs and notices how they end.

One per ``JobManager`` (``manager.py``, the public API over it). Each tick it writes the ends the store
could not take before, reaps workers that died without writing a final status (``failed: worker died
(signal 9, SIGKILL)``; a run stopped with ``kill`` is cancelled instead), gives the database's free pages
back when the disk is short (``space.py``) and starts queued runs through the ``Executor``, at most
``max_concurrent`` at a time, each on the least used GPU. Every ``HEARTBEAT_INTERVAL`` seconds it beats
the manager's heartbeat (``liveness.py``), so that other processes can tell it is alive, and every
``ORPHAN_SWEEP_INTERVAL`` seconds it marks the runs of dead managers interrupted.

When the runs folder's disk is full, queued runs wait while less than ``MIN_FREE_BYTES`` is free; the
scheduler logs the problem once, and once more when it is over, and stores it with the waiting runs
(their ``wait_reason``; ``problem`` too).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable

from ..store import RunStore, StoreError, UnknownRunError
from ..vocabulary import CANCEL_SHUTDOWN, KILLED, RunEnd, RunStatus, stopped
from .executors import Executor, exit_description
from .liveness import ManagerRegistry
from .space import MIN_FREE_BYTES, Stall, make_room, stall_for
from .worker import failure_reason

log = logging.getLogger("fgff_core.jobs")


def gpu_count() -> int:
    """GPUs on this machine (0 without CUDA): the slots local runs are spread over."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class Scheduler:
    """Start queued runs of one manager, reap their workers and keep the manager's heartbeat.

    Args:
        store, registry, manager_id: the manager's run store, its liveness registry and its id.
        executor: where runs start; ``max_concurrent`` of them at once.
        gpus: GPUs to spread local runs over (0: none; more than one: each run is given the least used).
        recover_orphans: marks the runs of dead managers interrupted; called every ``ORPHAN_SWEEP_INTERVAL``.
        poll_interval: seconds between ticks while a run of this manager is active.
        capacity: when given (a Ray cluster's ``capacity``), ``max_concurrent`` follows it, asked at most every
            ``CAPACITY_INTERVAL`` seconds: a node that joins is used at once, one that leaves lowers the cap
            (runs already started go on).
    """

    HEARTBEAT_INTERVAL = 1.0
    ORPHAN_SWEEP_INTERVAL = 5.0
    CAPACITY_INTERVAL = 1.0
    # With no job of its own active, only the heartbeat is due: a submit or cancel wakes the scheduler at
    # once, so an idle server does not query the store ``1 / poll_interval`` times a second.
    IDLE_POLL_INTERVAL = HEARTBEAT_INTERVAL
    MIN_FREE_BYTES = MIN_FREE_BYTES  # queued runs wait while the runs folder's disk has less free space

    def __init__(self, store: RunStore, registry: ManagerRegistry, manager_id: str, executor: Executor,
                 max_concurrent: int, gpus: int, recover_orphans: Callable[[], object], *,
                 poll_interval: float = 0.05, capacity: Callable[[], int] | None = None) -> None:
        self.store, self.registry, self.manager_id = store, registry, manager_id
        self.executor, self.max_concurrent, self.gpus = executor, max_concurrent, gpus
        self._recover_orphans = recover_orphans
        self._capacity, self._capacity_asked = capacity, time.monotonic()
        self.poll_interval = poll_interval
        self._active: dict[str, int | None] = {}  # run_id -> GPU slot
        self._killed: set[str] = set()  # runs stopped with kill(): cancelled, not failed
        self._unrecorded: dict[str, RunEnd] = {}  # ends the store could not take yet
        self._problem: str | None = None
        self._problem_key: str | None = None  # the problem last logged
        self._waiting_noted: tuple[str | None, tuple[str, ...]] | None = None  # wait reason last stored
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._starting = True  # False once the manager shuts down: queued runs are no longer started
        self._last_heartbeat = self._last_sweep = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name=f"fgff-jobs-{manager_id[:6]}", daemon=True)

    @property
    def problem(self) -> str | None:
        """Why queued runs are not starting right now (e.g. a full disk), or None."""
        return self._problem

    def start(self) -> None:
        """Start the scheduler thread."""
        self._thread.start()

    def wake(self) -> None:
        """Tick now (a run was queued or asked to stop), not after the poll interval."""
        self._wake.set()

    def kill(self, run_id: str) -> None:
        """Stop a run this scheduler started at once (its worker killed); it ends cancelled. No-op otherwise."""
        with self._lock:
            if run_id in self._active:
                self.store.request_cancel(run_id)
                self.executor.kill(run_id)
                self._killed.add(run_id)
        self._wake.set()

    def stop_starting(self) -> None:
        """Start no more queued runs (the manager is shutting down)."""
        self._starting = False

    def stop(self, timeout: float) -> None:
        """Give the running workers ``timeout`` seconds to end, stop the thread, then kill the workers
        still going and mark their runs interrupted."""
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
                end = stopped(CANCEL_SHUTDOWN, how=exit_description(self.executor.reap(run_id), self.store.root))
                with contextlib.suppress(StoreError):  # a full disk: the next manager marks it
                    self.store.finish_run(run_id, end.status, end.reason)
                self._active.pop(run_id, None)

    # -- the thread --------------------------------------------------------------------------------
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
                          if r["manager_id"] == self.manager_id and r["status"] == RunStatus.QUEUED]
                noted = (problem, tuple(queued))
                if noted != self._waiting_noted:
                    self.store.queue.set_wait_reason(queued, problem)
                    self._waiting_noted = noted if problem is not None else None
        self._problem = problem  # after the waiting runs carry it, so that whoever sees it finds it stored

    def _tick(self) -> None:
        with self._lock:
            self._record_pending()
            self._reap_dead()
            if self._starting:
                make_room(self.store, self.MIN_FREE_BYTES)
                self._start_queued()
        now = time.monotonic()
        if now - self._last_heartbeat >= self.HEARTBEAT_INTERVAL:
            self.registry.heartbeat(self.manager_id)
            self._last_heartbeat = now
        if now - self._last_sweep >= self.ORPHAN_SWEEP_INTERVAL:
            self._recover_orphans()
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
                end = KILLED
            else:
                end = RunEnd(RunStatus.FAILED, exit_description(code, self.store.root))
            self._unrecorded[run_id] = end  # written now, or at a later tick if the store refuses it
        self._record_pending()

    def _follow_capacity(self) -> None:
        now = time.monotonic()
        if self._capacity is None or now - self._capacity_asked < self.CAPACITY_INTERVAL:
            return
        self._capacity_asked = now
        try:
            cap = self._capacity()
        except Exception as exc:  # noqa: BLE001 - keep the last cap; the executor says when the cluster is gone
            log.debug("job scheduler: cannot read the cluster's capacity: %s", exc)
            return
        if cap != self.max_concurrent:
            log.info("job scheduler: %d jobs at once (was %d): the cluster's nodes changed", cap, self.max_concurrent)
            self.max_concurrent = cap

    def _start_queued(self) -> None:
        self._follow_capacity()
        while len(self._active) < self.max_concurrent:
            run_id = self.store.queue.next_queued(self.manager_id)
            if run_id is None or not self.store.queue.claim(run_id, self.manager_id):
                if run_id is None:
                    return
                continue
            slot = self._free_slot()
            try:
                config = self.store.config(run_id)
                pid = self.executor.start(run_id, config, slot if self.gpus > 1 else None)
            except Exception as exc:  # noqa: BLE001 - a job that cannot start fails, the manager goes on
                self.store.finish_run(run_id, RunStatus.FAILED, f"could not start the worker: {failure_reason(exc)}",
                                      traceback.format_exc())
                continue
            self._active[run_id] = slot
            if pid is not None:  # a Ray worker's pid arrives with its node report
                self.store.queue.set_pid(run_id, pid)

    def _free_slot(self) -> int | None:
        if self.gpus == 0:
            return None
        used = list(self._active.values())
        return min(range(self.gpus), key=used.count)  # the least used GPU
