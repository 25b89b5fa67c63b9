"""``RunQueue``: the scheduler's side of the run store (which run starts next, who trains it, what runs now).

The queue is the ``runs`` table itself: a queued row waits, ``claim`` moves it to running for one
manager. ``JobManager`` and the executors use it through ``RunStore.queue``, which shares the
store's database; pages and scripts that only read runs never need it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from ..vocabulary import RunStatus
from .schema import ACTIVE_IN, Database, check_run_id, now_iso


class RunQueue:
    """Claim queued runs, record their worker, say why they wait, and list the active ones."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __repr__(self) -> str:
        return f"RunQueue({str(self.db.root)!r})"

    def claim(self, run_id: str, manager_id: str | None = None) -> bool:
        """queued -> running, unless something (a cancel) changed the run first."""
        with self.db.transaction(immediate=True) as con:
            return con.execute("UPDATE runs SET status = ?, started_at = ?, wait_reason = NULL, "
                               "manager_id = COALESCE(?, manager_id) WHERE run_id = ? AND status = ?",
                               (RunStatus.RUNNING.value, now_iso(), manager_id, check_run_id(run_id),
                                RunStatus.QUEUED.value)).rowcount == 1

    def set_pid(self, run_id: str, pid: int | None) -> None:
        """Record the process (or Ray task's process) that trains a claimed run."""
        with self.db.transaction(immediate=True) as con:
            con.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (pid, check_run_id(run_id)))

    def set_wait_reason(self, run_ids: Iterable[str], reason: str | None) -> None:
        """Say why queued runs are not starting (None: clear it); shown with the run's status."""
        ids = [check_run_id(r) for r in run_ids]
        with self.db.transaction(immediate=True) as con:
            con.executemany(f"UPDATE runs SET wait_reason = ? WHERE run_id = ? AND status = '{RunStatus.QUEUED}'",
                            [(reason, r) for r in ids])

    def next_queued(self, manager_id: str) -> str | None:
        """The oldest queued run that ``manager_id`` submitted, or None."""
        with self.db.connection() as con:
            row = con.execute(f"SELECT run_id FROM runs WHERE status = '{RunStatus.QUEUED}' AND manager_id = ? "
                              "ORDER BY created_at, rowid LIMIT 1", (manager_id,)).fetchone()
        return row[0] if row else None

    def active_runs(self) -> list[dict[str, Any]]:
        """Queued and running runs, oldest first: run_id, status, manager_id, pid, owner, created_at, node.

        The scheduler's view of every manager's runs: its own to start and stop, and those of dead
        managers to mark interrupted."""
        with self.db.connection() as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(
                "SELECT run_id, status, manager_id, pid, owner, created_at, node FROM runs "
                f"WHERE status IN {ACTIVE_IN} ORDER BY created_at, rowid")]

    def count_active(self, owner: str | None) -> int:
        """How many of ``owner``'s runs are queued or running (for the per-owner limit)."""
        with self.db.connection() as con:
            return con.execute(f"SELECT COUNT(*) FROM runs WHERE status IN {ACTIVE_IN} AND owner IS ?",
                               (owner,)).fetchone()[0]
