"""Significance snapshots as the store keeps them, in one place for the reader, the writer and the archive.

While a run trains, each epoch's factors s of one layer are a float32 BLOB in that (layer, epoch) row
of ``epochs``. When the run ends, the writer gathers them into ``significance.npz``: one
(snapshots, neurons) array per layer, named ``layer<i>``. An export zip holds the same file.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DTYPE = np.float32


def encode(factors: np.ndarray | Sequence[float]) -> bytes:
    """One layer's factors s at one epoch, as the BLOB stored in its ``epochs`` row."""
    return np.asarray(factors, DTYPE).tobytes()


def stored_blobs(con: sqlite3.Connection, run_id: str) -> list[tuple[int, bytes]]:
    """(layer, BLOB) of every snapshot still in the run's ``epochs`` rows, by layer, then in training order."""
    return con.execute("SELECT layer, significance FROM epochs WHERE run_id = ? AND significance IS NOT NULL "
                       "ORDER BY layer, step", (run_id,)).fetchall()


def stack(blobs: Sequence[tuple[int, bytes]], layers: Sequence[int]) -> list[np.ndarray]:
    """One (snapshots, neurons) array per layer of ``layers`` (its widths) from ``stored_blobs`` rows."""
    per_layer: list[list[np.ndarray]] = [[] for _ in layers]
    for layer, blob in blobs:
        if 0 <= layer < len(per_layer):
            per_layer[layer].append(np.frombuffer(blob, dtype=DTYPE))
    return [np.stack(snaps) if snaps else np.zeros((0, n), DTYPE) for snaps, n in zip(per_layer, layers)]


def as_arrays(per_layer: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of ``significance.npz``: ``layer<i>`` for each layer's snapshots."""
    return {_name(i): a for i, a in enumerate(per_layer)}


def npz_bytes(per_layer: Sequence[np.ndarray]) -> bytes:
    """``significance.npz`` in memory (for a zip)."""
    buffer = io.BytesIO()
    np.savez(buffer, **as_arrays(per_layer))
    return buffer.getvalue()


def read_npz(path: Path, n_layers: int) -> list[np.ndarray]:
    """Each layer's snapshots from a ``significance.npz``; OSError, KeyError or ValueError when unreadable."""
    with np.load(path) as data:
        return [data[_name(i)] for i in range(n_layers)]


def _name(layer: int) -> str:
    return f"layer{layer}"
