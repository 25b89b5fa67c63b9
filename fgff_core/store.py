"""The run store: every run's config, status, per-epoch metrics and files, in one data folder.

Layout of the folder (default ``./runs``, or ``$FGFF_RUNS_DIR``, or the ``runs_dir`` argument)::

    runs.sqlite                 SQLite in WAL mode: tables runs, epochs, managers
    <run_id>/model.safetensors  checkpoint written when the run ends
    <run_id>/significance.npz   significance snapshots over epochs, one array per layer
    <run_id>/<other files>      caches such as t-SNE embeddings (see ``artifact_path``)

Writes are short transactions committed once per epoch (about 20 microseconds each), so a crash
loses at most the epoch in flight. While a run trains, each epoch's significance snapshot is a
BLOB in its ``epochs`` row, committed with the metrics; when the run ends they are gathered into
``significance.npz`` (its path is stored in the run's row) and the BLOBs are cleared in the same
transaction. Readers (pages in other processes) use their own connections and see consistent
snapshots thanks to WAL.

A file at the database path that is not a run store of this library (another program's SQLite
database, a damaged file) raises ``StoreError`` and is never modified: the store checks the file
header (SQLite magic and our ``application_id``) before SQLite opens it for writing, and a new
database is built under a temporary name and linked into place, so it never replaces a file.

Run ids are 12 lowercase hex characters and every ``run_id`` argument is checked against that
pattern, so an id can never name a path outside the run's own folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import secrets
import shutil
import socket
import sqlite3
import time
import zipfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import RunConfig
from .events import EPOCH_METRIC_NAMES, EVAL_METRIC_NAMES, FINAL_METRIC_NAMES, EpochMetrics, EvalMetrics

RUNS_DIR_ENV = "FGFF_RUNS_DIR"
DEFAULT_RUNS_DIR = "runs"
DB_NAME = "runs.sqlite"
APPLICATION_ID = 0x46474646  # "FGFF" in the SQLite header: marks the file as ours
SCHEMA_VERSION = 1
CHECKPOINT_NAME = "model.safetensors"
SIGNIFICANCE_NAME = "significance.npz"

STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("done", "failed", "cancelled", "interrupted")

# Cancel flag values in runs.cancel_requested: what the worker reports when it stops early.
CANCEL_NONE, CANCEL_USER, CANCEL_SHUTDOWN = 0, 1, 2

_KEYS = ("layer", "epoch", "step")
EPOCH_COLUMNS = tuple(n for n in EPOCH_METRIC_NAMES if n not in _KEYS)  # loss, g_pos, ..., seconds
EVAL_COLUMNS = tuple(n for n in EVAL_METRIC_NAMES if n not in _KEYS)  # train_acc, test_acc, ...
FINAL_COLUMNS = tuple(n for n in FINAL_METRIC_NAMES if n != "status")  # test_acc, ..., wall_seconds
METRIC_COLUMNS = EPOCH_COLUMNS + tuple(c for c in EVAL_COLUMNS if c not in EPOCH_COLUMNS)
METRICS_FRAME_COLUMNS = ("run_id", "layer", "epoch", "step", *METRIC_COLUMNS)
LONG_FRAME_COLUMNS = ("run_id", "layer", "epoch", "step", "metric", "value")
RUNS_FRAME_COLUMNS = ("run_id", "name", "algo", "dataset", "status", "owner", "created_at", "started_at",
                      "finished_at", "error", "device", "config", "epochs_done", "epoch_events",
                      *(c for c in FINAL_COLUMNS if c != "wall_seconds"), "wall_seconds", "n_params", "origin")

_RUN_ID = re.compile(r"[0-9a-f]{12}")
_ARTIFACT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SQLITE_MAGIC = b"SQLite format 3\x00"


class StoreError(RuntimeError):
    """The run store cannot be used as asked (foreign or damaged database, bad folder, busy run)."""


class UnknownRunError(KeyError):
    """No run with this id in the store."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else "unknown run"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    return secrets.token_hex(6)


def check_run_id(run_id: Any) -> str:
    """Return ``run_id`` if it is a well-formed id (12 hex chars); raise ValueError otherwise."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"run_id: expected 12 lowercase hex characters, got {run_id!r}")
    return run_id


def check_artifact_name(name: Any) -> str:
    """A plain file name: letters, digits, '.', '_', '-'; no folders, no '..'."""
    if not isinstance(name, str) or not _ARTIFACT_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"artifact name: expected a plain file name of letters, digits, '.', '_' or '-' "
                         f"(no folders, no '..'), got {name!r}")
    return name


def resolve_runs_dir(runs_dir: str | os.PathLike | None = None) -> Path:
    """``runs_dir``, else ``$FGFF_RUNS_DIR``, else ``./runs``; made absolute."""
    chosen = runs_dir if runs_dir is not None else os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR
    return Path(chosen).expanduser().resolve()


def default_run_name(config: RunConfig) -> str:
    return f"{config.algo} {config.dataset} {'x'.join(str(n) for n in config.layers)}"


def _schema_sql() -> list[str]:
    final = ", ".join(f"{c} REAL" for c in FINAL_COLUMNS)
    metrics = ", ".join(f"{c} REAL" for c in METRIC_COLUMNS)
    return [
        f"""CREATE TABLE runs (
            run_id TEXT PRIMARY KEY, name TEXT NOT NULL, algo TEXT NOT NULL, dataset TEXT NOT NULL,
            owner TEXT, status TEXT NOT NULL, config TEXT NOT NULL, origin TEXT NOT NULL DEFAULT 'trained',
            created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, error TEXT, error_detail TEXT,
            device TEXT, n_params INTEGER, epochs_done INTEGER NOT NULL DEFAULT 0, epoch_events INTEGER,
            {final}, checkpoint TEXT, significance_file TEXT, manager_id TEXT, pid INTEGER,
            cancel_requested INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX runs_status ON runs(status)",
        f"""CREATE TABLE epochs (
            run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            layer INTEGER NOT NULL, epoch INTEGER NOT NULL, step INTEGER NOT NULL, {metrics},
            significance BLOB, PRIMARY KEY (run_id, layer, epoch)) WITHOUT ROWID""",
        """CREATE TABLE managers (
            manager_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
            started_at TEXT NOT NULL, heartbeat REAL NOT NULL)""",
    ]


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


class RunStore:
    """Read and write runs in a data folder; safe to open from many processes at once.

    The read side (``runs``, ``metrics``, ``significance``, ...) needs no job manager: pages and
    scripts open their own ``RunStore``. ``JobManager`` and its workers use the write side.
    """

    def __init__(self, runs_dir: str | os.PathLike | None = None) -> None:
        self.root = resolve_runs_dir(runs_dir)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"runs folder {self.root} exists but is not a folder")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the runs folder {self.root}: {exc}") from None
        self.db_path = self.root / DB_NAME
        if not self.db_path.exists():
            self._create_database()
        self._check_header()
        with self._db() as con:
            self._check_schema(con)

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # -- opening ------------------------------------------------------------------------------
    def _create_database(self) -> None:
        """Build the schema in a temporary file and link it into place (never over a file)."""
        tmp = self.root / f".{DB_NAME}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            con = sqlite3.connect(tmp, isolation_level=None)
            try:
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                con.execute("BEGIN")
                for sql in _schema_sql():
                    con.execute(sql)
                con.execute("COMMIT")
                con.execute("PRAGMA journal_mode = WAL")  # persistent: stored in the file header
            finally:
                con.close()
            try:
                os.link(tmp, self.db_path)  # atomic, fails if another process got there first
            except FileExistsError:
                pass
            except OSError:  # file systems without hard links
                if not self.db_path.exists():
                    os.replace(tmp, self.db_path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create the run database in {self.root}: {exc}") from None
        finally:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    def _foreign(self, why: str) -> StoreError:
        return StoreError(f"{self.db_path} is not an FGFF Explorer run database ({why}). It was left untouched; "
                          f"move it away or choose another runs folder (runs_dir or ${RUNS_DIR_ENV}).")

    def _check_header(self) -> None:
        """Look at the raw header before SQLite writes anything to the file."""
        if not self.db_path.is_file():
            raise StoreError(f"{self.db_path} exists but is not a regular file")
        try:
            with open(self.db_path, "rb") as handle:
                header = handle.read(100)
        except OSError as exc:
            raise StoreError(f"cannot read {self.db_path}: {exc}") from None
        if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
            raise self._foreign("not an SQLite database: damaged, truncated or another kind of file")
        app_id = int.from_bytes(header[68:72], "big")
        if app_id != APPLICATION_ID:
            raise self._foreign(f"an SQLite database of another program, application_id {app_id:#x}")

    def _check_schema(self, con: sqlite3.Connection) -> None:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.db_path} was written by a newer FGFF Explorer (schema {version}, this "
                             f"version reads up to {SCHEMA_VERSION}); upgrade fgff_core. The file was left untouched.")
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = {"runs", "epochs", "managers"} - tables
        if missing:
            raise self._foreign(f"tables {sorted(missing)} are missing")
        # Metric columns follow events.py: add any the engine gained since the file was made.
        for table, wanted in (("epochs", METRIC_COLUMNS), ("runs", FINAL_COLUMNS)):
            have = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
            for column in wanted:
                if column not in have:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {column} REAL")

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection in autocommit mode (use BEGIN/COMMIT explicitly); errors as StoreError."""
        try:
            con = self.connect()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.db_path}: {exc}") from None
        try:
            yield con
        except BaseException as exc:
            if con.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"run database {self.db_path}: {exc}") from None
            raise
        finally:
            con.close()

    def connect(self) -> sqlite3.Connection:
        """A new connection with the store's settings; the caller closes it."""
        con = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA busy_timeout = 30000")
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA synchronous = NORMAL")  # WAL: durable across process crashes
        return con

    @contextlib.contextmanager
    def _transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        with self._db() as con:
            con.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            yield con
            con.execute("COMMIT")

    # -- paths --------------------------------------------------------------------------------
    def run_dir(self, run_id: str, create: bool = False) -> Path:
        path = self.root / check_run_id(run_id)
        if create:
            path.mkdir(exist_ok=True)
        return path

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
                   manager_id: str | None = None, status: str = "queued", origin: str = "trained") -> str:
        config = RunConfig.coerce(config)
        if status not in STATUSES:
            raise ValueError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
        name = default_run_name(config) if name is None or not str(name).strip() else str(name).strip()
        epoch_events = config.epochs if config.algo == "bp" else config.epochs * len(config.layers)
        for _ in range(5):
            run_id = new_run_id()
            try:
                with self._transaction(immediate=True) as con:
                    con.execute(
                        "INSERT INTO runs (run_id, name, algo, dataset, owner, status, config, origin, created_at, "
                        "epoch_events, manager_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, name[:200], config.algo, config.dataset, owner, status, config.to_json(), origin,
                         now_iso(), epoch_events, manager_id))
                return run_id
            except StoreError as exc:
                if "UNIQUE" not in str(exc):
                    raise
        raise StoreError("could not draw an unused run id")  # pragma: no cover - 48 random bits

    def rename(self, run_id: str, name: str) -> None:
        name = str(name).strip()
        if not name:
            raise ValueError("name: must not be empty")
        with self._transaction(immediate=True) as con:
            sql = "UPDATE runs SET name = ? WHERE run_id = ?"
            if con.execute(sql, (name[:200], check_run_id(run_id))).rowcount != 1:
                raise UnknownRunError(f"no run {run_id!r} in {self.root}")

    def request_cancel(self, run_id: str, flag: int = CANCEL_USER) -> str:
        """Cancel a queued run at once; flag a running one (its worker stops after the epoch).

        Returns the status after the request; finished runs are left as they are.
        """
        with self._transaction(immediate=True) as con:
            status = self._status(con, run_id)
            if status == "queued":
                final = "cancelled" if flag == CANCEL_USER else "interrupted"
                why = None if flag == CANCEL_USER else "the server stopped before this run started; resubmit it"
                con.execute("UPDATE runs SET status = ?, finished_at = ?, error = ?, cancel_requested = ? "
                            "WHERE run_id = ?", (final, now_iso(), why, flag, run_id))
                return final
            if status == "running":
                con.execute("UPDATE runs SET cancel_requested = MAX(cancel_requested, ?) WHERE run_id = ?",
                            (flag, run_id))
            return status

    def cancel(self, run_id: str) -> str:
        return self.request_cancel(run_id, CANCEL_USER)

    def claim(self, run_id: str, manager_id: str | None = None) -> bool:
        """queued -> running, unless something (a cancel) changed the run first."""
        with self._transaction(immediate=True) as con:
            return con.execute("UPDATE runs SET status = 'running', started_at = ?, manager_id = COALESCE(?, "
                               "manager_id) WHERE run_id = ? AND status = 'queued'",
                               (now_iso(), manager_id, check_run_id(run_id))).rowcount == 1

    def set_pid(self, run_id: str, pid: int | None) -> None:
        with self._transaction(immediate=True) as con:
            con.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (pid, check_run_id(run_id)))

    def finish_run(self, run_id: str, status: str, error: str | None = None, error_detail: str | None = None,
                   only_if_active: bool = True) -> bool:
        """Set a final status (with a readable reason) unless the run already has one."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status: {status!r} is not a final status ({', '.join(FINAL_STATUSES)})")
        sql = "UPDATE runs SET status = ?, finished_at = ?, error = ?, error_detail = ? WHERE run_id = ?"
        if only_if_active:
            sql += " AND status IN ('queued', 'running')"
        with self._transaction(immediate=True) as con:
            return con.execute(sql, (status, now_iso(), error, error_detail, check_run_id(run_id))).rowcount == 1

    def writer(self, run_id: str) -> RunWriter:
        """The per-epoch writer a worker uses for one run."""
        self._require(run_id)
        return RunWriter(self, run_id)

    def delete(self, run_id: str, force: bool = False) -> None:
        """Remove the run's rows and its folder. A queued or running run needs ``force``."""
        with self._transaction(immediate=True) as con:
            status = self._status(con, run_id)
            if status in ACTIVE_STATUSES and not force:
                raise StoreError(f"run {run_id} is {status}; cancel it before deleting it")
            con.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            con.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    # -- managers (liveness of job managers, to find orphaned runs) -----------------------------
    def register_manager(self, manager_id: str) -> None:
        with self._transaction(immediate=True) as con:
            con.execute("INSERT OR REPLACE INTO managers VALUES (?, ?, ?, ?, ?)",
                        (manager_id, socket.gethostname(), os.getpid(), now_iso(), time.time()))

    def heartbeat(self, manager_id: str) -> None:
        with self._transaction(immediate=True) as con:
            con.execute("UPDATE managers SET heartbeat = ? WHERE manager_id = ?", (time.time(), manager_id))

    def unregister_manager(self, manager_id: str) -> None:
        with self._transaction(immediate=True) as con:
            con.execute("DELETE FROM managers WHERE manager_id = ?", (manager_id,))

    def managers(self) -> list[dict[str, Any]]:
        with self._db() as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute("SELECT * FROM managers")]

    def active_runs(self) -> list[dict[str, Any]]:
        """Queued and running runs: run_id, status, manager_id, pid, owner."""
        with self._db() as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(
                "SELECT run_id, status, manager_id, pid, owner, created_at FROM runs "
                "WHERE status IN ('queued', 'running') ORDER BY created_at, rowid")]

    def next_queued(self, manager_id: str) -> str | None:
        with self._db() as con:
            row = con.execute("SELECT run_id FROM runs WHERE status = 'queued' AND manager_id = ? "
                              "ORDER BY created_at, rowid LIMIT 1", (manager_id,)).fetchone()
        return row[0] if row else None

    def count_active(self, owner: str | None) -> int:
        with self._db() as con:
            return con.execute("SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running') AND owner IS ?",
                               (owner,)).fetchone()[0]

    # -- reading ------------------------------------------------------------------------------
    def _status(self, con: sqlite3.Connection, run_id: str) -> str:
        row = con.execute("SELECT status FROM runs WHERE run_id = ?", (check_run_id(run_id),)).fetchone()
        if row is None:
            raise UnknownRunError(f"no run {run_id!r} in {self.root}")
        return row[0]

    def _require(self, run_id: str, *columns: str) -> dict[str, Any]:
        cols = ", ".join(("run_id", *columns))
        with self._db() as con:
            con.row_factory = sqlite3.Row
            row = con.execute(f"SELECT {cols} FROM runs WHERE run_id = ?", (check_run_id(run_id),)).fetchone()
        if row is None:
            raise UnknownRunError(f"no run {run_id!r} in {self.root}")
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
        with self._db() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC").fetchall()
        frame = pd.DataFrame([self._row_dict(r) for r in rows], columns=list(RUNS_FRAME_COLUMNS))
        for c in FINAL_COLUMNS:
            frame[c] = frame[c].astype(float)
        return frame

    def run(self, run_id: str) -> dict[str, Any]:
        """The run's row as a dict (the columns of ``runs()``)."""
        with self._db() as con:
            con.row_factory = sqlite3.Row
            row = con.execute("SELECT * FROM runs WHERE run_id = ?", (check_run_id(run_id),)).fetchone()
        if row is None:
            raise UnknownRunError(f"no run {run_id!r} in {self.root}")
        return self._row_dict(row)

    def error_detail(self, run_id: str) -> str | None:
        """The traceback of a failed run, when there is one."""
        return self._require(run_id, "error_detail")["error_detail"]

    def config(self, run_id: str) -> RunConfig:
        return RunConfig.from_json(self._require(run_id, "config")["config"])

    def metrics(self, run_id: str) -> pd.DataFrame:
        """One row per (layer, epoch) in training order; accuracies are NaN where not evaluated."""
        self._require(run_id)
        cols = ", ".join(METRICS_FRAME_COLUMNS)
        with self._db() as con:
            rows = con.execute(f"SELECT {cols} FROM epochs WHERE run_id = ? ORDER BY step, layer",
                               (run_id,)).fetchall()
        return _metrics_frame(rows)

    def metrics_long(self, run_ids: Iterable[str]) -> pd.DataFrame:
        """Several runs in long format: run_id, layer, epoch, step, metric, value (no NaN values)."""
        ids = [check_run_id(r) for r in ([run_ids] if isinstance(run_ids, str) else run_ids)]
        cols = ", ".join(METRICS_FRAME_COLUMNS)
        rows: list = []
        with self._db() as con:
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
        with self._db() as con:
            con.execute("BEGIN")  # one snapshot: the file path and the BLOBs agree
            row = con.execute("SELECT config, significance_file FROM runs WHERE run_id = ?",
                              (check_run_id(run_id),)).fetchone()
            if row is None:
                con.execute("COMMIT")
                raise UnknownRunError(f"no run {run_id!r} in {self.root}")
            blobs = [] if row[1] else con.execute(
                "SELECT layer, significance FROM epochs WHERE run_id = ? AND significance IS NOT NULL "
                "ORDER BY layer, step", (run_id,)).fetchall()
            con.execute("COMMIT")
        config = RunConfig.from_json(row[0])
        if config.algo == "bp":
            return []
        if row[1]:
            path = self.root / row[1]
            try:
                with np.load(path) as data:
                    return [data[f"layer{i}"] for i in range(len(config.layers))]
            except (OSError, KeyError, ValueError) as exc:
                raise StoreError(f"significance file {path} of run {run_id} cannot be read: {exc}") from None
        per_layer: list[list[np.ndarray]] = [[] for _ in config.layers]
        for layer, blob in blobs:
            if 0 <= layer < len(per_layer):
                per_layer[layer].append(np.frombuffer(blob, dtype=np.float32))
        return [np.stack(snaps) if snaps else np.zeros((0, n), np.float32)
                for snaps, n in zip(per_layer, config.layers)]

    # -- export / import ------------------------------------------------------------------------
    def export(self, run_id: str, dest_dir: str | os.PathLike) -> Path:
        """A zip with config.json, run.json, metrics.csv, significance.npz and the checkpoint."""
        run = self.run(run_id)
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / f"fgff-run-{run_id}.zip"
        tmp = dest / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("config.json", json.dumps(run["config"], indent=2, sort_keys=True))
                info = {k: _plain(v) for k, v in run.items() if k != "config"}
                zf.writestr("run.json", json.dumps(info, indent=2))
                zf.writestr("metrics.csv", self.metrics(run_id).to_csv(index=False))
                sig = self.significance(run_id)
                if sig:
                    buffer = io.BytesIO()
                    np.savez(buffer, **{f"layer{i}": a for i, a in enumerate(sig)})
                    zf.writestr(SIGNIFICANCE_NAME, buffer.getvalue())
                checkpoint = self.checkpoint_path(run_id)
                if checkpoint is not None:
                    zf.write(checkpoint, CHECKPOINT_NAME)
            tmp.replace(target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return target

    def import_checkpoint(self, path: str | os.PathLike, name: str | None = None, owner: str | None = None) -> str:
        """Make a run ("done", origin "imported") out of a checkpoint file, to inspect it in the app.

        The file is fully loaded first, so a foreign or pickled file is refused (CheckpointError).
        Its significance factors become a one-snapshot ``significance`` per layer; there are no
        per-epoch metrics.
        """
        from .checkpoint import load_checkpoint  # imports torch; the read side does not need it

        model, config = load_checkpoint(path)
        name = name or f"imported {Path(path).name}"
        run_id = self.create_run(config, name=name, owner=owner, status="running", origin="imported")
        folder = self.run_dir(run_id, create=True)
        shutil.copyfile(path, folder / CHECKPOINT_NAME)
        sig_file = None
        if config.algo != "bp":
            arrays = {f"layer{i}": layer.significance.detach().cpu().numpy()[None, :].astype(np.float32)
                      for i, layer in enumerate(model.layers)}
            _save_npz_atomic(folder / SIGNIFICANCE_NAME, arrays)
            sig_file = f"{run_id}/{SIGNIFICANCE_NAME}"
        stamp = now_iso()
        with self._transaction(immediate=True) as con:
            con.execute("UPDATE runs SET status = 'done', started_at = ?, finished_at = ?, device = 'imported', "
                        "epoch_events = 0, n_params = ?, checkpoint = ?, significance_file = ? WHERE run_id = ?",
                        (stamp, stamp, sum(p.numel() for p in model.parameters()), f"{run_id}/{CHECKPOINT_NAME}",
                         sig_file, run_id))
        return run_id


class RunWriter:
    """Writes one run's events as they come: one short transaction per epoch.

    Used inside the worker process; holds one connection for the run's lifetime.
    """

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, check_run_id(run_id)
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

    def epoch(self, event: EpochMetrics) -> None:
        """Insert the epoch's row and commit (with its significance snapshot as a float32 BLOB)."""
        sig = None if event.significance is None else np.asarray(event.significance, np.float32).tobytes()
        values = [_float_or_none(getattr(event, c)) for c in EPOCH_COLUMNS]
        self._epochs_done += 1
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(self._epoch_sql, (self.run_id, event.layer, event.epoch, event.step, *values, sig))
            con.execute("UPDATE runs SET epochs_done = ? WHERE run_id = ?", (self._epochs_done, self.run_id))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def evaluation(self, event: EvalMetrics) -> None:
        values = [_float_or_none(getattr(event, c)) for c in EVAL_COLUMNS]
        self.con.execute(self._eval_sql, (self.run_id, event.layer, event.epoch, event.step, *values))

    def finish(self, status: str, final: dict[str, Any] | None = None, checkpoint: Path | None = None,
               error: str | None = None, error_detail: str | None = None) -> bool:
        """Gather the significance BLOBs into significance.npz, then write the final row."""
        store, run_id = self.store, self.run_id
        sig_file = None
        config = RunConfig.from_json(self.con.execute("SELECT config FROM runs WHERE run_id = ?",
                                                      (run_id,)).fetchone()[0])
        if config.algo != "bp":
            arrays = {f"layer{i}": a for i, a in enumerate(store.significance(run_id))}
            _save_npz_atomic(store.run_dir(run_id, create=True) / SIGNIFICANCE_NAME, arrays)
            sig_file = f"{run_id}/{SIGNIFICANCE_NAME}"
        final = final or {}
        cols = ", ".join(f"{c} = ?" for c in FINAL_COLUMNS)
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            changed = con.execute(
                f"UPDATE runs SET status = ?, finished_at = ?, error = ?, error_detail = ?, {cols}, "
                f"checkpoint = ?, significance_file = ? WHERE run_id = ? AND status = 'running'",
                (status, now_iso(), error, error_detail, *(_float_or_none(final.get(c)) for c in FINAL_COLUMNS),
                 None if checkpoint is None else str(checkpoint.relative_to(store.root)), sig_file,
                 run_id)).rowcount == 1
            if sig_file is not None:
                con.execute("UPDATE epochs SET significance = NULL WHERE run_id = ?", (run_id,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return changed


def _save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    tmp.replace(path)


def _metrics_frame(rows: list) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(METRICS_FRAME_COLUMNS))
    for c in ("layer", "epoch", "step"):
        frame[c] = frame[c].astype("int64")
    for c in METRIC_COLUMNS:
        frame[c] = frame[c].astype(float)
    return frame


def _plain(value: Any) -> Any:
    """A JSON-safe value: numpy scalars as Python numbers, NaN/inf as None."""
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
