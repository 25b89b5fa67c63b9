"""What can go wrong with the run store, as exceptions, and how a full disk is told from other failures.

Below every other module of the store (the database, the reader, the writer and the archive all
raise these), so it imports none of them.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path


class StoreError(RuntimeError):
    """The run store cannot be used as asked (foreign or damaged database, bad folder, busy run)."""


class DiskFullError(StoreError):
    """The file system holding the runs folder is full (the message names the folder)."""


class UnknownRunError(KeyError):
    """No run with this id in the store."""

    @classmethod
    def of(cls, run_id: str, root: Path) -> UnknownRunError:
        """The one sentence for a run id that is not in the store at ``root``."""
        return cls(f"no run {run_id!r} in {root}")

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else "unknown run"


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
