"""Moving runs in and out of the store: a zip export of one run, and a checkpoint imported as a run.

Functions over a ``RunStore`` (``export_run(store, run_id, folder)``, ``import_checkpoint(store, path)``):
the archive uses the store, and the store knows nothing of it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._files import atomic_copy, atomic_open
from ..vocabulary import RunStatus, has_factors
from . import snapshots
from .errors import DiskFullError, StoreError, disk_full_message, free_bytes, is_disk_full
from .schema import CHECKPOINT_NAME, SIGNIFICANCE_NAME, now_iso
from .writer import save_npz_atomic

if TYPE_CHECKING:
    from .runs import RunStore


class ExportError(StoreError):
    """An export cannot be written where it was asked for; the message says why in one sentence."""


def export_run(store: RunStore, run_id: str, dest_dir: str | os.PathLike) -> Path:
    """A zip with config.json, run.json, metrics.csv, significance.npz and the checkpoint.

    ``dest_dir`` is a folder (created if missing); an existing file there of the same name is
    replaced atomically. ``ExportError`` when the folder cannot be made or written.
    """
    run = store.run(run_id)
    dest = Path(dest_dir).expanduser()
    if dest.exists() and not dest.is_dir():
        raise ExportError(f"cannot export to {dest}: it is a file, not a folder; give a folder to write the zip into")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the export folder {dest}: {exc.strerror or exc}") from None
    target = dest / f"fgff-run-{run_id}.zip"
    if target.is_dir():
        raise ExportError(f"cannot export to {target}: a folder of that name is in the way")
    try:
        with atomic_open(target) as handle, zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("config.json", json.dumps(run["config"], indent=2, sort_keys=True))
            info = {k: _plain(v) for k, v in run.items() if k != "config"}
            zf.writestr("run.json", json.dumps(info, indent=2))
            zf.writestr("metrics.csv", store.metrics(run_id).to_csv(index=False))
            s = store.significance(run_id)
            if s:
                zf.writestr(SIGNIFICANCE_NAME, snapshots.npz_bytes(s))
            checkpoint = store.checkpoint_path(run_id)
            if checkpoint is not None:
                zf.write(checkpoint, CHECKPOINT_NAME)
    except OSError as exc:
        why = disk_full_message(dest) if is_disk_full(exc) else (exc.strerror or str(exc))
        raise ExportError(f"cannot write the export into {dest}: {why}") from None
    return target


def import_checkpoint(store: RunStore, path: str | os.PathLike, name: str | None = None,
                      owner: str | None = None) -> str:
    """Make a run ("done", origin "imported") out of a checkpoint file, to inspect it in the app.

    The file is fully loaded first, so a foreign or pickled file is refused (CheckpointError).
    Its significance factors become a one-snapshot ``significance`` per layer; there are no
    per-epoch metrics. A read-only store refuses before the file is read.
    """
    store.require_writable()
    from ..engine.checkpoint import load_checkpoint  # imports torch; the read side does not need it


    model, config = load_checkpoint(path)
    size = Path(path).stat().st_size
    if free_bytes(store.root) < 2 * size + IMPORT_SPARE_BYTES:  # the copy, its significance, the database
        raise DiskFullError(f"cannot import {Path(path).name}: {disk_full_message(store.root)}")
    name = name or f"imported {Path(path).name}"
    run_id = store.create_run(config, name=name, owner=owner, status=RunStatus.RUNNING, origin="imported")
    folder = store.run_dir(run_id, create=True)
    try:
        atomic_copy(path, folder / CHECKPOINT_NAME)
        sig_file = None
        if has_factors(config.algo):  # FF and FGFF both have factors s (FF keeps them at 1)
            arrays = snapshots.as_arrays([s.cpu().numpy()[None, :].astype(snapshots.DTYPE)
                                          for s in model.significance()])  # the factors s, not their parameter
            save_npz_atomic(folder / SIGNIFICANCE_NAME, arrays)
            sig_file = f"{run_id}/{SIGNIFICANCE_NAME}"
        stamp = now_iso()
        with store.transaction(immediate=True) as con:
            con.execute("UPDATE runs SET status = ?, started_at = ?, finished_at = ?, device = 'imported', "
                        "epoch_events = 0, n_params = ?, checkpoint = ?, significance_file = ? WHERE run_id = ?",
                        (RunStatus.DONE.value, stamp, stamp, sum(p.numel() for p in model.parameters()),
                         f"{run_id}/{CHECKPOINT_NAME}", sig_file, run_id))
    except BaseException as exc:  # no half-imported run: its files first (frees the space), then its row
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(StoreError):
            store.delete(run_id, force=True)
        if isinstance(exc, OSError):
            why = disk_full_message(store.root) if is_disk_full(exc) else (exc.strerror or str(exc))
            raise (DiskFullError if is_disk_full(exc) else StoreError)(
                f"cannot import {Path(path).name}: {why}") from None
        raise
    return run_id


IMPORT_SPARE_BYTES = 256 << 10


def _plain(value: Any) -> Any:
    """A JSON-safe value: numpy scalars as Python numbers, NaN/inf as None."""
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
