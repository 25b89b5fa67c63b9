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
import os
import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._files import temp_path
from ..config.schema import RunConfig
from ..engine.events import EPOCH_METRIC_NAMES, EVAL_METRIC_NAMES, FINAL_METRIC_NAMES
from ..vocabulary import ACTIVE_STATUSES, RunStatus
from .errors import DiskFullError, StoreError, disk_full_message, free_bytes, is_disk_full

RUNS_DIR_ENV = "FGFF_RUNS_DIR"
DEFAULT_RUNS_DIR = "runs"
DB_NAME = "runs.sqlite"
APPLICATION_ID = 0x46474646  # "FGFF" in the SQLite header: marks the file as ours
SCHEMA_VERSION = 1  # new nullable columns are added on open (see _EXTRA_COLUMNS)
CHECKPOINT_NAME = "model.safetensors"
SIGNIFICANCE_NAME = "significance.npz"

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
    """Opens (or creates) ``runs.sqlite`` in ``root`` and hands out connections with its settings.

    ``read_only`` (also chosen by itself when the folder cannot be written, e.g. a read-only mount):
    nothing is created, connections are SQLite's read-only ones, and every write raises
    ``StoreError`` saying why (``read_only_reason``).
    """

    def __init__(self, runs_dir: str | os.PathLike | None = None, read_only: bool = False) -> None:
        self.root = resolve_runs_dir(runs_dir)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"runs folder {self.root} exists but is not a folder")
        self.read_only = bool(read_only) or (self.root.is_dir() and not self._folder_writable())
        if self.read_only and not self.root.is_dir():
            raise StoreError(f"the runs folder {self.root} does not exist, so there are no runs to read")
        if not self.read_only:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the runs folder {self.root}: {exc}") from None
        self.db_path = self.root / DB_NAME
        if not self.db_path.exists():
            if self.read_only:
                raise StoreError(f"{self.read_only_reason}; it holds no run database ({DB_NAME}) to read, and none "
                                 f"can be made there (choose another runs_dir or ${RUNS_DIR_ENV})")
            self._create_database()
        self._check_header()
        with self.connection() as con:
            self._check_schema(con)

    def _create_database(self) -> None:
        """Build the schema in a temporary file and link it into place (never over a file)."""
        tmp = temp_path(self.root / DB_NAME)  # the atomic write's temp name; linked, never renamed over a file
        try:
            con = sqlite3.connect(tmp, isolation_level=None)
            try:
                con.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table; see reclaim_space
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

    def run_dir(self, run_id: str, create: bool = False) -> Path:
        """The run's own folder in the data folder (made, on a writable store, with ``create``)."""
        path = self.root / check_run_id(run_id)
        if create:
            self.require_writable()
            path.mkdir(exist_ok=True)
        return path

    def _folder_writable(self) -> bool:
        return os.access(self.root, os.W_OK)  # a read-only mount says no even to root

    @property
    def read_only_reason(self) -> str:
        """Why this store takes no writes (for messages); meaningful only when ``read_only``."""
        if self._folder_writable():
            return f"the run store in {self.root} was opened read-only"
        return f"the runs folder {self.root} is read-only"

    def read_only_error(self) -> StoreError:
        return StoreError(f"{self.read_only_reason}; its runs can be read, but none can be created, changed or "
                          f"deleted (choose a writable runs_dir or ${RUNS_DIR_ENV})")

    def require_writable(self) -> None:
        """Raise ``read_only_error()`` unless this store may write."""
        if self.read_only:
            raise self.read_only_error()

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
        wanted = [("epochs", c, "REAL") for c in METRIC_COLUMNS] + [("runs", c, "REAL") for c in FINAL_COLUMNS]
        wanted += [("runs", c, "TEXT") for c in _EXTRA_COLUMNS]
        have = {t: {row[1] for row in con.execute(f"PRAGMA table_info({t})")} for t in ("epochs", "runs")}
        for table, column, kind in wanted:
            if column not in have[table]:
                if self.read_only:
                    raise StoreError(f"{self.db_path} was written by an older FGFF Explorer and needs new columns, "
                                     f"which cannot be added: {self.read_only_error()}")
                con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

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
                if self.read_only and getattr(exc, "sqlite_errorname", "").startswith("SQLITE_READONLY"):
                    raise self.read_only_error() from None
                if is_disk_full(exc, self.root):
                    raise DiskFullError(disk_full_message(self.root)) from None
                raise StoreError(f"run database {self.db_path}: {exc}") from None
            raise
        finally:
            con.close()

    def connect(self) -> sqlite3.Connection:
        """A new connection with the store's settings; the caller closes it."""
        if self.read_only:
            return self._connect_read_only()
        con = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA busy_timeout = 30000")
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA synchronous = NORMAL")  # WAL: durable across process crashes
        # Fold the WAL back into the database every WAL_CHECKPOINT_PAGES pages (SQLite's default is
        # 1000, 4 MB): the WAL then reuses its own space, so a disk that fills up still has room
        # there for a run's final status ("failed: no space left on device ...").
        con.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        return con

    def _connect_read_only(self) -> sqlite3.Connection:
        """SQLite's read-only mode. In WAL mode even a reader needs the ``-shm`` file; where the folder
        cannot be written and no writer has the database open (no ``-wal`` file), it cannot be made,
        so the file is opened as immutable: no lock, no file beside it."""
        uri = f"{self.db_path.as_uri()}?mode=ro"
        if not self._folder_writable() and not Path(f"{self.db_path}-wal").exists():
            uri += "&immutable=1"
        con = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA busy_timeout = 30000")
        return con

    def reclaim_space(self) -> int:
        """Give the database's free pages back to the file system; return how many bytes that freed
        (the database and its WAL together).

        SQLite keeps the pages of deleted rows (deleted runs, significance snapshots moved into their
        file when a run ends) inside the file for reuse; on a disk that is short of space they are
        space no one else can use. The job manager calls this when the disk is short.

        Why not a plain VACUUM: it rebuilds the whole file, and the new copy passes through the WAL,
        so it needs about the database's size free again, which a short disk is the least likely to
        have. Databases made by this version are created with ``auto_vacuum = INCREMENTAL`` (it can
        only be chosen before the first table), where ``PRAGMA incremental_vacuum`` moves pages from
        the end of the file into the holes and cuts the file, a few pages at a time through the WAL:
        it needs almost no free space. Older files (``auto_vacuum = NONE``) get one VACUUM, which also
        switches them to incremental, only when the disk has room for it (twice their live data:
        the WAL copy, and the temporary copy SQLite builds, which may be on this disk too);
        otherwise their free pages stay until it has.
        """
        before = self._files_size()
        with self.connection() as con:
            con.execute("PRAGMA busy_timeout = 2000")  # the scheduler thread must not stall on a long write
            page_size = con.execute("PRAGMA page_size").fetchone()[0]
            free_pages = con.execute("PRAGMA freelist_count").fetchone()[0]
            if free_pages == 0:
                return 0
            if con.execute("PRAGMA auto_vacuum").fetchone()[0] == 0:  # NONE: a file made before this version
                live = (con.execute("PRAGMA page_count").fetchone()[0] - free_pages) * page_size
                if free_bytes(self.root) < 2 * live:
                    return 0
                con.execute("PRAGMA auto_vacuum = INCREMENTAL")
                con.execute("VACUUM")
            else:
                while free_pages:  # executescript steps the pragma to its end (execute frees one page)
                    con.executescript(f"PRAGMA incremental_vacuum({WAL_CHECKPOINT_PAGES})")
                    left = con.execute("PRAGMA freelist_count").fetchone()[0]
                    if left >= free_pages:
                        break
                    free_pages = left
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file is cut when the WAL is folded back
        return max(0, before - self._files_size())

    def _files_size(self) -> int:
        total = 0
        for path in (self.db_path, Path(f"{self.db_path}-wal")):
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    @contextlib.contextmanager
    def transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """A transaction; ``immediate`` takes the write lock at once (every write goes this way, so a
        read-only store refuses it here, even where the write would have changed nothing)."""
        if immediate:
            self.require_writable()
        with self.connection() as con:
            con.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            yield con
            con.execute("COMMIT")

