"""Run training jobs in the background: submit, watch, cancel, find again after a restart.

``limits`` (what a shared server accepts), ``owners`` (whose run it is, and who may stop or delete it),
``worker`` (the body of one job), ``executors`` (where jobs run: ``Executor`` and the local process
executor), ``liveness`` (which managers are alive, and
what becomes of a dead one's runs), ``scheduler`` (the thread that starts queued runs and reaps their
workers), ``manager`` (``JobManager``: the public API over the scheduler), ``launch`` (before a launch: twins, whether
to ask first) with ``work`` and ``estimate`` (how long a run trains: its counted work times this server's
speed). Read runs through ``jm.store`` (``RunStore``).
"""

from .._lazy import exports_of, lazy_exports

_EXPORTS = {
    **exports_of("..store", "RunStore", "StoreError", "UnknownRunError"),
    **exports_of(".executors", "Executor", "LocalProcessExecutor"),
    **exports_of(".limits", "Limits"),
    **exports_of(".manager", "JobError", "JobManager", "shutdown_all"),
    **exports_of(".owners", "Requester", "RunAccess", "RunPermissionError"),
    **exports_of(".worker", "execute_run", "failure_reason", "worker_main"),
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
