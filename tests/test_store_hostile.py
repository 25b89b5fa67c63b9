"""Run store against hostile and careless input found by the held-out list (notes/adversarial-16.py):
a read-only runs folder, a disk that fills up while a checkpoint is imported."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from fgff_core.checkpoint import save_checkpoint
from fgff_core.config import RunConfig
from fgff_core.events import EpochMetrics
from fgff_core.model import FFNet
from fgff_core.store import DiskFullError, RunStore, StoreError


@pytest.fixture
def read_only_folder(tmp_path, tmpfs):
    """An empty folder no one may write to: chmod for ordinary users, a read-only tmpfs for root."""
    if os.geteuid() == 0:
        yield tmpfs("ro,size=1m")
        return
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_a_read_only_runs_folder_is_refused_in_one_sentence(read_only_folder):
    with pytest.raises(StoreError, match=r"^the runs folder .* is read-only; .*runs_dir"):
        RunStore(read_only_folder)
    assert os.listdir(read_only_folder) == []


@pytest.fixture
def checkpoint(tmp_path):
    config = RunConfig(dataset="digits", layers=(8,), epochs=1)
    return save_checkpoint(tmp_path / "model.safetensors", FFNet(64, config.layers, 10), config)


def test_a_disk_that_fills_up_during_an_import_leaves_no_run_and_no_file(tmp_path, checkpoint, monkeypatch):
    import fgff_core.store.archive as archive

    def full(src, dst, *args, **kwargs):
        with open(dst, "wb") as handle:  # part of the file is written before the disk is full
            handle.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    store = RunStore(tmp_path / "runs")
    monkeypatch.setattr(archive.shutil, "copyfile", full)
    with pytest.raises(DiskFullError, match=r"^cannot import model.safetensors: no space left on device in "):
        store.import_checkpoint(checkpoint)
    assert store.runs().empty  # no run stuck in "running"
    assert sorted(p.name for p in store.root.iterdir() if not p.name.startswith("runs.sqlite")) == []


def test_an_import_larger_than_the_free_space_is_refused_before_a_run_is_made(tmp_path, checkpoint, monkeypatch):
    import fgff_core.store.archive as archive

    store = RunStore(tmp_path / "runs")
    monkeypatch.setattr(archive, "free_bytes", lambda root: checkpoint.stat().st_size)
    with pytest.raises(DiskFullError, match="no space left on device"):
        store.import_checkpoint(checkpoint)
    assert store.runs().empty
    monkeypatch.undo()
    run_id = store.import_checkpoint(checkpoint)  # with room, the same file imports
    assert store.run(run_id)["status"] == "done"
    assert not list(store.root.rglob("*.tmp"))


def test_the_write_ahead_log_stays_small_so_a_full_disk_still_takes_a_final_status(tmp_path):
    """SQLite's WAL grows to 4 MB before it is folded back by default; on a small disk that filled
    the disk and no run could then be marked failed (the queue looked stalled). Now it reuses its
    space after a few hundred KiB."""
    config = RunConfig(dataset="digits", layers=(500,), epochs=600)
    store = RunStore(tmp_path / "runs")
    run_id = store.create_run(config)
    assert store.claim(run_id)
    writer = store.writer(run_id)
    significance = np.ones(500, np.float32)  # 2 KB a snapshot: 1.2 MB in all
    wal, largest = store.root / "runs.sqlite-wal", 0
    try:
        for epoch in range(1, config.epochs + 1):
            writer.epoch(EpochMetrics(layer=0, epoch=epoch, step=epoch, loss=0.5, g_pos=2.0, g_neg=1.0,
                                      g_pos_no_significance=2.0, g_neg_no_significance=1.0, seconds=0.001,
                                      significance=significance))
            largest = max(largest, wal.stat().st_size if wal.exists() else 0)
    finally:
        writer.close()
    assert largest < 600 << 10, f"the WAL grew to {largest} bytes"
    assert len(store.metrics(run_id)) == config.epochs
