"""The body of a job: train one run and record how it ended, whatever happens.

``execute_run`` is the job every executor runs: the training driver (``driver.py``, with its one
divergence rule) writing events through any object with ``started``/``epoch``/``evaluation``;
``worker_main`` is the local executor's process entry point around it, and ``standby_main`` the same
started ahead of time; ``end_process_after`` ends either's process as soon as the run is recorded.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from ..config.schema import RunConfig
from ..data.loading import DatasetNotFoundError
from ..engine.events import EpochMetrics, EvalMetrics, Event, RunFinished, RunStarted
from ..engine.runtime import retain_freed_memory
from ..format import node_label, shorten
from ..store import (
    CHECKPOINT_NAME,
    FINAL_COLUMNS,
    RunStore,
    disk_full_message,
    is_disk_full,
)
from ..vocabulary import CANCEL_SHUTDOWN, CANCEL_USER, RunStatus, stopped

#: Exit code of a worker that could not even record its failure because the disk is full.
EXIT_DISK_FULL = 28  # errno ENOSPC


class EventSink(Protocol):
    """Where ``execute_run`` sends a run's events (``RunWriter``, or the Ray executor's sender)."""

    def started(self, device: str, n_params: int, epoch_events: int) -> None: ...

    def epoch(self, event: EpochMetrics) -> None: ...

    def evaluation(self, event: EvalMetrics) -> None: ...


class WorkerJob(NamedTuple):
    """What a worker process needs to run one job."""

    runs_dir: str
    run_id: str
    gpu: int | None = None
    threads: int | None = None


def failure_reason(exc: BaseException) -> str:
    """A readable reason for the runs table (the traceback goes to ``error_detail``)."""
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    if isinstance(exc, DatasetNotFoundError):
        return str(exc)
    if (oom and isinstance(exc, oom)) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory"
        return (f"GPU out of memory: {shorten(first)}. Hint: use fewer or smaller layers, a minibatch "
                f"(batch_size), a smaller eval_chunk or train_subset, or run fewer jobs at once (max_concurrent).")
    if isinstance(exc, MemoryError):
        return ("out of host memory (RAM). Hint: use a smaller train_subset, smaller layers or run fewer jobs "
                "at once (max_concurrent).")
    if isinstance(exc, ValueError):
        return f"invalid setting: {exc}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def execute_run(config: RunConfig, writer: EventSink, should_stop: Callable[[], bool],
                checkpoint_path: Path | None) -> RunFinished:
    """Train ``config`` through the training driver, writing every event through ``writer``; return the final
    event: ``done``, ``stopped`` (early, by ``should_stop``) or ``failed`` (a NaN or infinite loss, whose epoch
    row is written first; the reason is in ``RunFinished.reason``).

    The checkpoint is saved at the end of a done or stopped run, not of a failed one (its weights are NaN).
    Executors call this: the local one in a worker process, the Ray one in a remote task.
    """
    from ..engine.checkpoint import save_checkpoint
    from ..engine.driver import Driver
    from ..engine.training import Trainer

    def write(event: Event) -> None:
        if isinstance(event, RunStarted):
            writer.started(event.device, event.n_params, event.epoch_events)
        elif isinstance(event, EpochMetrics):
            writer.epoch(event)
        elif isinstance(event, EvalMetrics):
            writer.evaluation(event)

    trainer = Trainer(config)
    result = Driver(trainer, should_stop).run(write)
    if checkpoint_path is not None and result.status != RunStatus.FAILED:
        save_checkpoint(checkpoint_path, trainer.model, config)
    return result


def final_metrics(result: RunFinished) -> dict[str, float]:
    """The final event's metrics, as ``RunWriter.finish`` stores them."""
    return {c: getattr(result, c) for c in FINAL_COLUMNS}


def worker_main(runs_dir: str, run_id: str, gpu: int | None = None,
                initializer: Callable[[], None] | None = None, threads: int | None = None) -> None:
    """Entry point of a worker process: run one job and record how it ended.

    If even the failure cannot be recorded because the disk is full, the process exits with
    ``EXIT_DISK_FULL`` so that the manager can say so.
    """
    if gpu is not None:  # before CUDA is initialised in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    retain_freed_memory()  # one job per process: keep freed memory for the next epoch's tensors
    parent = os.getppid()
    store = RunStore(runs_dir)
    writer = store.writer(run_id)
    config = writer.config
    stop_flags: list[int] = []  # the cancel flag the run stopped on

    def should_stop() -> bool:  # a manager's process that died counts as the server stopping
        flag = CANCEL_SHUTDOWN if os.getppid() != parent else writer.cancel_flag()
        if flag:
            stop_flags.append(flag)
        return bool(flag)

    try:
        if should_stop():
            end = stopped(stop_flags[0])
            writer.finish(end.status, error=end.reason)
            return
        import torch

        if threads:
            torch.set_num_threads(threads)
        if initializer is not None:
            initializer()
        if gpu is not None and config.device in ("auto", "cuda"):
            writer.set_device(f"cuda (GPU {gpu})")
        writer.set_node(node_label(socket.gethostname()))
        checkpoint = store.run_dir(run_id, create=True) / CHECKPOINT_NAME
        result = execute_run(config, writer, should_stop, checkpoint)
        if result.status in (RunStatus.DONE, RunStatus.FAILED):
            writer.finish(result.status, final=final_metrics(result), error=result.reason,
                          checkpoint=checkpoint if result.status == RunStatus.DONE else None)
        else:
            end = stopped(stop_flags[0] if stop_flags else CANCEL_USER)
            writer.finish(end.status, final=final_metrics(result),
                          checkpoint=checkpoint if checkpoint.exists() else None, error=end.reason)
    except BaseException as exc:  # noqa: BLE001 - every failure must end up in the store
        # The failed row records no file: what the run wrote goes, before the row needs room for its reason.
        store.discard_unrecorded_files(run_id)
        disk_full = is_disk_full(exc, store.root)
        reason = disk_full_message(store.root) if disk_full else failure_reason(exc)
        try:
            writer.finish(RunStatus.FAILED, error=reason, error_detail=traceback.format_exc(), gather=not disk_full)
        except Exception as second:  # noqa: BLE001 - the store itself may be unwritable now
            if disk_full or is_disk_full(second, store.root):
                raise SystemExit(EXIT_DISK_FULL) from None
        if not isinstance(exc, Exception):
            raise
    finally:
        writer.close()


def end_process_after(main: Callable[..., None], *args: object) -> None:
    """A job process's entry point: run ``main(*args)``, then end the process at once (``os._exit``).

    Why: the interpreter's ordinary teardown after a run that imported torch took 10-12 s here (2 cores,
    load about 10), against 0.4 s for ``os._exit``; the run was already recorded, but its process held
    the job slot all that time, so the next queued run waited. Nothing is lost by skipping it: the run's
    store connection is closed by ``worker_main`` before it returns, and the standard streams and the
    logging handlers are flushed here. The exit code is what multiprocessing would give: the
    ``SystemExit`` code (``EXIT_DISK_FULL``), 1 after any other escaped exception, else 0.
    """
    code = 0
    try:
        main(*args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:  # noqa: BLE001 - reported like multiprocessing does, then the process ends
        traceback.print_exc()
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os._exit(code)


def warm_up_engine(preload: Mapping[str, Any] | None = None) -> None:
    """What a worker does before its first job so that the job trains at once: import torch and the engine,
    load the embedded digits (and ``preload``, ``load_dataset`` arguments) into this process's dataset
    cache, and train one tiny epoch, which runs torch's lazy first-call set-up (kernels, allocator).
    The local executor's standby and the Ray executor's warm worker (``ray_worker.warm_worker``) both call it."""
    from ..data.loading import load_dataset
    from ..engine.training import train

    digits = load_dataset("digits")  # the default dataset, cached in this process
    if preload:
        try:
            load_dataset(**preload)
        except Exception:  # noqa: BLE001 - missing or damaged files: the job that wants them says why
            pass
    train({"layers": (8,), "epochs": 1, "eval_every": 0, "device": "cpu"}, digits)


def standby_main(conn, initializer: Callable[[], None] | None, preload: Mapping[str, Any] | None = None) -> None:
    """A worker process started ahead of time: import the engine, then wait for one job.

    Importing torch and loading the data take seconds; doing it before the user presses Start is what makes
    a new run show its first epoch within a second or two. Besides the embedded digits, the standby loads
    ``preload`` (``load_dataset`` arguments: the dataset of the job handed out before, which the next one most
    likely wants, e.g. a class's MNIST demo) into this process's dataset cache, so the job does not read and
    normalise it again (the same arrays: no number changes). The process still runs exactly one job, so jobs
    stay isolated from each other.
    """
    warm_up_engine(preload)
    try:
        job = conn.recv()
    except (EOFError, OSError):  # the manager went away before giving us a job
        return
    finally:
        conn.close()
    if job is not None:
        worker_main(job.runs_dir, job.run_id, job.gpu, initializer, job.threads)
