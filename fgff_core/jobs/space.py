"""Why the queue stalls: room on the runs folder's disk, and the problem a scheduler tick reports.

Queued runs start only while the disk holding the runs folder has ``MIN_FREE_BYTES`` free: a run
writes a row per epoch, its significance snapshots and a checkpoint, and a run started on a full
disk would only fail. Short of it, the database's own free pages are given back first
(``RunStore.reclaim_space``); what queued runs wait for then says how much is free and needed.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

from ..format import size
from ..store import DiskFullError, RunStore, StoreError, disk_full_message, free_bytes, is_disk_full

MIN_FREE_BYTES = 1 << 20  # queued runs wait while the runs folder's disk has less free space


class Stall(NamedTuple):
    """Why queued runs are not starting: ``message`` is shown (and changes as the free space does),
    ``key`` changes only when the problem itself does (the scheduler logs then), ``exc`` is logged."""

    key: str
    message: str
    exc: BaseException | None = None


def make_room(store: RunStore, needed: int = MIN_FREE_BYTES) -> None:
    """Return when the runs folder's disk has ``needed`` bytes free, after giving back the database's
    free pages if it had not; raise ``DiskFullError`` otherwise."""
    if free_bytes(store.root) >= needed:
        return
    with contextlib.suppress(StoreError):  # busy, or refused by the disk: tried again at the next tick
        store.reclaim_space()
    if free_bytes(store.root) < needed:
        raise DiskFullError(disk_full_message(store.root))


def stall_for(error: Exception, store: RunStore, needed: int = MIN_FREE_BYTES) -> Stall:
    """The problem a failed scheduler tick means for the queue."""
    if is_disk_full(error, store.root):
        key = disk_full_message(store.root)
        return Stall(key, f"{key} ({size(free_bytes(store.root))} free, {size(needed)} needed to start a run)")
    message = f"the job scheduler cannot use the run store: {error}"
    return Stall(message, message, error)
