"""Where jobs run: the ``Executor`` protocol the manager uses, the local one-process-per-job executor,
and the choice between it and Ray (``$FGFF_EXECUTOR``, ``$FGFF_MAX_CONCURRENT``, ``$FGFF_WARM_WORKER``).

The Ray executor (``ray_host.py``; its worker side is ``ray_worker.py``) implements the same protocol
for a cluster.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from ..config.schema import RunConfig
from ..config.values import check_choice
from ..data.loading import dataset_arguments
from .worker import EXIT_DISK_FULL, WorkerJob, end_process_after, standby_main, worker_main

MAX_CONCURRENT_ENV = "FGFF_MAX_CONCURRENT"
EXECUTOR_ENV = "FGFF_EXECUTOR"  # local (default) or ray
EXECUTORS = ("local", "ray")
WARM_WORKER_ENV = "FGFF_WARM_WORKER"  # 0: start each worker only when its job starts
_EXECUTOR_METHODS = ("start", "is_alive", "kill", "reap")  # the Executor protocol


class Executor(Protocol):
    """Where jobs run. ``LocalProcessExecutor`` is the default; the Ray executor is another."""

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




class LocalProcessExecutor:
    """One spawned process per job on this machine.

    With ``warm_worker`` (the default) ``pool_size`` processes (one per job slot) are kept started and
    waiting, with the engine imported, and each new job goes to one of them, used once; a new standby is
    started at once in its place, with the dataset of the job just handed out loaded ahead (``preload``:
    ``worker.standby_main``). So runs that start together (a class pressing Start) all skip the import.
    """

    def __init__(self, runs_dir: Path, initializer: Callable[[], None] | None = None,
                 threads_per_job: int | None = None, warm_worker: bool = True, pool_size: int = 1) -> None:
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size: expected a positive integer, got {pool_size!r}")
        self.runs_dir = Path(runs_dir)
        self.initializer = initializer  # runs in the worker before training; must be picklable (importable)
        self.threads_per_job = threads_per_job
        self.warm_worker = warm_worker
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[str, multiprocessing.process.BaseProcess] = {}
        self.pool_size = pool_size
        self._standbys: collections.deque[tuple[multiprocessing.process.BaseProcess, Any]] = collections.deque()
        self.preload: dict[str, Any] | None = None  # load_dataset arguments the next standby loads ahead
        if warm_worker:
            self._fill_pool()

    def _fill_pool(self) -> None:
        for _ in range(self.pool_size - len(self._standbys)):
            self._start_standby()

    def _start_standby(self) -> None:
        receive, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=end_process_after, name="fgff-job-standby", daemon=True,
                                 args=(standby_main, receive, self.initializer, self.preload))
        with _main_script_hidden():
            proc.start()
        receive.close()  # the child's end; closing ours lets the child see EOF if we go away
        self._standbys.append((proc, send))

    def _take_standby(self):
        """The oldest live standby (the likeliest to be ready), or None; dead ones are dropped."""
        while self._standbys:
            proc, send = self._standbys.popleft()
            if proc.is_alive():
                return proc, send
            send.close()
        return None

    def start(self, run_id: str, config: RunConfig, slot: int | None) -> int | None:
        standby = self._take_standby() if self.warm_worker else None
        if standby is not None:
            proc, send = standby
            send.send(WorkerJob(str(self.runs_dir), run_id, slot, self.threads_per_job))
            send.close()
        else:
            proc = self._ctx.Process(target=end_process_after, name=f"fgff-job-{run_id}", daemon=True,
                                     args=(worker_main, str(self.runs_dir), run_id, slot, self.initializer,
                                           self.threads_per_job))
            with _main_script_hidden():
                proc.start()
        self._procs[run_id] = proc
        if self.warm_worker:
            self.preload = preload_arguments(config)
            self._fill_pool()  # for the next job
        return proc.pid

    def close(self) -> None:
        """Stop the standby processes, if any (running jobs are the manager's business)."""
        standbys, self._standbys = list(self._standbys), collections.deque()
        for _, send in standbys:
            with contextlib.suppress(OSError):
                send.send(None)
            send.close()
        for proc, _ in standbys:
            proc.join(timeout=0.5)  # a ready standby reads the None and exits at once
            if proc.is_alive():  # still importing torch: it has nothing to finish
                proc.kill()
                proc.join(timeout=5)

    def standby_pids(self) -> list[int | None]:
        """The pids of the processes waiting for a job, oldest first (the next job goes to the first)."""
        return [proc.pid for proc, _ in self._standbys]

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


def preload_arguments(config: RunConfig) -> dict[str, Any] | None:
    """The ``load_dataset`` arguments of ``config``'s whole dataset (what the per-process cache keeps; a
    train subset is cut from it), or None for the embedded digits, which every standby loads anyway."""
    if config.dataset == "digits":
        return None
    args = dataset_arguments(config)
    return {k: args[k] for k in ("name", "data_dir", "download", "normalize")}


def exit_description(code: int | None, runs_dir: Path | None = None) -> str:
    """Why a worker ended without reporting, from its exit code (negative: the signal that killed it)."""
    if code == EXIT_DISK_FULL:
        return f"no space left on device in {runs_dir}" if runs_dir else "no space left on device"
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




def check_executor(executor: Executor | str | None) -> Executor | str:
    """``executor`` as given, or its name ("local", "ray"; default ``$FGFF_EXECUTOR``, else local).

    ValueError for an unknown name or an object without the ``Executor`` methods; nothing is started.
    """
    if executor is not None and not isinstance(executor, str):
        if not all(callable(getattr(executor, m, None)) for m in _EXECUTOR_METHODS):
            raise ValueError(f"executor: expected 'local', 'ray' or an Executor (with {', '.join(_EXECUTOR_METHODS)}), "
                             f"got {type(executor).__name__}")
        return executor
    name = (executor or os.environ.get(EXECUTOR_ENV, "") or "local").strip().lower()
    return check_choice("executor" if executor else f"${EXECUTOR_ENV}", name, EXECUTORS)


def default_max_concurrent(executor: object | None = None) -> int:
    """Jobs at once: ``$FGFF_MAX_CONCURRENT``, else as many as a cluster holds, else one per GPU (one on a CPU)."""
    env = os.environ.get(MAX_CONCURRENT_ENV, "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"{MAX_CONCURRENT_ENV}: expected a positive integer, got {env!r}") from None
        if value < 1:
            raise ValueError(f"{MAX_CONCURRENT_ENV}: expected a positive integer, got {env!r}")
        return value
    capacity = getattr(executor, "capacity", None)  # a cluster: as many runs as it has room for
    if capacity is not None:
        return capacity()
    import torch

    return max(1, torch.cuda.device_count() if torch.cuda.is_available() else 1)


class ExecutorChoice(NamedTuple):
    """Where jobs will run, checked and reached before the manager creates any file (``choose_executor``)."""

    executor: Executor | str  # "local", "ray" or the caller's Executor
    owns_ray: bool = False  # this process started Ray for it: the Ray executor shuts it down when it closes

    def release(self) -> None:
        """Undo the connection for a manager that failed before ``open_executor`` took it over."""
        if self.owns_ray:
            from .ray_cluster import disconnect

            disconnect()


def choose_executor(executor: Executor | str | None) -> ExecutorChoice:
    """``check_executor``, then reach what the executor runs on: for ``"ray"`` this process connects to Ray
    (``RayUnavailableError`` in one sentence when ``$RAY_ADDRESS`` does not answer). Creates no file."""
    choice = check_executor(executor)
    if choice != "ray":
        return ExecutorChoice(choice)
    from .ray_cluster import connect

    return ExecutorChoice(choice, connect())


def open_executor(choice: ExecutorChoice, runs_dir: Path, gpus: int, max_concurrent: int | None = None,
                  warm_worker: bool | None = None) -> Executor:
    """The executor that ``choose_executor`` chose: started for a name, as given for an object.

    Local jobs on a CPU-only machine share its cores (``os.cpu_count() // max_concurrent`` threads each);
    ``warm_worker`` (default ``$FGFF_WARM_WORKER``, on unless 0) keeps one local worker per job slot started
    ahead of time (with Ray, one on each node, made ready once: a run's worker goes back to Ray's pool ready for
    the next).
    """
    if warm_worker is None:
        warm_worker = os.environ.get(WARM_WORKER_ENV, "1").strip() not in ("0", "false", "no")
    if choice.executor == "ray":
        from .ray_host import RayExecutor

        return RayExecutor(runs_dir, owns_ray=choice.owns_ray, warm_worker=warm_worker)
    if choice.executor != "local":
        return choice.executor  # type: ignore[return-value]  # the caller's Executor
    concurrent = max_concurrent if max_concurrent is not None else default_max_concurrent()
    threads = max(1, (os.cpu_count() or 1) // concurrent) if gpus == 0 and concurrent > 1 else None
    return LocalProcessExecutor(runs_dir, threads_per_job=threads, warm_worker=warm_worker, pool_size=concurrent)
