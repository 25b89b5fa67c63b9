"""Run training jobs in the background: submit, watch, cancel, find again after a restart.

``limits`` (what a shared server accepts), ``worker`` (the body of one job), ``executors`` (where
jobs run: ``Executor`` and the local process executor), ``liveness`` (which managers are alive),
``manager`` (``JobManager``: queue and scheduler). Read runs through ``jm.store`` (``RunStore``).
"""

from ..store import RunStore, StoreError, UnknownRunError
from .executors import Executor, LocalProcessExecutor
from .limits import Limits
from .manager import JobError, JobManager, shutdown_all
from .worker import NonFiniteLossError, execute_run, failure_reason, worker_main

__all__ = ["JobManager", "shutdown_all", "Limits", "JobError", "Executor", "LocalProcessExecutor", "NonFiniteLossError",
           "execute_run", "failure_reason", "worker_main", "RunStore", "StoreError", "UnknownRunError"]
