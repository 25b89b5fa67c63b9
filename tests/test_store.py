"""Run store: schema, per-epoch writes, read API, safety against foreign files and bad ids (no workers)."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import zipfile

import numpy as np
import pytest
import torch

from fgff_core.config import RunConfig
from fgff_core.engine.checkpoint import CheckpointError, save_checkpoint
from fgff_core.engine.events import EpochMetrics, EvalMetrics
from fgff_core.engine.model import FFNet
from fgff_core.store import (
    DB_NAME,
    LONG_FRAME_COLUMNS,
    METRICS_FRAME_COLUMNS,
    RUNS_FRAME_COLUMNS,
    RunStore,
    StoreError,
    UnknownRunError,
    export_run,
    import_checkpoint,
)

CFG = RunConfig(algo="fgff", layers=(6, 4), epochs=5, eval_every=2)


def fake_epochs(config: RunConfig, rng: np.random.Generator):
    """The events a greedy FF/FGFF run yields, with random numbers, for writing without training."""
    step = 0
    for layer, units in enumerate(config.layers):
        for epoch in range(1, config.epochs + 1):
            step += 1
            sig = rng.random(units).astype(np.float32)
            yield EpochMetrics(layer=layer, epoch=epoch, step=step, loss=float(rng.random()), g_pos=2.5, g_neg=1.5,
                               g_pos_no_significance=2.0, g_neg_no_significance=1.0, seconds=0.001, significance=sig)
            if config.eval_every and (epoch % config.eval_every == 0 or epoch == config.epochs):  # as Trainer
                yield EvalMetrics(layer=layer, epoch=epoch, step=step, train_acc=0.5, test_acc=0.4,
                                  train_acc_no_significance=0.45, test_acc_no_significance=0.35)


def write_run(store: RunStore, config: RunConfig = CFG, finish: bool = True, seed: int = 0):
    run_id = store.create_run(config, name="test run")
    assert store.queue.claim(run_id)
    writer = store.writer(run_id)
    sigs: list[list[np.ndarray]] = [[] for _ in config.layers]
    for event in fake_epochs(config, np.random.default_rng(seed)):
        if event.kind == "epoch":
            writer.epoch(event)
            sigs[event.layer].append(event.significance)
        else:
            writer.evaluation(event)
    if finish:
        writer.finish("done", final={"test_acc": 0.4, "train_acc": 0.5, "train_seconds": 0.01})
    writer.close()
    return run_id, [np.stack(s) for s in sigs]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_store_is_empty_with_all_columns(tmp_path):
    store = RunStore(tmp_path / "runs")
    assert (tmp_path / "runs" / DB_NAME).is_file()
    frame = store.runs()
    assert len(frame) == 0 and list(frame.columns) == list(RUNS_FRAME_COLUMNS)
    assert sqlite3.connect(store.db_path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_runs_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FGFF_RUNS_DIR", str(tmp_path / "from-env"))
    assert RunStore().root == (tmp_path / "from-env").resolve()


def test_metrics_significance_and_final_row(tmp_path):
    store = RunStore(tmp_path)
    run_id, sigs = write_run(store, finish=False)
    live = store.significance(run_id)  # from the per-epoch BLOBs while "running"
    assert [a.shape for a in live] == [(5, 6), (5, 4)]
    np.testing.assert_array_equal(live[0], sigs[0])

    m = store.metrics(run_id)
    assert list(m.columns) == list(METRICS_FRAME_COLUMNS)
    assert len(m) == 10 and list(m["step"]) == list(range(1, 11))
    evaluated = m.dropna(subset=["test_acc"])
    assert list(zip(evaluated["layer"], evaluated["epoch"])) == [(0, 2), (0, 4), (0, 5), (1, 2), (1, 4), (1, 5)]
    assert m["test_acc"].isna().sum() == 4

    store.writer(run_id).finish("done", final={"test_acc": 0.4, "train_acc": 0.5})
    row = store.run(run_id)
    assert row["status"] == "done" and row["epochs_done"] == 10 and row["epoch_events"] == 10
    assert row["test_acc"] == pytest.approx(0.4) and row["config"]["layers"] == [6, 4]
    # The snapshots moved to significance.npz, the BLOBs were cleared, the values are unchanged.
    assert (store.root / run_id / "significance.npz").is_file()
    con = sqlite3.connect(store.db_path)
    assert con.execute("SELECT COUNT(*) FROM epochs WHERE significance IS NOT NULL").fetchone()[0] == 0
    final = store.significance(run_id)
    for got, want in zip(final, sigs):
        np.testing.assert_array_equal(got, want)
    # A final status is never overwritten by a late writer.
    assert not store.finish_run(run_id, "failed", "late")
    assert store.status(run_id) == "done"



def test_a_run_deleted_while_it_trains_is_unknown_to_its_writer_and_leaves_no_file(tmp_path):
    store = RunStore(tmp_path)
    run_id, _ = write_run(store, finish=False)
    writer = store.writer(run_id)
    store.delete(run_id, force=True)
    try:
        with pytest.raises(UnknownRunError, match=f"no run '{run_id}'"):
            writer.finish("done")
    finally:
        writer.close()
    assert not (store.root / run_id).exists()

def test_metrics_long_several_runs(tmp_path):
    store = RunStore(tmp_path)
    a, _ = write_run(store, seed=1)
    b, _ = write_run(store, RunConfig(algo="ff", layers=(3,), epochs=4, eval_every=0), seed=2)
    long = store.metrics_long([a, b])
    assert list(long.columns) == list(LONG_FRAME_COLUMNS)
    assert set(long["run_id"]) == {a, b}
    assert not long["value"].isna().any()
    assert len(long[(long.run_id == a) & (long.metric == "loss")]) == 10
    assert len(long[(long.run_id == a) & (long.metric == "test_acc")]) == 6
    assert len(long[(long.run_id == b) & (long.metric == "test_acc")]) == 0  # eval_every 0: none during training
    frame = store.runs()
    assert list(frame["run_id"]) == [b, a]  # newest first


def test_bp_run_has_no_significance(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(RunConfig(algo="bp", layers=(4,), epochs=2))
    assert store.significance(run_id) == []


def test_corrupt_file_is_refused_and_left_untouched(tmp_path):
    db = tmp_path / DB_NAME
    db.write_bytes(b"this is not a database at all" * 100)
    before = sha(db)
    with pytest.raises(StoreError, match="not an FGFF Explorer run database"):
        RunStore(tmp_path)
    assert sha(db) == before


def test_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path):
    db = tmp_path / DB_NAME
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers (name) VALUES ('ada')")
    con.commit()
    con.close()
    before = sha(db)
    with pytest.raises(StoreError, match="another program"):
        RunStore(tmp_path)
    assert sha(db) == before
    assert sqlite3.connect(db).execute("SELECT name FROM customers").fetchall() == [("ada",)]


def test_newer_schema_is_refused(tmp_path):
    store = RunStore(tmp_path)
    con = sqlite3.connect(store.db_path)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(StoreError, match="newer"):
        RunStore(tmp_path)


def test_runs_dir_that_is_a_file(tmp_path):
    (tmp_path / "runs").write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        RunStore(tmp_path / "runs")


@pytest.mark.parametrize("bad", ["../etc", "..", "/etc/passwd", "abc", "ABCDEF012345", "0123456789ab/..", "", None,
                                 "0123456789ab\n"])
def test_run_ids_cannot_traverse_paths(tmp_path, bad):
    store = RunStore(tmp_path)
    for call in (store.run, store.metrics, store.significance, store.delete, store.checkpoint_path,
                 store.run_dir, store.cancel, lambda r: store.artifact_path(r, "x.npz"),
                 lambda r: export_run(store, r, tmp_path / "out")):
        with pytest.raises(ValueError, match="run_id"):
            call(bad)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # no folder was made anywhere


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "..", "x/../../y", "", "a\\b"])
def test_artifact_names_are_plain_file_names(tmp_path, bad):
    store = RunStore(tmp_path)
    run_id = store.create_run(CFG)
    with pytest.raises(ValueError, match="artifact name"):
        store.artifact_path(run_id, bad)
    path = store.artifact_path(run_id, "tsne_layer0.npz")
    assert path == store.root / run_id / "tsne_layer0.npz" and path.parent.is_dir()


def test_unknown_run(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(KeyError, match="no run"):
        store.run("0123456789ab")
    with pytest.raises(UnknownRunError):
        store.metrics("0123456789ab")


def test_rename_cancel_and_delete(tmp_path):
    store = RunStore(tmp_path)
    run_id, _ = write_run(store)
    store.rename(run_id, "  my best run ")
    assert store.run(run_id)["name"] == "my best run"
    with pytest.raises(ValueError, match="name"):
        store.rename(run_id, " ")

    queued = store.create_run(CFG)
    assert store.cancel(queued) == "cancelled" and store.status(queued) == "cancelled"
    running = store.create_run(CFG)
    store.queue.claim(running)
    with pytest.raises(StoreError, match="cancel it"):
        store.delete(running)
    assert store.cancel(running) == "running" and store.cancel_flag(running) == 1

    store.delete(run_id)
    assert not (store.root / run_id).exists()
    with pytest.raises(UnknownRunError):
        store.run(run_id)
    assert sqlite3.connect(store.db_path).execute("SELECT COUNT(*) FROM epochs WHERE run_id = ?",
                                                  (run_id,)).fetchone()[0] == 0


def test_export_zip(tmp_path):
    store = RunStore(tmp_path / "runs")
    run_id, sigs = write_run(store)
    model = FFNet(64, CFG.layers, 10, 1.0, True)
    save_checkpoint(store.run_dir(run_id) / "model.safetensors", model, CFG)
    con = sqlite3.connect(store.db_path)
    con.execute("UPDATE runs SET checkpoint = ? WHERE run_id = ?", (f"{run_id}/model.safetensors", run_id))
    con.commit()
    path = export_run(store, run_id, tmp_path / "exports")
    with zipfile.ZipFile(path) as zf:
        assert set(zf.namelist()) == {"config.json", "run.json", "metrics.csv", "significance.npz",
                                      "model.safetensors"}
        assert RunConfig.from_dict(json.loads(zf.read("config.json"))) == CFG
        assert len(zf.read("metrics.csv").decode().strip().splitlines()) == 11
        info = json.loads(zf.read("run.json"))  # strict JSON: no NaN for the metrics never set
        assert info["status"] == "done" and info["test_acc"] == pytest.approx(0.4) and info["wall_seconds"] is None
        zf.extract("significance.npz", tmp_path)
    with np.load(tmp_path / "significance.npz") as data:
        np.testing.assert_array_equal(data["layer1"], sigs[1])


def test_import_checkpoint_stores_the_factors_s_not_their_parameter(tmp_path):
    store = RunStore(tmp_path / "runs")
    model = FFNet(64, (5, 3), 10, 1.0, True, significance_param="exp")
    with torch.no_grad():
        model.layers[0].s_raw.fill_(math.log(0.25))  # s = 0.25; its parameter is log s
    config = RunConfig(layers=(5, 3), significance_param="exp")
    ckpt = save_checkpoint(tmp_path / "upload.safetensors", model, config)
    run_id = import_checkpoint(store, ckpt, name="uploaded")
    row = store.run(run_id)
    assert row["status"] == "done" and row["origin"] == "imported" and row["name"] == "uploaded"
    s = store.significance(run_id)
    assert [a.shape for a in s] == [(1, 5), (1, 3)]
    np.testing.assert_allclose(s[0], 0.25, rtol=1e-6)
    np.testing.assert_array_equal(s[1], 1.0)
    assert store.checkpoint_path(run_id).is_file()

    pickled = tmp_path / "evil.pt"
    torch.save({"x": torch.zeros(2)}, pickled)
    n = len(store.runs())
    with pytest.raises(CheckpointError):
        import_checkpoint(store, pickled)
    assert len(store.runs()) == n


def test_committed_per_epoch_and_concurrent_readers_see_consistent_rows(tmp_path):
    """A writer commits epoch by epoch while readers on their own connections poll."""
    config = RunConfig(algo="fgff", layers=(16, 16), epochs=150, eval_every=10)
    store = RunStore(tmp_path)
    run_id = store.create_run(config)
    store.queue.claim(run_id)
    done = threading.Event()
    problems: list[str] = []
    counts: list[int] = []

    def reader():
        reader_store = RunStore(tmp_path)  # as a page in another process would
        last = 0
        while not done.is_set() or last < 300:
            try:
                m = reader_store.metrics(run_id)
                sig = reader_store.significance(run_id)
            except Exception as exc:  # noqa: BLE001 - any error is a failure of the test
                problems.append(repr(exc))
                return
            n = len(m)
            if list(m["step"]) != list(range(1, n + 1)):
                problems.append(f"steps not contiguous: {list(m['step'])[:5]}...")
            if m["loss"].isna().any():
                problems.append("a row without its loss")
            if sum(len(a) for a in sig) < n:
                problems.append(f"{n} rows but only {sum(len(a) for a in sig)} snapshots")
            if n < last:
                problems.append(f"rows went from {last} to {n}")
            last = n
            counts.append(n)
            if done.is_set() and n == 300:
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    writer = store.writer(run_id)
    check = store.connect()
    for event in fake_epochs(config, np.random.default_rng(0)):
        if event.kind == "epoch":
            writer.epoch(event)
            # committed: a separate connection sees the row at once (a crash loses at most the next epoch)
            assert check.execute("SELECT COUNT(*) FROM epochs WHERE run_id = ?", (run_id,)).fetchone()[0] == event.step
        else:
            writer.evaluation(event)
    writer.finish("done")
    done.set()
    for t in threads:
        t.join(timeout=60)
    assert not problems, problems[:5]
    assert counts and max(counts) == 300
    assert len(store.significance(run_id)[1]) == 150


def test_stores_opened_at_once_share_one_database(tmp_path):
    stores, errors = [], []

    def open_store():
        try:
            stores.append(RunStore(tmp_path / "fresh"))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(stores) == 6
    run_id = stores[0].create_run(CFG)
    assert all(s.status(run_id) == "queued" for s in stores)
    assert not [p for p in (tmp_path / "fresh").iterdir() if p.name.endswith(".tmp")]


def _read_only_folder(tmp_path):
    """A folder no one may write to: chmod for ordinary users, a read-only tmpfs for root."""
    import os
    import subprocess

    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return folder, lambda: folder.chmod(0o755)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("root without a mountable tmpfs: no read-only folder to test with")
    return folder, lambda: subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("where", ["a file", "under a file", "read-only"])
def test_export_to_an_unusable_place_says_why(tmp_path, where):
    from fgff_core.store import ExportError

    store = RunStore(tmp_path / "runs")
    run_id, _ = write_run(store)
    cleanup = None
    if where == "read-only":
        dest, cleanup = _read_only_folder(tmp_path)
    else:
        (tmp_path / "existing.zip").write_bytes(b"keep me")
        dest = tmp_path / "existing.zip" if where == "a file" else tmp_path / "existing.zip" / "sub"
    try:
        with pytest.raises(ExportError, match=r"^cannot (export to|create the export folder|write the export into) "):
            export_run(store, run_id, dest)
    finally:
        if cleanup is not None:
            cleanup()
    if where != "read-only":
        assert (tmp_path / "existing.zip").read_bytes() == b"keep me"  # never replaced
    assert not list(tmp_path.rglob("*.tmp"))
