"""Run training jobs in the background: submit, watch, cancel, find again after a restart.

``JobManager`` keeps a queue in the run store (``store.py``) and starts queued runs, at most
``max_concurrent`` at a time, through an ``Executor``. The local executor gives every job its
own worker process (multiprocessing "spawn"), so a crash, a NaN or running out of memory in one
job never takes down the app or another job. A scheduler thread starts queued jobs, notices
workers that died without writing a final status (``failed: worker died (signal 9, SIGKILL)``)
and keeps a heartbeat so that other processes can tell whether this manager is alive.

Statuses: queued -> running -> done | failed | cancelled | interrupted. ``interrupted`` means the
server stopped while the run was queued or running: ``shutdown()`` marks its own runs so, and a
new manager marks the runs of managers that died (no heartbeat, or a dead process) so when it
starts. Interrupted runs are not re-queued: silently starting old jobs after a restart would
surprise a shared server's users; ``resubmit(run_id)`` starts a run again with the same config.

Scale-out: the manager talks to its executor through four calls (``Executor``: start, is_alive,
kill, reap). A Ray executor would implement them with a remote task per run (``num_gpus=1``)
that runs ``execute_run`` with a sink sending events back to the head node, which writes them
with ``RunWriter``; nothing else changes. SQLite stays on one machine: remote workers must not
write to it over a network file system.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import multiprocessing
import os
import signal
import socket
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .config import RunConfig
from .data import DATASETS, DatasetNotFoundError
from .events import RunFinished
from .runtime import retain_freed_memory
from .store import (
    ACTIVE_STATUSES,
    CANCEL_SHUTDOWN,
    CANCEL_USER,
    CHECKPOINT_NAME,
    FINAL_COLUMNS,
    FINAL_STATUSES,
    RunStore,
    RunWriter,
    StoreError,
    UnknownRunError,
    check_run_id,
)

__all__ = ["JobManager", "Limits", "JobError", "Executor", "LocalProcessExecutor", "execute_run",
           "failure_reason", "RunStore", "StoreError", "UnknownRunError"]

MAX_CONCURRENT_ENV = "FGFF_MAX_CONCURRENT"
WARM_WORKER_ENV = "FGFF_WARM_WORKER"  # 0: start each worker only when its job starts


class JobError(RuntimeError):
    """The job manager cannot do what was asked (shut down, a run that will not stop, ...)."""


class NonFiniteLossError(ArithmeticError):
    """Training produced a NaN or infinite loss."""


# -- limits for shared servers -------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """Caps checked at submit (None: no cap). Set them on a shared server, e.g. from the environment.

    ``max_train_subset`` caps the training samples of datasets that are not embedded (digits is
    small and always allowed): such runs must set ``train_subset`` to at most this many.
    ``max_queued_per_owner`` counts an owner's (user's or session's) queued and running jobs.
    """

    max_units: int | None = None
    max_layers: int | None = None
    max_epochs: int | None = None
    max_queued_per_owner: int | None = None
    max_train_subset: int | None = None

    ENV_PREFIX = "FGFF_LIMIT_"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"limits.{f.name}: expected a positive integer or None, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Read ``FGFF_LIMIT_MAX_UNITS``, ``FGFF_LIMIT_MAX_LAYERS``, ... (unset or empty: no cap)."""
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = environ.get(cls.ENV_PREFIX + f.name.upper(), "").strip()
            if raw:
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ValueError(f"{cls.ENV_PREFIX}{f.name.upper()}: expected an integer, got {raw!r}") from None
        return cls(**values)

    def check(self, config: RunConfig, active_for_owner: int = 0) -> None:
        """Raise ValueError naming the field and the cap when ``config`` exceeds a limit."""
        if self.max_layers is not None and len(config.layers) > self.max_layers:
            raise ValueError(f"layers: {len(config.layers)} layers is over this server's limit of "
                             f"{self.max_layers} (max_layers)")
        if self.max_units is not None and max(config.layers) > self.max_units:
            raise ValueError(f"layers: {max(config.layers)} units in a layer is over this server's limit of "
                             f"{self.max_units} (max_units)")
        if self.max_epochs is not None and config.epochs > self.max_epochs:
            raise ValueError(f"epochs: {config.epochs} is over this server's limit of {self.max_epochs} (max_epochs)")
        if self.max_train_subset is not None and not DATASETS[config.dataset].embedded:
            n = config.train_subset
            if n == 0 or n > self.max_train_subset:
                asked = "all training samples" if n == 0 else f"{n} training samples"
                raise ValueError(f"train_subset: {asked} of {config.dataset} is over this server's limit of "
                                 f"{self.max_train_subset} (max_train_subset); set train_subset to at most "
                                 f"{self.max_train_subset}")
        if self.max_queued_per_owner is not None and active_for_owner >= self.max_queued_per_owner:
            raise ValueError(f"owner: {active_for_owner} jobs already queued or running, this server allows "
                             f"{self.max_queued_per_owner} per user (max_queued_per_owner); wait or cancel one")


# -- running one job -------------------------------------------------------------------------------
def failure_reason(exc: BaseException) -> str:
    """A readable reason for the runs table (the traceback goes to ``error_detail``)."""
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    if isinstance(exc, NonFiniteLossError | DatasetNotFoundError):
        return str(exc)
    if (oom and isinstance(exc, oom)) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory"
        return (f"GPU out of memory: {first[:300]}. Hint: use fewer or smaller layers, a minibatch "
                f"(batch_size), a smaller eval_chunk or train_subset, or run fewer jobs at once (max_concurrent).")
    if isinstance(exc, MemoryError):
        return ("out of host memory (RAM). Hint: use a smaller train_subset, smaller layers or run fewer jobs "
                "at once (max_concurrent).")
    if isinstance(exc, ValueError):
        return f"invalid setting: {exc}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def execute_run(config: RunConfig, writer: RunWriter, should_stop: Callable[[], bool],
                checkpoint_path: Path | None) -> RunFinished:
    """Train ``config``, writing every event through ``writer``; return the final event.

    The checkpoint is saved at the end, also when the run was stopped early (status "stopped").

    Raises ``NonFiniteLossError`` at the first NaN/inf loss (its epoch row is written first).
    Executors call this: the local one in a worker process, a Ray one in a remote task.
    """
    from .checkpoint import save_checkpoint
    from .training import Trainer

    trainer = Trainer(config)
    n_layers = len(config.layers)
    for event in trainer.run(should_stop=should_stop):
        if event.kind == "started":
            writer.started(event.device, event.n_params, event.epoch_events)
        elif event.kind == "epoch":
            writer.epoch(event)
            if not math.isfinite(event.loss):
                where = "" if config.algo == "bp" else f"layer {event.layer + 1} of {n_layers}, "
                raise NonFiniteLossError(f"{'NaN' if math.isnan(event.loss) else 'infinite'} loss at {where}epoch "
                                         f"{event.epoch}. Hint: lower lr (now {config.lr}) or sig_lr, or raise "
                                         f"the threshold.")
        elif event.kind == "eval":
            writer.evaluation(event)
        elif event.kind == "finished":
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, trainer.model, config)
            return event
    raise RuntimeError("training ended without a finished event")  # pragma: no cover


def worker_main(runs_dir: str, run_id: str, gpu: int | None = None,
                initializer: Callable[[], None] | None = None, threads: int | None = None) -> None:
    """Entry point of a worker process: run one job and record how it ended."""
    if gpu is not None:  # before CUDA is initialised in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    retain_freed_memory()  # one job per process: keep freed memory for the next epoch's tensors
    parent = os.getppid()
    store = RunStore(runs_dir)
    writer = store.writer(run_id)
    stop_reason: list[str] = []

    def should_stop() -> bool:
        if os.getppid() != parent:
            stop_reason.append("interrupted")  # the manager's process died
            return True
        flag = writer.cancel_flag()
        if flag:
            stop_reason.append("cancelled" if flag == CANCEL_USER else "interrupted")
            return True
        return False

    try:
        config = store.config(run_id)
        if should_stop():
            writer.finish(stop_reason[0], error=_stop_message(stop_reason[0]))
            return
        import torch

        if threads:
            torch.set_num_threads(threads)
        if initializer is not None:
            initializer()
        if gpu is not None and config.device in ("auto", "cuda"):
            writer.con.execute("UPDATE runs SET device = ? WHERE run_id = ?", (f"cuda (GPU {gpu})", run_id))
        checkpoint = store.run_dir(run_id, create=True) / CHECKPOINT_NAME
        result = execute_run(config, writer, should_stop, checkpoint)
        final = {c: getattr(result, c) for c in FINAL_COLUMNS}
        if result.status == "done":
            writer.finish("done", final=final, checkpoint=checkpoint)
        else:
            status = stop_reason[0] if stop_reason else "cancelled"
            writer.finish(status, final=final, checkpoint=checkpoint if checkpoint.exists() else None,
                          error=_stop_message(status))
    except BaseException as exc:  # noqa: BLE001 - every failure must end up in the store
        with contextlib.suppress(Exception):
            writer.finish("failed", error=failure_reason(exc), error_detail=traceback.format_exc())
        if not isinstance(exc, Exception):
            raise
    finally:
        writer.close()


def _stop_message(status: str) -> str | None:
    if status == "interrupted":
        return "the server stopped while this run was running; resubmit it to train again"
    return None


# -- executors ------------------------------------------------------------------------------------
class Executor(Protocol):
    """Where jobs run. ``LocalProcessExecutor`` is the default; a Ray backend would be another."""

    def start(self, run_id: str, config: RunConfig, slot: int | None) -> int | None:
        """Start the job (the worker reads the config from the store); return a pid if there is one.

        ``slot`` is the GPU index to use (None: let the config's device decide).
        """

    def is_alive(self, run_id: str) -> bool: ...

    def kill(self, run_id: str) -> None:
        """Stop the job at once (the run is then marked by the manager)."""

    def reap(self, run_id: str) -> int | None:
        """Forget a job that is no longer alive; return its exit code (negative: killed by that signal)."""


@contextlib.contextmanager
def _main_script_hidden():
    """Start a spawned worker without re-running the parent's ``__main__`` script in it.

    "spawn" re-imports ``sys.modules['__main__']`` from its file in the child. Under ``streamlit
    run`` (and AppTest) that module is the app or page script, so every worker would run the app
    (and start a JobManager of its own). A stand-in main module with no file avoids it.
    """
    import sys
    import types

    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _standby_main(conn, initializer: Callable[[], None] | None) -> None:
    """A worker process started ahead of time: import the engine, then wait for one job.

    Importing torch and loading the embedded data take seconds; doing it before the user presses
    Start is what makes a new run show its first epoch within a second or two. The process still
    runs exactly one job, so jobs stay isolated from each other.
    """
    from .data import load_dataset
    from .training import train

    digits = load_dataset("digits")  # the default dataset, cached in this process
    # One tiny epoch runs torch's lazy first-call set-up (kernels, allocator) before a job needs it.
    train({"layers": (8,), "epochs": 1, "eval_every": 0, "device": "cpu"}, digits)
    try:
        job = conn.recv()
    except (EOFError, OSError):  # the manager went away before giving us a job
        return
    finally:
        conn.close()
    if job is not None:
        runs_dir, run_id, gpu, threads = job
        worker_main(runs_dir, run_id, gpu, initializer, threads)


class LocalProcessExecutor:
    """One spawned process per job on this machine.

    With ``warm_worker`` (the default) one process is kept started and waiting, with the engine
    imported, and the next job goes to it; a new standby is started at once for the job after.
    """

    def __init__(self, runs_dir: Path, initializer: Callable[[], None] | None = None,
                 threads_per_job: int | None = None, warm_worker: bool = True) -> None:
        self.runs_dir = Path(runs_dir)
        self.initializer = initializer  # runs in the worker before training; must be picklable (importable)
        self.threads_per_job = threads_per_job
        self.warm_worker = warm_worker
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[str, multiprocessing.process.BaseProcess] = {}
        self._standby: tuple[multiprocessing.process.BaseProcess, Any] | None = None
        if warm_worker:
            self._start_standby()

    def _start_standby(self) -> None:
        receive, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_standby_main, name="fgff-job-standby", daemon=True,
                                 args=(receive, self.initializer))
        with _main_script_hidden():
            proc.start()
        receive.close()  # the child's end; closing ours lets the child see EOF if we go away
        self._standby = (proc, send)

    def _take_standby(self):
        standby, self._standby = self._standby, None
        if standby is not None and standby[0].is_alive():
            return standby
        if standby is not None:
            standby[1].close()
        return None

    def start(self, run_id: str, config: RunConfig, slot: int | None) -> int | None:
        standby = self._take_standby() if self.warm_worker else None
        if standby is not None:
            proc, send = standby
            send.send((str(self.runs_dir), run_id, slot, self.threads_per_job))
            send.close()
        else:
            proc = self._ctx.Process(target=worker_main, name=f"fgff-job-{run_id}", daemon=True,
                                     args=(str(self.runs_dir), run_id, slot, self.initializer,
                                           self.threads_per_job))
            with _main_script_hidden():
                proc.start()
        self._procs[run_id] = proc
        if self.warm_worker:
            self._start_standby()  # for the next job
        return proc.pid

    def close(self) -> None:
        """Stop the standby process, if any (running jobs are the manager's business)."""
        standby, self._standby = self._standby, None
        if standby is not None:
            proc, send = standby
            with contextlib.suppress(OSError):
                send.send(None)
            send.close()
            proc.join(timeout=2)
            if proc.is_alive():  # still importing torch: it has nothing to finish
                proc.kill()
                proc.join(timeout=5)

    def is_alive(self, run_id: str) -> bool:
        proc = self._procs.get(run_id)
        return proc is not None and proc.is_alive()

    def kill(self, run_id: str) -> None:
        proc = self._procs.get(run_id)
        if proc is not None and proc.is_alive():
            proc.kill()

    def reap(self, run_id: str) -> int | None:
        proc = self._procs.pop(run_id, None)
        if proc is None:
            return None
        proc.join(timeout=5)
        code = proc.exitcode
        with contextlib.suppress(ValueError):
            proc.close()
        return code


def _exit_description(code: int | None) -> str:
    if code is None:
        return "worker vanished"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        hint = " (killed, e.g. by the out-of-memory killer or kill -9)" if -code == signal.SIGKILL else ""
        return f"worker died (signal {-code}, {name}){hint}"
    return f"worker exited with code {code} without reporting a result"


def _default_max_concurrent() -> int:
    env = os.environ.get(MAX_CONCURRENT_ENV, "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"{MAX_CONCURRENT_ENV}: expected a positive integer, got {env!r}") from None
        if value < 1:
            raise ValueError(f"{MAX_CONCURRENT_ENV}: expected a positive integer, got {env!r}")
        return value
    import torch

    return max(1, torch.cuda.device_count() if torch.cuda.is_available() else 1)


_LIVE_MANAGERS: weakref.WeakSet = weakref.WeakSet()


# -- the manager --------------------------------------------------------------------------------------
class JobManager:
    """Submit training runs and follow them; the queue and all results live in the run store.

    Args:
        runs_dir: data folder (default ``$FGFF_RUNS_DIR`` or ``./runs``).
        max_concurrent: jobs running at once (default ``$FGFF_MAX_CONCURRENT``, else one per GPU,
            one on a CPU-only machine).
        limits: caps checked at submit (default: ``Limits.from_env()``, no caps when unset).
        executor: where jobs run (default: ``LocalProcessExecutor``).
        warm_worker: keep one worker process started ahead of time, so that a new run starts
            training at once instead of after the seconds it takes to import torch (default:
            ``$FGFF_WARM_WORKER``, on unless set to 0).
        heartbeat_timeout: seconds without a heartbeat after which another manager counts as dead.
    """

    HEARTBEAT_INTERVAL = 1.0
    ORPHAN_SWEEP_INTERVAL = 5.0

    def __init__(self, runs_dir: str | os.PathLike | None = None, max_concurrent: int | None = None,
                 limits: Limits | None = None, executor: Executor | None = None, *, poll_interval: float = 0.05,
                 heartbeat_timeout: float = 15.0, warm_worker: bool | None = None) -> None:
        if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int)
                                           or max_concurrent < 1):
            raise ValueError(f"max_concurrent: expected a positive integer, got {max_concurrent!r}")
        self.store = RunStore(runs_dir)
        self.max_concurrent = max_concurrent if max_concurrent is not None else _default_max_concurrent()
        self.limits = limits if limits is not None else Limits.from_env()
        self._gpus = self._gpu_count()
        threads = None
        if self._gpus == 0 and self.max_concurrent > 1:  # share the CPU cores between concurrent jobs
            threads = max(1, (os.cpu_count() or 1) // self.max_concurrent)
        if warm_worker is None:
            warm_worker = os.environ.get(WARM_WORKER_ENV, "1").strip() not in ("0", "false", "no")
        self.executor: Executor = executor or LocalProcessExecutor(self.store.root, threads_per_job=threads,
                                                                   warm_worker=warm_worker)
        self.poll_interval = poll_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.id = uuid.uuid4().hex
        self._active: dict[str, int | None] = {}  # run_id -> GPU slot
        self._killed: set[str] = set()  # runs stopped with kill(): cancelled, not failed
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._closed = False
        self.store.register_manager(self.id)
        _LIVE_MANAGERS.add(self)
        self.recover_orphans()
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

    # -- submitting and controlling --------------------------------------------------------------
    def submit(self, config: RunConfig | Mapping[str, Any], name: str | None = None, owner: str | None = None) -> str:
        """Queue a run; returns its id at once. ValueError for a bad config or a limit exceeded."""
        if self._closed:
            raise JobError("this JobManager was shut down; create a new one to submit runs")
        config = RunConfig.coerce(config)  # ValueError naming the field
        from .training import resolve_device

        resolve_device(config.device)  # ValueError if e.g. cuda is asked for on a CPU-only machine
        with self._lock:  # count and insert together, so concurrent submits cannot pass the cap
            self.limits.check(config, self.store.count_active(owner) if self.limits.max_queued_per_owner else 0)
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
        with self._lock:
            if run_id in self._active:
                self.store.request_cancel(run_id)
                self.executor.kill(run_id)
                self._killed.add(run_id)
        self._wake.set()

    def status(self, run_id: str) -> str:
        return self.store.status(run_id)

    def wait(self, run_id: str, timeout: float | None = None) -> str:
        """Block until the run has a final status (or ``timeout`` seconds passed); return its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.02
        while True:
            status = self.store.status(run_id)
            if status in FINAL_STATUSES or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 1.5, 0.25)

    def wait_all(self, run_ids: list[str] | None = None, timeout: float | None = None) -> dict[str, str]:
        """Wait for several runs (default: all runs this manager queued or started)."""
        ids = run_ids if run_ids is not None else [r["run_id"] for r in self.store.active_runs()
                                                   if r["manager_id"] == self.id]
        deadline = None if timeout is None else time.monotonic() + timeout
        return {r: self.wait(r, None if deadline is None else max(0.0, deadline - time.monotonic())) for r in ids}

    # -- reading (delegated to the store) --------------------------------------------------------
    def metrics(self, run_id: str) -> pd.DataFrame:
        return self.store.metrics(run_id)

    def metrics_long(self, run_ids: list[str]) -> pd.DataFrame:
        return self.store.metrics_long(run_ids)

    def runs(self) -> pd.DataFrame:
        return self.store.runs()

    def run(self, run_id: str) -> dict[str, Any]:
        return self.store.run(run_id)

    def config(self, run_id: str) -> RunConfig:
        return self.store.config(run_id)

    def significance(self, run_id: str) -> list[np.ndarray]:
        return self.store.significance(run_id)

    def checkpoint_path(self, run_id: str) -> Path | None:
        return self.store.checkpoint_path(run_id)

    def load_model(self, run_id: str):
        """(model, config) from the run's checkpoint; StoreError when the run has none (yet)."""
        from .checkpoint import load_checkpoint

        path = self.store.checkpoint_path(run_id)
        if path is None:
            raise StoreError(f"run {run_id} has no checkpoint (status {self.store.status(run_id)}); "
                             "checkpoints are written when a run ends")
        return load_checkpoint(path)

    def artifact_path(self, run_id: str, name: str) -> Path:
        return self.store.artifact_path(run_id, name)

    def rename(self, run_id: str, name: str) -> None:
        self.store.rename(run_id, name)

    def delete(self, run_id: str, timeout: float = 30.0) -> None:
        """Delete a run; a queued or running one is cancelled first (JobError if it will not stop)."""
        if self.store.status(run_id) in ACTIVE_STATUSES:
            self.cancel(run_id)
            if self.wait(run_id, timeout) in ACTIVE_STATUSES:
                raise JobError(f"run {run_id} did not stop within {timeout} s; not deleted")
        self.store.delete(run_id)

    def export(self, run_id: str, dest_dir: str | os.PathLike) -> Path:
        return self.store.export(run_id, dest_dir)

    def import_checkpoint(self, path: str | os.PathLike, name: str | None = None, owner: str | None = None) -> str:
        return self.store.import_checkpoint(path, name=name, owner=owner)

    # -- lifecycle ------------------------------------------------------------------------------
    def shutdown(self, wait: bool = False, timeout: float = 10.0) -> None:
        """Stop the manager. ``wait``: let queued and running jobs finish first.

        Otherwise queued runs are marked interrupted and running ones are asked to stop after
        their epoch (killed after ``timeout`` seconds); they end as interrupted.
        """
        if self._closed:
            return
        self._closed = True
        if wait:
            self.wait_all()
        for run in self.store.active_runs():
            if run["manager_id"] == self.id:
                with contextlib.suppress(UnknownRunError, StoreError):
                    self.store.request_cancel(run["run_id"], CANCEL_SHUTDOWN)
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
                self.store.finish_run(run_id, "interrupted", f"the server stopped while this run was running "
                                      f"({_exit_description(code)}); resubmit it to train again")
                self._active.pop(run_id, None)
        close = getattr(self.executor, "close", None)
        if close is not None:
            close()
        with contextlib.suppress(StoreError):
            self.store.unregister_manager(self.id)

    def recover_orphans(self) -> list[str]:
        """Mark queued/running runs of dead managers as interrupted; return their ids."""
        managers = {m["manager_id"]: m for m in self.store.managers()}
        now = time.time()
        live_here = {m.id for m in list(_LIVE_MANAGERS) if not m._closed}
        marked = []
        for run in self.store.active_runs():
            owner_id = run["manager_id"]
            if owner_id == self.id or (owner_id in live_here):
                continue
            m = managers.get(owner_id)
            if m is not None and not self._manager_dead(m, now, live_here):
                continue
            if run["status"] == "queued":
                why = "the server stopped before this run started; resubmit it"
            else:
                why = "the server stopped while this run was running (found on restart); resubmit it to train again"
            if self.store.finish_run(run["run_id"], "interrupted", why):
                marked.append(run["run_id"])
        for m in managers.values():  # forget dead managers
            if m["manager_id"] != self.id and self._manager_dead(m, now, live_here):
                with contextlib.suppress(StoreError):
                    self.store.unregister_manager(m["manager_id"])
        return marked

    def _manager_dead(self, m: dict[str, Any], now: float, live_here: set[str]) -> bool:
        """Dead: its process is gone (same host), or no heartbeat for ``heartbeat_timeout`` seconds.

        A live process with the recorded pid on this host is most likely the manager itself,
        slowed down; only a much longer silence (pid reused by another program) counts then.
        """
        silent = now - m["heartbeat"]
        if m["host"] == socket.gethostname():
            if m["pid"] == os.getpid():
                return m["manager_id"] not in live_here  # an earlier process with our pid (containers)
            if not _pid_alive(m["pid"]):
                return True
            return silent > 4 * self.heartbeat_timeout
        return silent > self.heartbeat_timeout

    # -- scheduler thread ---------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - the scheduler must survive a bad tick (e.g. a locked DB)
                traceback.print_exc()
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _tick(self) -> None:
        with self._lock:
            self._reap_dead()
            if not self._closed:
                self._start_queued()
        now = time.monotonic()
        if now - self._last_heartbeat >= self.HEARTBEAT_INTERVAL:
            self.store.heartbeat(self.id)
            self._last_heartbeat = now
        if now - self._last_sweep >= self.ORPHAN_SWEEP_INTERVAL:
            self.recover_orphans()
            self._last_sweep = now

    def _reap_dead(self) -> None:
        for run_id in list(self._active):
            if self.executor.is_alive(run_id):
                continue
            code = self.executor.reap(run_id)
            self._active.pop(run_id)
            with contextlib.suppress(UnknownRunError):
                if run_id in self._killed:
                    self._killed.discard(run_id)
                    self.store.finish_run(run_id, "cancelled", "killed on request before the epoch ended")
                else:
                    self.store.finish_run(run_id, "failed", _exit_description(code))  # no-op if it reported

    def _start_queued(self) -> None:
        while len(self._active) < self.max_concurrent:
            run_id = self.store.next_queued(self.id)
            if run_id is None or not self.store.claim(run_id, self.id):
                if run_id is None:
                    return
                continue
            slot = self._free_slot()
            try:
                config = self.store.config(run_id)
                pid = self.executor.start(run_id, config, slot if self._gpus > 1 else None)
            except Exception as exc:  # noqa: BLE001 - a job that cannot start fails, the manager goes on
                self.store.finish_run(run_id, "failed", f"could not start the worker: {failure_reason(exc)}",
                                      traceback.format_exc())
                continue
            self._active[run_id] = slot
            self.store.set_pid(run_id, pid)

    def _free_slot(self) -> int | None:
        if self._gpus == 0:
            return None
        used = list(self._active.values())
        return min(range(self._gpus), key=used.count)  # the least used GPU


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _shutdown_at_exit(ref: weakref.ref) -> None:
    manager = ref()
    if manager is not None:
        with contextlib.suppress(Exception):
            manager.shutdown(timeout=5.0)
