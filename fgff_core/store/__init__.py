"""The run store: every run's config, status, per-epoch metrics and files, in one data folder.

From the bottom up: ``errors`` (what can go wrong, a full disk told apart), ``schema`` (the database
file, names and checks), ``snapshots`` (how significance is stored), ``queue`` (``RunQueue``: the
scheduler's side), ``writer`` (``RunWriter``: what a training run writes), ``live`` (``LiveReads``: the
reads of live views, shared across sessions for a second), ``runs`` (``RunStore``: lifecycle and reading),
``archive`` (``export_run``, ``import_checkpoint``), ``uploads`` (an uploaded
file checked before the store opens it). Each imports only those before it.
"""

from .._lazy import exports_of, lazy_exports

_EXPORTS = {
    **exports_of("..vocabulary", "ACTIVE_STATUSES", "CANCEL_NONE", "CANCEL_SHUTDOWN", "CANCEL_USER",
                 "FINISHED_STATUSES", "RunStatus"),
    **exports_of(".archive", "ExportError", "export_run", "import_checkpoint"),
    **exports_of(".live", "LiveReads", "ticking"),
    **exports_of(".runs", "RunStore"),
    **exports_of(".schema", "CHECKPOINT_NAME", "DB_NAME", "DEFAULT_RUNS_DIR", "EPOCH_COLUMNS", "EVAL_COLUMNS",
                 "FINAL_COLUMNS", "LONG_FRAME_COLUMNS", "METRIC_COLUMNS", "METRICS_FRAME_COLUMNS", "RUNS_DIR_ENV",
                 "RUNS_FRAME_COLUMNS", "SIGNIFICANCE_NAME", "check_artifact_name", "check_run_id",
                 "default_run_name", "resolve_runs_dir"),
    **exports_of(".errors", "DiskFullError", "StoreError", "UnknownRunError", "disk_full_message", "free_bytes",
                 "is_disk_full"),
    **exports_of(".queue", "RunQueue"),
    **exports_of(".writer", "RunWriter"),
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
