"""Run statuses: the one definition, used by the store, the job manager, the pages and the CLI."""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    """Where a stored run is in its life. A ``str`` subclass: stored and compared as its value."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the server stopped while it was queued or running

    def __str__(self) -> str:
        return self.value


#: Statuses of runs that are waiting or training: their rows may still change.
ACTIVE_STATUSES: frozenset[RunStatus] = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
#: Statuses that never change again.
FINISHED_STATUSES: frozenset[RunStatus] = frozenset(set(RunStatus) - ACTIVE_STATUSES)


def is_active(status: str) -> bool:
    return status in {s.value for s in ACTIVE_STATUSES}
