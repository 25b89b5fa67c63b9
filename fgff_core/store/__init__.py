"""The run store: every run's config, status, per-epoch metrics and files, in one data folder.

``schema`` (the database file, names and checks), ``runs`` (``RunStore``: run lifecycle and
reading), ``writer`` (``RunWriter``: what a training run writes), ``archive`` (export/import).
"""

from ..status import ACTIVE_STATUSES, FINISHED_STATUSES, RunStatus
from .archive import ExportError
from .runs import RunStore
from .schema import (
    CANCEL_NONE,
    CANCEL_SHUTDOWN,
    CANCEL_USER,
    CHECKPOINT_NAME,
    DB_NAME,
    DEFAULT_RUNS_DIR,
    EPOCH_COLUMNS,
    EVAL_COLUMNS,
    FINAL_COLUMNS,
    LONG_FRAME_COLUMNS,
    METRIC_COLUMNS,
    METRICS_FRAME_COLUMNS,
    RUNS_DIR_ENV,
    RUNS_FRAME_COLUMNS,
    SIGNIFICANCE_NAME,
    DiskFullError,
    StoreError,
    UnknownRunError,
    check_artifact_name,
    check_run_id,
    default_run_name,
    disk_full_message,
    free_bytes,
    is_disk_full,
    resolve_runs_dir,
)
from .writer import RunWriter

__all__ = [
    "ACTIVE_STATUSES", "CANCEL_NONE", "CANCEL_SHUTDOWN", "CANCEL_USER", "CHECKPOINT_NAME", "DB_NAME",
    "DEFAULT_RUNS_DIR", "EPOCH_COLUMNS", "EVAL_COLUMNS", "FINAL_COLUMNS", "FINISHED_STATUSES", "LONG_FRAME_COLUMNS",
    "METRIC_COLUMNS", "METRICS_FRAME_COLUMNS", "RUNS_DIR_ENV", "RUNS_FRAME_COLUMNS", "SIGNIFICANCE_NAME",
    "DiskFullError", "ExportError", "RunStatus", "RunStore", "RunWriter", "StoreError", "UnknownRunError",
    "check_artifact_name", "check_run_id", "default_run_name", "disk_full_message", "free_bytes", "is_disk_full",
    "resolve_runs_dir",
]
