"""The run database: its file, schema, connections and the names and checks every part shares.

A file at the database path that is not a run store of this library (another program's SQLite
database, a damaged file) raises ``StoreError`` and is never modified: the header (SQLite magic
and our ``application_id``) is checked before SQLite opens the file for writing, and a new
database is built under a temporary name and linked into place, so it never replaces a file.

Run ids are 12 lowercase hex characters and every ``run_id`` argument is checked against that
pattern, so an id can never name a path outside the run's own folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..events import EPOCH_METRIC_NAMES, EVAL_METRIC_NAMES, FINAL_METRIC_NAMES
from ..status import ACTIVE_STATUSES, RunStatus

RUNS_DIR_ENV = "FGFF_RUNS_DIR"
DEFAULT_RUNS_DIR = "runs"
DB_NAME = "runs.sqlite"
APPLICATION_ID = 0x46474646  # "FGFF" in the SQLite header: marks the file as ours
SCHEMA_VERSION = 1  # new nullable columns are added on open (see _EXTRA_COLUMNS)
CHECKPOINT_NAME = "model.safetensors"
SIGNIFICANCE_NAME = "significance.npz"

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
                      *(c for c in FINAL_COLUMNS if c != "wall_seconds"), "wall_seconds", "n_params", "origin",
                      "wait_reason", "node")

_RUN_ID = re.compile(r"[0-9a-f]{12}")
_ARTIFACT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SQLITE_MAGIC = b"SQLite format 3\x00"


class StoreError(RuntimeError):
    """The run store cannot be used as asked (foreign or damaged database, bad folder, busy run)."""


class DiskFullError(StoreError):
    """The file system holding the runs folder is full (the message names the folder)."""


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


def sql_in(statuses: Iterable[RunStatus]) -> str:
    """An SQL ``IN`` list of status values, e.g. ``('queued', 'running')``, built from the enum."""
    return "(" + ", ".join(f"'{RunStatus(s).value}'" for s in sorted(statuses)) + ")"


ACTIVE_IN = sql_in(ACTIVE_STATUSES)


WAL_CHECKPOINT_PAGES = 64  # 256 KiB with SQLite's 4 KiB pages
LOW_SPACE_BYTES = 64 << 10  # below this, an SQLite I/O error in the runs folder is put down to a full disk


def is_disk_full(exc: BaseException, root: Path | None = None) -> bool:
    """True for "no space left on device" from the OS or from SQLite ("database or disk is full").

    With ``root``, an SQLite "disk I/O error" counts too when that folder's disk has (almost) no
    free space: SQLite reports a full disk so when it cannot grow its shared-memory file.
    """
    if isinstance(exc, DiskFullError):
        return True
    if isinstance(exc, OSError) and (exc.errno in (errno.ENOSPC, errno.EDQUOT)
                                     or "no space left on device" in str(exc).lower()):
        return True
    if not isinstance(exc, sqlite3.Error | StoreError):
        return False
    text = str(exc).lower()
    return "disk is full" in text or ("i/o error" in text and root is not None and free_bytes(root) < LOW_SPACE_BYTES)


def free_bytes(root: Path) -> int:
    """Free space on the disk holding ``root`` (a large number when it cannot be told)."""
    try:
        return shutil.disk_usage(root).free
    except OSError:
        return 1 << 62


def disk_full_message(root: Path) -> str:
    return f"no space left on device in {root}"


# Nullable text columns added after schema 1: created with new files, added to older ones on open.
# wait_reason: why a queued run is not starting (e.g. a full disk); node: where the run trained.
_EXTRA_COLUMNS = ("wait_reason", "node")


def _schema_sql() -> list[str]:
    final = ", ".join(f"{c} REAL" for c in FINAL_COLUMNS)
    extra = ", ".join(f"{c} TEXT" for c in _EXTRA_COLUMNS)
    metrics = ", ".join(f"{c} REAL" for c in METRIC_COLUMNS)
    return [
        f"""CREATE TABLE runs (
            run_id TEXT PRIMARY KEY, name TEXT NOT NULL, algo TEXT NOT NULL, dataset TEXT NOT NULL,
            owner TEXT, status TEXT NOT NULL, config TEXT NOT NULL, origin TEXT NOT NULL DEFAULT 'trained',
            created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, error TEXT, error_detail TEXT,
            device TEXT, n_params INTEGER, epochs_done INTEGER NOT NULL DEFAULT 0, epoch_events INTEGER,
            {final}, checkpoint TEXT, significance_file TEXT, manager_id TEXT, pid INTEGER,
            cancel_requested INTEGER NOT NULL DEFAULT 0, {extra})""",
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


class Database:
    """Opens (or creates) ``runs.sqlite`` in ``root`` and hands out connections with its settings."""

    def __init__(self, runs_dir: str | os.PathLike | None = None) -> None:
        self.root = resolve_runs_dir(runs_dir)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"runs folder {self.root} exists but is not a folder")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the runs folder {self.root}: {exc}") from None
        if not os.access(self.root, os.W_OK):  # SQLite in WAL mode writes beside the file even to read
            raise StoreError(f"the runs folder {self.root} is read-only; the run database needs a folder it can "
                             f"write to (choose another runs_dir or ${RUNS_DIR_ENV})")
        self.db_path = self.root / DB_NAME
        if not self.db_path.exists():
            self._create_database()
        self._check_header()
        with self.connection() as con:
            self._check_schema(con)

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
                with contextlib.suppress(OSError):  # absent, or a folder that turned read-only
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
        have = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
        for column in _EXTRA_COLUMNS:
            if column not in have:
                con.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection in autocommit mode (use BEGIN/COMMIT explicitly); errors as StoreError."""
        try:
            con = self.connect()
        except sqlite3.Error as exc:
            if is_disk_full(exc, self.root):
                raise DiskFullError(disk_full_message(self.root)) from None
            raise StoreError(f"cannot open {self.db_path}: {exc}") from None
        try:
            yield con
        except BaseException as exc:
            if con.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                if is_disk_full(exc, self.root):
                    raise DiskFullError(disk_full_message(self.root)) from None
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
        # Fold the WAL back into the database every WAL_CHECKPOINT_PAGES pages (SQLite's default is
        # 1000, 4 MB): the WAL then reuses its own space, so a disk that fills up still has room
        # there for a run's final status ("failed: no space left on device ...").
        con.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        return con

    @contextlib.contextmanager
    def transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        with self.connection() as con:
            con.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            yield con
            con.execute("COMMIT")

