"""``LiveReads``: the reads of pages' live views, shared by every browser session of a server for a second.

A live view (``app_pages._shared.live_view``) redraws itself about once a second while what it shows is active:
the run table (for the statuses, a run's row and its place in the queue) and the metrics of the run(s) it draws.
Read straight from the store, each tick of each browser cost 3-4 store queries (``run``, ``metrics``, ``runs``
once or twice), and ``runs()`` parses every run's config: twenty students watching their runs asked for the whole
table 20-40 times a second on a 2-core server that was training their runs meanwhile.

Inside ``ticking(max_age)`` (a fragment's own rerun), ``LiveReads`` answers from what any session read less than
``max_age`` seconds ago: the table is queried at most once per ``max_age`` for the whole server, a run's metrics
at most once per ``max_age`` per run, whatever the number of sessions. Outside it (a page's full run, a click's
rerun, a script) every read queries the store, so what a page draws after an action is never older than the
action, and that answer is shared with the ticks that follow. One lock per kind of read: sessions that ask at
once wait for one query instead of each making its own. Callers must not modify the frames they get.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import pandas as pd

_MAX_AGE: contextvars.ContextVar[float] = contextvars.ContextVar("fgff_live_max_age", default=0.0)
_KEPT = 256  # values kept per kind of read; the oldest goes first (runs nobody watches any more)


@contextlib.contextmanager
def ticking(max_age: float) -> Iterator[None]:
    """Reads of ``LiveReads`` inside the block may be up to ``max_age`` seconds old (a number >= 0)."""
    if isinstance(max_age, bool) or not isinstance(max_age, int | float) or not max_age >= 0:
        raise ValueError(f"max_age: expected a number of seconds >= 0, got {max_age!r}")
    token = _MAX_AGE.set(float(max_age))
    try:
        yield
    finally:
        _MAX_AGE.reset(token)


class _Reads(Protocol):
    """The store reads ``LiveReads`` shares (``RunStore``'s)."""

    def runs(self) -> pd.DataFrame: ...

    def run(self, run_id: str) -> dict[str, Any]: ...

    def metrics(self, run_id: str) -> pd.DataFrame: ...

    def metrics_long(self, run_ids: Iterable[str]) -> pd.DataFrame: ...


class _Shared:
    """One value per key, read again when older than the caller's ``max_age``; one read at a time."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any, read: Callable[[], Any], max_age: float) -> Any:
        with self._lock:
            held = self._values.get(key)
            if held is not None and max_age > 0 and self._clock() - held[0] < max_age:
                return held[1]
            value = read()
            self._values[key] = (self._clock(), value)
            if len(self._values) > _KEPT:
                del self._values[min(self._values, key=lambda k: self._values[k][0])]
            return value


class LiveReads:
    """The run table and runs' metrics of a store, shared across sessions inside ``ticking`` (module docstring).

    ``clock``: seconds, for the ages (a test's fake clock)."""

    def __init__(self, store: _Reads, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._table = _Shared(clock)
        self._metrics = _Shared(clock)

    def runs(self) -> pd.DataFrame:
        """``RunStore.runs()``, up to the tick's ``max_age`` old."""
        return self._table.get("runs", self._store.runs, _MAX_AGE.get())

    def run(self, run_id: str) -> dict[str, Any]:
        """A run's row (as ``RunStore.run``): inside ``ticking``, from the shared ``runs()``; outside it, or for a run
        that table does not hold yet (queued after it was read), from the store (UnknownRunError for none)."""
        if _MAX_AGE.get() > 0:
            runs = self.runs()
            rows = runs[runs["run_id"] == run_id] if not runs.empty else runs
            if not rows.empty:
                return {k: (None if _is_nan(v) else v) for k, v in rows.iloc[0].to_dict().items()}
        return self._store.run(run_id)

    def metrics(self, run_id: str) -> pd.DataFrame:
        """``RunStore.metrics(run_id)``, up to the tick's ``max_age`` old."""
        return self._metrics.get(run_id, lambda: self._store.metrics(run_id), _MAX_AGE.get())

    def metrics_long(self, run_ids: Iterable[str]) -> pd.DataFrame:
        """``RunStore.metrics_long(run_ids)``, up to the tick's ``max_age`` old."""
        ids = tuple(run_ids)
        return self._metrics.get(ids, lambda: self._store.metrics_long(ids), _MAX_AGE.get())


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and value != value
