"""``RunStore``: a run's lifecycle (create, rename, cancel, finish, delete) and reading stored runs.

Beside it, each with one job: ``queue.py`` (the scheduler's side: claim, next queued, active runs;
``RunStore.queue``), ``writer.py`` (what a training run writes; ``RunStore.writer``), ``archive.py``
(export and import, functions over a store), ``snapshots.py`` (how significance is stored).

Layout of the folder (default ``./runs``, or ``$FGFF_RUNS_DIR``, or the ``runs_dir`` argument)::

    runs.sqlite                 SQLite in WAL mode: tables runs, epochs, managers
    <run_id>/model.safetensors  checkpoint written when the run ends
    <run_id>/significance.npz   significance snapshots over epochs, one array per layer
    <run_id>/<other files>      caches such as t-SNE embeddings (see ``artifact_path``)

Writes are short transactions committed once per epoch, so a crash loses at most the epoch in
flight. While a run trains, each epoch's significance snapshot is a BLOB in its ``epochs`` row,
committed with the metrics; when the run ends they are gathered into ``significance.npz`` (its
path is stored in the run's row) and the BLOBs are cleared in the same transaction. Readers
(pages in other processes) use their own connections and see consistent snapshots thanks to WAL.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config.schema import RunConfig
from ..config.values import check_choice
from ..vocabulary import ACTIVE_STATUSES, CANCEL_USER, FINISHED_STATUSES, RunStatus, has_factors, stopped
from . import snapshots
from .errors import StoreError, UnknownRunError
from .live import LiveReads
from .queue import RunQueue
from .schema import (
    ACTIVE_IN,
    CHECKPOINT_NAME,
    FINAL_COLUMNS,
    LONG_FRAME_COLUMNS,
    METRIC_COLUMNS,
    METRICS_FRAME_COLUMNS,
    RUNS_FRAME_COLUMNS,
    SIGNIFICANCE_NAME,
    Database,
    check_artifact_name,
    check_run_id,
    default_run_name,
    new_run_id,
    now_iso,
)
from .writer import RunWriter


class RunStore(Database):
    """Read and write runs in a data folder; safe to open from many processes at once.

    The read side (``runs``, ``metrics``, ``significance``, ...) needs no job manager: pages and
    scripts open their own ``RunStore``. ``JobManager`` and its workers use the write side, the
    scheduler through ``queue`` and a training run through ``writer(run_id)``.
    ``RunStore(path, read_only=True)``, chosen by itself for a folder it cannot write (a read-only
    mount, another user's folder), reads as usual and refuses every write with one ``StoreError``.
    """

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    @functools.cached_property
    def live(self) -> LiveReads:
        """This store's reads for live views, shared across the sessions that use this store object (``live.py``)."""
        return LiveReads(self)

    # -- paths --------------------------------------------------------------------------------
    def artifact_path(self, run_id: str, name: str) -> Path:
        """A path for file ``name`` inside the run's own folder (created); ``name`` is validated."""
        check_artifact_name(name)
        self._require(run_id)
        return self.run_dir(run_id, create=True) / name

    def artifacts(self, run_id: str) -> list[str]:
        """Names of the files in the run's folder."""
        self._require(run_id)
        folder = self.run_dir(run_id)
        return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    def checkpoint_path(self, run_id: str) -> Path | None:
        row = self._require(run_id, "checkpoint")
        if not row["checkpoint"]:
            return None
        path = self.root / row["checkpoint"]
        return path if path.is_file() else None

    # -- creating and updating runs -----------------------------------------------------------
    def create_run(self, config: RunConfig | dict, name: str | None = None, owner: str | None = None,
                   manager_id: str | None = None, status: str = RunStatus.QUEUED, origin: str = "trained") -> str:
        config = RunConfig.coerce(config)
        check_choice("status", status, [s.value for s in RunStatus])
        status = RunStatus(status).value
        name = default_run_name(config) if name is None or not str(name).strip() else str(name).strip()
        for _ in range(5):
            run_id = new_run_id()
            try:
                with self.transaction(immediate=True) as con:
                    con.execute(
                        "INSERT INTO runs (run_id, name, algo, dataset, owner, status, config, origin, created_at, "
                        "epoch_events, manager_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, name[:200], config.algo, config.dataset, owner, status, config.to_json(), origin,
                         now_iso(), config.epoch_events, manager_id))
                return run_id
            except StoreError as exc:
                if "UNIQUE" not in str(exc):
                    raise
        raise StoreError("could not draw an unused run id")  # pragma: no cover - 48 random bits

    def rename(self, run_id: str, name: str) -> None:
        name = str(name).strip()
        if not name:
            raise ValueError("name: must not be empty")
        with self.transaction(immediate=True) as con:
            sql = "UPDATE runs SET name = ? WHERE run_id = ?"
            if con.execute(sql, (name[:200], check_run_id(run_id))).rowcount != 1:
                raise UnknownRunError.of(run_id, self.root)

    def request_cancel(self, run_id: str, flag: int = CANCEL_USER) -> str:
        """Cancel a queued run at once; flag a running one (its worker stops after the epoch).

        Returns the status after the request; finished runs are left as they are.
        """
        with self.transaction(immediate=True) as con:
            status = self._status(con, run_id)
            if status == RunStatus.QUEUED:
                final = stopped(flag, started=False)
                con.execute("UPDATE runs SET status = ?, finished_at = ?, error = ?, cancel_requested = ? "
                            "WHERE run_id = ?", (final.status.value, now_iso(), final.reason, flag, run_id))
                return final.status.value
            if status == RunStatus.RUNNING:
                con.execute("UPDATE runs SET cancel_requested = MAX(cancel_requested, ?) WHERE run_id = ?",
                            (flag, run_id))
            return status

    def cancel(self, run_id: str) -> str:
        return self.request_cancel(run_id, CANCEL_USER)

    def finish_run(self, run_id: str, status: str, error: str | None = None, error_detail: str | None = None,
                   only_if_active: bool = True) -> bool:
        """Set a final status (with a readable reason) unless the run already has one."""
        if status not in {s.value for s in FINISHED_STATUSES}:
            raise ValueError(f"status: {status!r} is not a final status "
                             f"({', '.join(sorted(s.value for s in FINISHED_STATUSES))})")
        sql = "UPDATE runs SET status = ?, finished_at = ?, error = ?, error_detail = ? WHERE run_id = ?"
        if only_if_active:
            sql += f" AND status IN {ACTIVE_IN}"
        with self.transaction(immediate=True) as con:
            return con.execute(sql, (RunStatus(status).value, now_iso(), error, error_detail,
                                     check_run_id(run_id))).rowcount == 1

    @functools.cached_property
    def queue(self) -> RunQueue:
        """The scheduler's side (claim, next queued, active runs), over this store's database."""
        return RunQueue(self)

    def writer(self, run_id: str) -> RunWriter:
        """The per-epoch writer a worker uses for one run, built with the run's stored config."""
        return RunWriter(self, run_id, self.config(run_id))

    def delete(self, run_id: str, force: bool = False) -> None:
        """Remove the run's rows and its folder. A queued or running run needs ``force``."""
        with self.transaction(immediate=True) as con:
            status = self._status(con, run_id)
            if status in ACTIVE_STATUSES and not force:
                raise StoreError(f"run {run_id} is {status}; cancel it before deleting it")
            con.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            con.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def discard_unrecorded_files(self, run_id: str) -> None:
        """Remove what a run's worker wrote to the run's folder but the run's row does not record.

        Half-written ``*.tmp`` files always; the checkpoint and the significance file unless the row
        names them (a run that failed after writing them: its row records neither). Called when a
        run ends without a clean finish (a failure, a worker that died), so that a run that failed
        for lack of space does not keep the space it was refused. The folder goes too when empty.
        """
        folder = self.run_dir(run_id)
        try:
            unrecorded = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
        except OSError:  # no folder (nothing written yet), or one this process cannot list
            return
        try:
            row = self._require(run_id, "checkpoint", "significance_file")
        except (StoreError, UnknownRunError):  # cannot tell what the row records: keep the finished files
            row = None
        if row is not None:
            recorded = {self.root / row[c] for c in ("checkpoint", "significance_file") if row[c]}
            unrecorded += [folder / name for name in (CHECKPOINT_NAME, SIGNIFICANCE_NAME)
                           if folder / name not in recorded]
        for path in unrecorded:
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):  # not empty: a file this method leaves alone
            folder.rmdir()

    # -- reading ------------------------------------------------------------------------------
    def _status(self, con: sqlite3.Connection, run_id: str) -> str:
        row = con.execute("SELECT status FROM runs WHERE run_id = ?", (check_run_id(run_id),)).fetchone()
        if row is None:
            raise UnknownRunError.of(run_id, self.root)
        return row[0]

    def _require(self, run_id: str, *columns: str) -> dict[str, Any]:
        cols = ", ".join(("run_id", *columns))
        with self.connection() as con:
            con.row_factory = sqlite3.Row
            row = con.execute(f"SELECT {cols} FROM runs WHERE run_id = ?", (check_run_id(run_id),)).fetchone()
        if row is None:
            raise UnknownRunError.of(run_id, self.root)
        return dict(row)

    def status(self, run_id: str) -> str:
        return self._require(run_id, "status")["status"]

    def cancel_flag(self, run_id: str) -> int:
        return self._require(run_id, "cancel_requested")["cancel_requested"]

    @staticmethod
    def _row_dict(row: sqlite3.Row) -> dict[str, Any]:
        out = {c: row[c] for c in RUNS_FRAME_COLUMNS if c != "config"}
        out["config"] = json.loads(row["config"])
        return {c: out[c] for c in RUNS_FRAME_COLUMNS}

    def runs(self) -> pd.DataFrame:
        """One row per run, newest first (columns: ``RUNS_FRAME_COLUMNS``; config as a dict)."""
        with self.connection() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC").fetchall()
        frame = pd.DataFrame([self._row_dict(r) for r in rows], columns=list(RUNS_FRAME_COLUMNS))
        for c in FINAL_COLUMNS:
            frame[c] = frame[c].astype(float)
        return frame

    def run(self, run_id: str) -> dict[str, Any]:
        """The run's row as a dict (the columns of ``runs()``)."""
        with self.connection() as con:
            con.row_factory = sqlite3.Row
            row = con.execute("SELECT * FROM runs WHERE run_id = ?", (check_run_id(run_id),)).fetchone()
        if row is None:
            raise UnknownRunError.of(run_id, self.root)
        return self._row_dict(row)

    def error_detail(self, run_id: str) -> str | None:
        """The traceback of a failed run, when there is one."""
        return self._require(run_id, "error_detail")["error_detail"]

    def config(self, run_id: str) -> RunConfig:
        return RunConfig.from_json(self._require(run_id, "config")["config"])

    def metrics(self, run_id: str) -> pd.DataFrame:
        """One row per (layer, epoch) in training order; accuracies are NaN where not evaluated."""
        cols = ", ".join(METRICS_FRAME_COLUMNS)
        with self.connection() as con:  # one connection: live views call this every second (live.py)
            self._status(con, run_id)  # UnknownRunError for a run the store does not hold
            rows = con.execute(f"SELECT {cols} FROM epochs WHERE run_id = ? ORDER BY step, layer",
                               (run_id,)).fetchall()
        return _metrics_frame(rows)

    def metrics_long(self, run_ids: Iterable[str]) -> pd.DataFrame:
        """Several runs in long format: run_id, layer, epoch, step, metric, value (no NaN values)."""
        ids = [check_run_id(r) for r in ([run_ids] if isinstance(run_ids, str) else run_ids)]
        cols = ", ".join(METRICS_FRAME_COLUMNS)
        rows: list = []
        with self.connection() as con:
            con.execute("BEGIN")
            for run_id in ids:
                rows += con.execute(f"SELECT {cols} FROM epochs WHERE run_id = ? ORDER BY step, layer",
                                    (run_id,)).fetchall()
            con.execute("COMMIT")
        wide = _metrics_frame(rows)
        long = wide.melt(id_vars=["run_id", "layer", "epoch", "step"], value_vars=list(METRIC_COLUMNS),
                         var_name="metric", value_name="value")
        long = long.dropna(subset=["value"]).reset_index(drop=True)
        return long[list(LONG_FRAME_COLUMNS)]

    def significance(self, run_id: str) -> list[np.ndarray]:
        """Snapshots of each layer's significance factors: one (epochs, neurons) array per layer.

        Empty list for BP (no significance). Live while the run trains.
        """
        with self.connection() as con:
            con.execute("BEGIN")  # one snapshot: the file path and the BLOBs agree
            row = con.execute("SELECT config, significance_file FROM runs WHERE run_id = ?",
                              (check_run_id(run_id),)).fetchone()
            if row is None:
                con.execute("COMMIT")
                raise UnknownRunError.of(run_id, self.root)
            blobs = [] if row[1] else snapshots.stored_blobs(con, run_id)
            con.execute("COMMIT")
        config = RunConfig.from_json(row[0])
        if not has_factors(config.algo):
            return []
        if row[1]:
            path = self.root / row[1]
            try:
                return snapshots.read_npz(path, len(config.layers))
            except (OSError, KeyError, ValueError) as exc:
                raise StoreError(f"significance file {path} of run {run_id} cannot be read: {exc}") from None
        return snapshots.stack(blobs, config.layers)

    def load_model(self, run_id: str):
        """(model, config) from the run's checkpoint; StoreError when the run has none (yet)."""
        from ..engine.checkpoint import load_checkpoint  # imports torch; the rest of the read side does not

        path = self.checkpoint_path(run_id)
        if path is None:
            raise StoreError(f"run {run_id} has no checkpoint (status {self.status(run_id)}); "
                             "checkpoints are written when a run ends")
        return load_checkpoint(path)


def _metrics_frame(rows: list) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(METRICS_FRAME_COLUMNS))
    for c in ("layer", "epoch", "step"):
        frame[c] = frame[c].astype("int64")
    for c in METRIC_COLUMNS:
        frame[c] = frame[c].astype(float)
    return frame

