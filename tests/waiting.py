"""``wait_for``: poll a condition until it holds or a deadline passes (the job and Ray tests share it)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, what: object = "condition",
             interval: float = 0.05) -> None:
    """Return as soon as ``predicate()`` is true; fail naming ``what`` (a string, or a callable for a live
    description) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
