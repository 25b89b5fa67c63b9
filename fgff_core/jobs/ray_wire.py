"""What a Ray run's events look like on their way to the app's store: consecutive epochs as columns.

The worker's sender (``ray_worker._ChannelSink``) hands the channel actor one batch at a time. Epoch events
are most of it (a digits run sends 370 a second) and were pickled one ``EpochMetrics`` dataclass at a time at
each hop (sender -> actor -> drain). ``pack`` turns each run of consecutive epochs of a batch into one
``EpochColumns``: a few numpy arrays (keys, metric values, the significance snapshots end to end), which Ray
moves as buffers; evaluations and the run's start stay as they are (a few per run). The drain turns the columns
straight into the ``epochs`` table's rows (``EpochColumns.rows``, written by ``RunWriter.epoch_rows``): the
same rows as ``RunWriter.epochs`` writes from the events (``tests/test_ray_wire.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..store.schema import EPOCH_COLUMNS
from ..store.snapshots import DTYPE

EPOCHS = "epochs"  # the kind of a packed run of epoch events


@dataclass(frozen=True)
class EpochColumns:
    """Consecutive epoch events of one run, column by column."""

    keys: np.ndarray  # (n, 3) int64: layer, epoch, step
    values: np.ndarray  # (n, len(EPOCH_COLUMNS)) float64; NaN for None (SQLite stores NaN as NULL, as None)
    sizes: np.ndarray  # (n,) int64: each event's snapshot length, -1 for none
    snapshots: np.ndarray  # the snapshots end to end, as ``snapshots.DTYPE``

    @property
    def count(self) -> int:
        """The events it holds."""
        return len(self.keys)

    @classmethod
    def of(cls, events: Sequence[Any]) -> EpochColumns:
        """Columns of ``EpochMetrics`` events (oldest first)."""
        keys = np.array([(e.layer, e.epoch, e.step) for e in events], dtype=np.int64).reshape(-1, 3)
        values = np.array([[np.nan if (v := getattr(e, c)) is None else v for c in EPOCH_COLUMNS] for e in events],
                          dtype=np.float64).reshape(-1, len(EPOCH_COLUMNS))
        sigs = [None if e.significance is None else np.asarray(e.significance, DTYPE).ravel() for e in events]
        sizes = np.array([-1 if s is None else s.size for s in sigs], dtype=np.int64)
        present = [s for s in sigs if s is not None]
        data = np.concatenate(present) if present else np.empty(0, DTYPE)
        return cls(keys, values, sizes, data)

    def rows(self, run_id: str) -> list[tuple[Any, ...]]:
        """The ``epochs`` table rows: (run_id, layer, epoch, step, *EPOCH_COLUMNS, significance BLOB or None)."""
        blob = self.snapshots.astype(DTYPE, copy=False).tobytes()
        width = np.dtype(DTYPE).itemsize
        ends = np.cumsum(np.maximum(self.sizes, 0)) * width
        sigs = [None if size < 0 else blob[end - size * width:end] for size, end in zip(self.sizes.tolist(),
                                                                                          ends.tolist(), strict=True)]
        return [(run_id, *key, *values, sig) for key, values, sig in
                zip(self.keys.tolist(), self.values.tolist(), sigs, strict=True)]


def pack(events: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """A sender's batch for the wire: each run of consecutive ``epoch`` events as one (``EPOCHS``, ``EpochColumns``);
    the other events (kind, payload) as they are, in their place."""
    wire: list[tuple[str, Any]] = []
    epochs: list[Any] = []
    for kind, payload in events:
        if kind == "epoch":
            epochs.append(payload)
            continue
        if epochs:
            wire.append((EPOCHS, EpochColumns.of(epochs)))
            epochs = []
        wire.append((kind, payload))
    if epochs:
        wire.append((EPOCHS, EpochColumns.of(epochs)))
    return wire


def event_count(wire: Sequence[tuple[str, Any]]) -> int:
    """How many events a packed batch holds (what the channel's bound counts)."""
    return sum(payload.count if kind == EPOCHS else 1 for kind, payload in wire)
