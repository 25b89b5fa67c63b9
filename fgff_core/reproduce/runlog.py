"""The run log (append-only JSONL mirrored to CSV, the resume index) and per-run claims between processes."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .._files import atomic_open

ROW_FIELDS = ("key", "part", "row", "algo", "seed", "budget", "dataset", "layers", "train_subset", "n_train",
              "n_test", "test_on", "epochs", "lr", "sig_lr", "batch_size", "test_acc", "test_acc_no_significance",
              "train_acc", "train_acc_no_significance", "train_seconds", "epoch_seconds_median",
              "wall_seconds", "device", "finished_at")


def read_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The rows of a JSONL log by their ``key``; a line cut short by a crash is skipped (that run is redone)."""
    rows: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                rows[row["key"]] = row
    return rows


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to a JSONL log in one flushed write, never glued onto a line torn by a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
    with path.open("a") as f:
        f.write(("\n" if torn else "") + "".join(json.dumps(r) + "\n" for r in rows))
        f.flush()


class RunLog:
    """Append-only JSONL of finished runs, mirrored to CSV; the resume index (rows by their ``key``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        self.reload()

    def reload(self) -> None:
        """Read the rows again (another process, e.g. a study next to a table run, may have added some)."""
        self.rows.update(read_rows(self.path))

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)

    def add(self, row: dict[str, Any]) -> None:
        """Append ``row`` (flushed at once, so a crash loses at most the run in progress); rewrite the CSV."""
        append_rows(self.path, [row])
        self.reload()
        self.rows[row["key"]] = row
        self.write_csv()

    def write_csv(self) -> None:
        with atomic_open(self.path.with_suffix(".csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=ROW_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for row in self.rows.values():
                writer.writerow({**row, "layers": "x".join(map(str, row["layers"]))})


def claim(out: Path, key: str) -> Path | None:
    """Mark run ``key`` of output folder ``out`` as running in this process; None if a live process has.

    Returns the claim file, to unlink when the run ends. The pid files live in the temp folder, not in
    ``out`` (which is often committed); a claim whose process is gone (a crash) is taken over.
    """
    folder = Path(tempfile.gettempdir()) / "fgff-reproduce-claims"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha1(f"{out.resolve()}|{key}".encode()).hexdigest()[:20] + ".pid")
    try:
        other = int(path.read_text())
        if other != os.getpid():
            os.kill(other, 0)  # ProcessLookupError if that process is gone: a stale claim from a crash
            return None
    except PermissionError:  # alive, someone else's
        return None
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass
    path.write_text(str(os.getpid()))
    return path


def claim_all(out: Path, keys: tuple[str, ...]) -> list[Path] | None:
    """``claim`` every one of ``keys``, or none (None) where a live process holds any of them."""
    claims = [claim(out, key) for key in keys]
    if None in claims:
        for path in claims:
            if path is not None:
                path.unlink(missing_ok=True)
        return None
    return claims
