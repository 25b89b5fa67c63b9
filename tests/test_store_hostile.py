"""Run store against hostile and careless input found by the held-out list (notes/adversarial-16.py):
a read-only runs folder, a disk that fills up while a checkpoint is imported."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable

import numpy as np
import pytest

from fgff_core.config import RunConfig
from fgff_core.engine.checkpoint import save_checkpoint
from fgff_core.engine.events import EpochMetrics
from fgff_core.engine.model import FFNet
from fgff_core.store import DiskFullError, RunStore, StoreError, import_checkpoint


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
        import_checkpoint(store, checkpoint)
    assert store.runs().empty  # no run stuck in "running"
    assert sorted(p.name for p in store.root.iterdir() if not p.name.startswith("runs.sqlite")) == []


def test_an_import_larger_than_the_free_space_is_refused_before_a_run_is_made(tmp_path, checkpoint, monkeypatch):
    import fgff_core.store.archive as archive

    store = RunStore(tmp_path / "runs")
    monkeypatch.setattr(archive, "free_bytes", lambda root: checkpoint.stat().st_size)
    with pytest.raises(DiskFullError, match="no space left on device"):
        import_checkpoint(store, checkpoint)
    assert store.runs().empty
    monkeypatch.undo()
    run_id = import_checkpoint(store, checkpoint)  # with room, the same file imports
    assert store.run(run_id)["status"] == "done"
    assert not list(store.root.rglob("*.tmp"))


def test_the_write_ahead_log_stays_small_so_a_full_disk_still_takes_a_final_status(tmp_path):
    """SQLite's WAL grows to 4 MB before it is folded back by default; on a small disk that filled
    the disk and no run could then be marked failed (the queue looked stalled). Now it reuses its
    space after a few hundred KiB."""
    store = RunStore(tmp_path / "runs")
    wal, sizes = store.root / "runs.sqlite-wal", []
    run_id = write_snapshots(store, 600, 500,  # 2 KB a snapshot: 1.2 MB in all
                             after_each=lambda: sizes.append(wal.stat().st_size if wal.exists() else 0))
    assert max(sizes) < 600 << 10, f"the WAL grew to {max(sizes)} bytes"
    assert len(store.metrics(run_id)) == 600


def write_snapshots(store: RunStore, epochs: int, units: int, after_each: Callable[[], object] = lambda: None) -> str:
    """A run with ``epochs`` rows, each with a significance snapshot of ``units`` floats (4 bytes each,
    the epoch's number), written as a worker writes them; ``after_each`` is called after each row."""
    run_id = store.create_run(RunConfig(dataset="digits", layers=(units,), epochs=epochs))
    assert store.queue.claim(run_id)
    writer = store.writer(run_id)
    try:
        for epoch in range(1, epochs + 1):
            writer.epoch(EpochMetrics(layer=0, epoch=epoch, step=epoch, loss=0.5, g_pos=2.0, g_neg=1.0,
                                      g_pos_no_significance=2.0, g_neg_no_significance=1.0, seconds=0.001,
                                      significance=np.full(units, epoch, np.float32)))
            after_each()
    finally:
        writer.close()
    return run_id


def database_bytes(store: RunStore) -> int:
    """The database file and its WAL together."""
    return sum(p.stat().st_size for p in store.root.glob("runs.sqlite*") if not p.name.endswith("-shm"))


def test_the_pages_of_deleted_rows_go_back_to_the_disk_and_every_kept_run_stays_whole(tmp_path):
    store = RunStore(tmp_path / "runs")
    kept = write_snapshots(store, 5, 1_000)
    gone = write_snapshots(store, 50, 10_000)  # 2 MB of snapshots
    store.delete(gone, force=True)
    before = database_bytes(store)
    freed = store.reclaim_space()
    assert freed >= 1_900_000 and database_bytes(store) == before - freed < 256 << 10
    assert [a.tolist() for a in store.significance(kept)] == [[[e] * 1_000 for e in range(1, 6)]]
    assert store.reclaim_space() == 0  # nothing left to give back


def test_a_database_from_before_incremental_vacuum_is_compacted_only_when_the_disk_has_room(tmp_path, monkeypatch):
    import fgff_core.store.schema as schema

    store = RunStore(tmp_path / "runs")
    with sqlite3.connect(store.db_path) as con:  # as files made before auto_vacuum was set on new databases
        con.execute("PRAGMA auto_vacuum = NONE")
        con.execute("VACUUM")
    kept = write_snapshots(store, 10, 10_000)  # 400 kB to keep
    store.delete(write_snapshots(store, 50, 10_000), force=True)
    before = database_bytes(store)
    monkeypatch.setattr(schema, "free_bytes", lambda root: 100 << 10)  # too little for VACUUM's copy of 400 kB
    assert store.reclaim_space() == 0 and database_bytes(store) == before
    monkeypatch.undo()
    assert store.reclaim_space() >= 1_900_000
    assert [a.shape for a in store.significance(kept)] == [(10, 10_000)]
    # The VACUUM made the file incremental: its free pages go back now without room for a copy.
    store.delete(write_snapshots(store, 50, 10_000), force=True)
    monkeypatch.setattr(schema, "free_bytes", lambda root: 100 << 10)
    assert store.reclaim_space() >= 1_900_000


# -- a store that can only be read (issue 38, item 8b) ------------------------------------------

def _finished_run(store: RunStore) -> str:
    """A done FGFF run with three epochs of metrics and significance (written without training)."""
    config = RunConfig(dataset="digits", layers=(4,), epochs=3)
    run_id = store.create_run(config, name="kept")
    assert store.queue.claim(run_id)
    writer = store.writer(run_id)
    try:
        for epoch in range(1, 4):
            writer.epoch(EpochMetrics(layer=0, epoch=epoch, step=epoch, loss=1 / epoch, g_pos=2.0, g_neg=1.0,
                                      g_pos_no_significance=2.0, g_neg_no_significance=1.0, seconds=0.001,
                                      significance=np.full(4, epoch, np.float32)))
        writer.finish("done", final={"test_acc": 0.5})
    finally:
        writer.close()
    return run_id


def _what_a_reader_sees(store: RunStore, run_id: str) -> tuple:
    return (store.runs().to_json(), store.run(run_id), store.metrics(run_id).to_json(), store.config(run_id),
            [a.tolist() for a in store.significance(run_id)], store.artifacts(run_id))


def _writes(store: RunStore, run_id: str, checkpoint) -> dict:
    return {"create_run": lambda: store.create_run(RunConfig(dataset="digits", layers=(4,))),
            "rename": lambda: store.rename(run_id, "new name"), "delete": lambda: store.delete(run_id),
            "cancel": lambda: store.cancel(run_id), "finish_run": lambda: store.finish_run(run_id, "failed", "x",
                                                                                         only_if_active=False),
            "writer": lambda: store.writer(run_id), "artifact_path": lambda: store.artifact_path(run_id, "x.npz"),
            "import_checkpoint": lambda: import_checkpoint(store, checkpoint),
            "queue.claim": lambda: store.queue.claim(run_id), "queue.set_pid": lambda: store.queue.set_pid(run_id, 1)}


def test_a_store_on_a_read_only_mount_is_read_and_each_write_is_refused_in_one_sentence(tmpfs, checkpoint):
    """A real read-only file system (a tmpfs remounted ro, which stops root too): the store used to
    refuse to open at all. Now every read works and every write says why not; nothing changes."""
    import subprocess

    from fgff_core.jobs import JobManager

    folder = tmpfs("size=8m")
    writable = RunStore(folder)
    run_id = _finished_run(writable)
    seen = _what_a_reader_sees(writable, run_id)
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    files = sorted(p.name for p in folder.rglob("*"))

    store = RunStore(folder)
    assert store.read_only
    assert _what_a_reader_sees(store, run_id) == seen
    sentence = (f"the runs folder {folder} is read-only; its runs can be read, but none can be created, changed or "
                "deleted (choose a writable runs_dir or $FGFF_RUNS_DIR)")
    for name, write in _writes(store, run_id, checkpoint).items():
        with pytest.raises(StoreError) as err:
            write()
        assert str(err.value) == sentence, name
    with pytest.raises(StoreError, match="is read-only; its runs can be read"):
        JobManager(runs_dir=folder)  # the app's manager: it needs to write, and says so
    assert _what_a_reader_sees(store, run_id) == seen
    assert sorted(p.name for p in folder.rglob("*")) == files


def test_a_store_opened_read_only_on_purpose_reads_live_runs_and_takes_no_writes(tmp_path, checkpoint):
    writable = RunStore(tmp_path / "runs")
    run_id = _finished_run(writable)
    store = RunStore(tmp_path / "runs", read_only=True)
    assert _what_a_reader_sees(store, run_id) == _what_a_reader_sees(writable, run_id)
    for name, write in _writes(store, run_id, checkpoint).items():
        with pytest.raises(StoreError, match=r"^the run store in .* was opened read-only; its runs can be read"):
            write()
            pytest.fail(f"{name} wrote to a read-only store")
    later = writable.create_run(RunConfig(dataset="digits", layers=(4,)))  # a writer beside it
    assert store.status(later) == "queued" and store.run(run_id)["name"] == "kept"
    with pytest.raises(StoreError, match="does not exist, so there are no runs to read"):
        RunStore(tmp_path / "none", read_only=True)
    assert not (tmp_path / "none").exists()
