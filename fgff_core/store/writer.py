"""``RunWriter``: the one way a worker writes its run (start, epochs, evaluations, the end)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_open
from ..config.schema import RunConfig
from ..engine.events import EpochMetrics, EvalMetrics
from ..vocabulary import CANCEL_USER, RunStatus, has_factors
from . import snapshots
from .errors import UnknownRunError
from .schema import (
    EPOCH_COLUMNS,
    EVAL_COLUMNS,
    FINAL_COLUMNS,
    SIGNIFICANCE_NAME,
    Database,
    _float_or_none,
    check_run_id,
    now_iso,
)


class RunWriter:
    """Writes one run's events as they come: one short transaction per epoch, or per batch of epochs.

    Built with the run's config (``RunStore.writer`` reads it once). Used where the run trains
    (a worker process) or where its events arrive (the Ray executor's drain on the app's host);
    holds one connection for the run's lifetime and reads nothing through the store's reader
    (``RunStore`` builds writers; a writer needs only the database).
    """

    def __init__(self, store: Database, run_id: str, config: RunConfig) -> None:
        store.require_writable()
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
        self.epochs([event])

    def epochs(self, events: Sequence[EpochMetrics]) -> None:
        """Insert several epochs' rows, oldest first, in one transaction (one commit for the batch).

        Stores exactly what ``epoch`` stores for each event in turn (the same rows and values, and
        ``epochs_done`` ends at the same count); only the commits between them are saved, which is
        what lets the Ray drain keep up with many runs (``benchmarks/relay.py``).
        """
        self.epoch_rows([self._epoch_row(event) for event in events])

    def epoch_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """``epochs`` for rows already built, (run_id, layer, epoch, step, *EPOCH_COLUMNS, significance BLOB or
        None), this run's: what the Ray drain writes from the relay's columns (``jobs.ray_wire``)."""
        RunWriter.epoch_rows_of_runs([(self, rows)])

    @staticmethod
    def epoch_rows_of_runs(batches: Sequence[tuple[RunWriter, Sequence[tuple[Any, ...]]]]) -> None:
        """``epoch_rows`` of several runs of one store in one transaction: the Ray drain writes all the runs'
        drained epochs with one commit (one per run cost about 0.4 ms each, most of the drain's time with 100
        runs, ``benchmarks/relay.py``). Each writer's rows must be its own run's."""
        batches = [(writer, rows) for writer, rows in batches if rows]
        if not batches:
            return
        con = batches[0][0].con
        con.execute("BEGIN IMMEDIATE")
        try:
            for writer, rows in batches:
                con.executemany(writer._epoch_sql, rows)
                con.execute("UPDATE runs SET epochs_done = ? WHERE run_id = ?",
                            (writer._epochs_done + len(rows), writer.run_id))
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            raise
        for writer, rows in batches:
            writer._epochs_done += len(rows)

    def _epoch_row(self, event: EpochMetrics) -> tuple[Any, ...]:
        sig = None if event.significance is None else snapshots.encode(event.significance)
        values = [_float_or_none(getattr(event, c)) for c in EPOCH_COLUMNS]
        return (self.run_id, event.layer, event.epoch, event.step, *values, sig)

    def evaluation(self, event: EvalMetrics) -> None:
        values = [_float_or_none(getattr(event, c)) for c in EVAL_COLUMNS]
        self.con.execute(self._eval_sql, (self.run_id, event.layer, event.epoch, event.step, *values))

    def finish(self, status: str, final: dict[str, Any] | None = None, checkpoint: Path | None = None,
               error: str | None = None, error_detail: str | None = None, gather: bool = True) -> bool:
        """Gather the significance BLOBs into significance.npz, then write the final row.

        If the file cannot be written (a full disk), the BLOBs stay in the database, where
        ``RunStore.significance`` reads them, and the final row is still written. ``gather=False``
        leaves them there without trying: for a run that failed for lack of space, where the file
        would take as much room again and leave the BLOBs' pages empty in the database.
        """
        store, run_id = self.store, self.run_id
        sig_file = None
        if gather and has_factors(self.config.algo):  # FF and FGFF both have significance factors (FF keeps them at 1)
            arrays = snapshots.as_arrays(self._snapshots())
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

    def _snapshots(self) -> list[np.ndarray]:
        """The run's significance snapshots, read from its BLOBs on this writer's own connection."""
        if self.con.execute("SELECT 1 FROM runs WHERE run_id = ?", (self.run_id,)).fetchone() is None:
            raise UnknownRunError.of(self.run_id, self.store.root)  # deleted while it trained
        return snapshots.stack(snapshots.stored_blobs(self.con, self.run_id), self.config.layers)


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` through the one atomic write: the file appears complete or not at all."""
    with atomic_open(path) as handle:
        np.savez(handle, **arrays)
