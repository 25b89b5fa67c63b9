"""Which job managers are alive: the ``managers`` table of the run database and its heartbeats.

Every ``JobManager`` registers itself (host, pid) and its scheduler beats every second; a manager
starting up, and its scheduler every few seconds, marks the queued and running runs of dead managers
as interrupted (``OrphanRecovery``, ``JobManager.recover_orphans``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from typing import NamedTuple

from ..store import RunStore, StoreError
from ..store.schema import now_iso
from ..vocabulary import CANCEL_SHUTDOWN, RunStatus, stopped


class ManagerRecord(NamedTuple):
    manager_id: str
    host: str
    pid: int
    started_at: str
    heartbeat: float  # time.time() of the last beat


class ManagerRegistry:
    """Register, beat and list the job managers using one run store."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def register(self, manager_id: str) -> None:
        with self.store.transaction(immediate=True) as con:
            con.execute("INSERT OR REPLACE INTO managers VALUES (?, ?, ?, ?, ?)",
                        (manager_id, socket.gethostname(), os.getpid(), now_iso(), time.time()))

    def heartbeat(self, manager_id: str) -> None:
        with self.store.transaction(immediate=True) as con:
            con.execute("UPDATE managers SET heartbeat = ? WHERE manager_id = ?", (time.time(), manager_id))

    def unregister(self, manager_id: str) -> None:
        with self.store.transaction(immediate=True) as con:
            con.execute("DELETE FROM managers WHERE manager_id = ?", (manager_id,))

    def managers(self) -> list[ManagerRecord]:
        with self.store.connection() as con:
            con.row_factory = sqlite3.Row
            return [ManagerRecord(**dict(r)) for r in con.execute("SELECT * FROM managers")]


def manager_dead(m: ManagerRecord, now: float, live_here: set[str], heartbeat_timeout: float) -> bool:
    """Dead: its process is gone (same host), or no heartbeat for ``heartbeat_timeout`` seconds.

    A live process with the recorded pid on this host is most likely the manager itself,
    slowed down; only a much longer silence (pid reused by another program) counts then.
    ``live_here``: ids of the managers alive in this process.
    """
    silent = now - m.heartbeat
    if m.host == socket.gethostname():
        if m.pid == os.getpid():
            return m.manager_id not in live_here  # an earlier process with our pid (containers)
        if not pid_alive(m.pid):
            return True
        return silent > 4 * heartbeat_timeout
    return silent > heartbeat_timeout


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OrphanRecovery:
    """Mark the queued and running runs of dead managers interrupted, and forget those managers.

    Args:
        registry: the run store's managers.
        manager_id: the manager doing it (its own runs are never orphans).
        heartbeat_timeout: seconds without a heartbeat after which another manager counts as dead.
        live_here: ids of the managers alive in this process (``manager_dead``).
    """

    def __init__(self, registry: ManagerRegistry, manager_id: str, heartbeat_timeout: float,
                 live_here: Callable[[], set[str]]) -> None:
        self.registry, self.manager_id, self.heartbeat_timeout = registry, manager_id, heartbeat_timeout
        self.live_here = live_here

    def __call__(self) -> list[str]:
        """Recover now; return the ids of the runs marked interrupted."""
        store = self.registry.store
        managers = {m.manager_id: m for m in self.registry.managers()}
        now = time.time()
        live_here = self.live_here()
        marked = []
        for run in store.queue.active_runs():
            owner_id = run["manager_id"]
            if owner_id == self.manager_id or (owner_id in live_here):
                continue
            m = managers.get(owner_id)
            if m is not None and not manager_dead(m, now, live_here, self.heartbeat_timeout):
                continue
            end = stopped(CANCEL_SHUTDOWN, started=run["status"] != RunStatus.QUEUED, how="found on restart")
            if store.finish_run(run["run_id"], end.status, end.reason):
                marked.append(run["run_id"])
        for m in managers.values():  # forget dead managers
            if m.manager_id != self.manager_id and manager_dead(m, now, live_here, self.heartbeat_timeout):
                with contextlib.suppress(StoreError):
                    self.registry.unregister(m.manager_id)
        return marked
