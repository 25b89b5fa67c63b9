"""``RunWriter``: the one way a worker writes its run (start, epochs, evaluations, the end)."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import RunConfig
from ..events import EpochMetrics, EvalMetrics
from ..status import RunStatus
from .schema import (
    CANCEL_USER,
    EPOCH_COLUMNS,
    EVAL_COLUMNS,
    FINAL_COLUMNS,
    SIGNIFICANCE_NAME,
    _float_or_none,
    check_run_id,
    now_iso,
)

if TYPE_CHECKING:
    from .runs import RunStore


class RunWriter:
    """Writes one run's events as they come: one short transaction per epoch.

    Built with the run's config (``RunStore.writer`` reads it once). Used where the run trains
    (a worker process) or where its events arrive (the Ray executor's drain on the app's host);
    holds one connection for the run's lifetime.
    """

    def __init__(self, store: RunStore, run_id: str, config: RunConfig) -> None:
        self.store, self.run_id, self.config = store, check_run_id(run_id), config
        self.con = store.connect()
        self._epochs_done = 0
        self._epoch_sql = (f"INSERT INTO epochs (run_id, layer, epoch, step, {', '.join(EPOCH_COLUMNS)}, significance) "
                           f"VALUES ({', '.join('?' * (len(EPOCH_COLUMNS) + 5))}) ON CONFLICT (run_id, layer, epoch) "
                           f"DO UPDATE SET step = excluded.step, "
                           + ", ".join(f"{c} = excluded.{c}" for c in (*EPOCH_COLUMNS, "significance")))
        self._eval_sql = (f"INSERT INTO epochs (run_id, layer, epoch, step, {', '.join(EVAL_COLUMNS)}) "
                          f"VALUES ({', '.join('?' * (len(EVAL_COLUMNS) + 4))}) ON CONFLICT (run_id, layer, epoch) "
                          f"DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in EVAL_COLUMNS))

    def close(self) -> None:
        self.con.close()

    def cancel_flag(self) -> int:
        row = self.con.execute("SELECT cancel_requested FROM runs WHERE run_id = ?", (self.run_id,)).fetchone()
        return CANCEL_USER if row is None else row[0]  # a deleted run stops too

    def started(self, device: str, n_params: int, epoch_events: int) -> None:
        self.con.execute("UPDATE runs SET device = ?, n_params = ?, epoch_events = ?, "
                         "started_at = COALESCE(started_at, ?) WHERE run_id = ?",
                         (device, n_params, epoch_events, now_iso(), self.run_id))

    def set_device(self, device: str) -> None:
        """Name the device before training starts (e.g. which of several GPUs)."""
        self.con.execute("UPDATE runs SET device = ? WHERE run_id = ?", (device, self.run_id))

    def set_node(self, node: str | None) -> None:
        """Record the machine (cluster node) the run trains on."""
        self.con.execute("UPDATE runs SET node = ? WHERE run_id = ?", (node, self.run_id))

    def epoch(self, event: EpochMetrics) -> None:
        """Insert the epoch's row and commit (with its significance snapshot as a float32 BLOB)."""
        sig = None if event.significance is None else np.asarray(event.significance, np.float32).tobytes()
        values = [_float_or_none(getattr(event, c)) for c in EPOCH_COLUMNS]
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(self._epoch_sql, (self.run_id, event.layer, event.epoch, event.step, *values, sig))
            con.execute("UPDATE runs SET epochs_done = ? WHERE run_id = ?", (self._epochs_done + 1, self.run_id))
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            raise
        self._epochs_done += 1

    def evaluation(self, event: EvalMetrics) -> None:
        values = [_float_or_none(getattr(event, c)) for c in EVAL_COLUMNS]
        self.con.execute(self._eval_sql, (self.run_id, event.layer, event.epoch, event.step, *values))

    def finish(self, status: str, final: dict[str, Any] | None = None, checkpoint: Path | None = None,
               error: str | None = None, error_detail: str | None = None) -> bool:
        """Gather the significance BLOBs into significance.npz, then write the final row.

        If the file cannot be written (a full disk), the BLOBs stay in the database, where
        ``RunStore.significance`` reads them, and the final row is still written.
        """
        store, run_id = self.store, self.run_id
        sig_file = None
        if self.config.algo != "bp":  # FF and FGFF both have significance factors (FF keeps them at 1)
            arrays = {f"layer{i}": a for i, a in enumerate(store.significance(run_id))}
            with contextlib.suppress(OSError):
                save_npz_atomic(store.run_dir(run_id, create=True) / SIGNIFICANCE_NAME, arrays)
                sig_file = f"{run_id}/{SIGNIFICANCE_NAME}"
        final = final or {}
        cols = ", ".join(f"{c} = ?" for c in FINAL_COLUMNS)
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            changed = con.execute(
                f"UPDATE runs SET status = ?, finished_at = ?, error = ?, error_detail = ?, {cols}, "
                f"checkpoint = ?, significance_file = ? WHERE run_id = ? AND status = ?",
                (RunStatus(status).value, now_iso(), error, error_detail,
                 *(_float_or_none(final.get(c)) for c in FINAL_COLUMNS),
                 None if checkpoint is None else str(checkpoint.relative_to(store.root)), sig_file,
                 run_id, RunStatus.RUNNING.value)).rowcount == 1
            if sig_file is not None:
                con.execute("UPDATE epochs SET significance = NULL WHERE run_id = ?", (run_id,))
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            raise
        return changed


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write under a temporary name and rename; the temporary file is removed if writing fails."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
