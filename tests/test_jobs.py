"""Job manager: real spawned workers on tiny digits runs, plus fast checks with a stand-in executor."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from diverging import NAN_REASON, NAN_RUN, with_a_nan_pixel
from fake_executor import FakeExecutor
from waiting import wait_for

from fgff_core.config import RunConfig
from fgff_core.jobs import JobError, JobManager, Limits, execute_run, failure_reason, shutdown_all, worker_main
from fgff_core.store import RunStore, StoreError, UnknownRunError

REPO = Path(__file__).resolve().parents[1]
TINY = dict(dataset="digits", layers=(8,), epochs=20, eval_every=5)
LONG = dict(dataset="digits", layers=(8,), epochs=1_000_000, eval_every=0)  # runs until cancelled or killed


# -- real workers ------------------------------------------------------------------------------------
@pytest.mark.timeout(180)
def test_several_jobs_finish_with_complete_metrics(tmp_path):
    with JobManager(tmp_path, max_concurrent=2) as jm:
        configs = {
            "fgff": RunConfig(algo="fgff", **TINY),
            "ff": RunConfig(algo="ff", **{**TINY, "layers": (8, 4)}),
            "bp": dict(algo="bp", dataset="digits", layers=(8,), epochs=3, eval_every=1),  # dict form too
        }
        ids = {k: jm.submit(c, name=f"job {k}") for k, c in configs.items()}
        assert all(jm.store.status(r) in ("queued", "running") for r in ids.values())  # submit did not block
        for run_id in ids.values():
            assert jm.wait(run_id, timeout=150) == "done", jm.store.run(run_id)["error"]

        runs = jm.store.runs().set_index("run_id")
        for key, run_id in ids.items():
            row = runs.loc[run_id]
            m = jm.store.metrics(run_id)
            assert row["name"] == f"job {key}" and row["device"] == "cpu" and row["node"] == socket.gethostname()
            assert len(m) == row["epochs_done"] == row["epoch_events"]
            assert m["loss"].notna().all() and 0 <= row["test_acc"] <= 1
            assert row["started_at"] >= row["created_at"] and row["finished_at"] >= row["started_at"]
            model, config = jm.store.load_model(run_id)
            assert config == RunConfig.coerce(configs[key])
        assert len(jm.store.metrics(ids["ff"])) == 40
        assert [a.shape for a in jm.store.significance(ids["fgff"])] == [(20, 8)]
        assert [a.shape for a in jm.store.significance(ids["ff"])] == [(20, 8), (20, 4)]
        assert np.all(jm.store.significance(ids["ff"])[0] == 1.0)  # FF keeps the factors at 1
        assert not np.all(jm.store.significance(ids["fgff"])[0] == 1.0)  # FGFF trains them
        assert jm.store.significance(ids["bp"]) == []
        evaluated = jm.store.metrics(ids["fgff"]).dropna(subset=["test_acc"])
        assert list(evaluated["epoch"]) == [5, 10, 15, 20]
        long = jm.store.metrics_long(list(ids.values()))
        assert set(long["run_id"]) == set(ids.values())


@pytest.mark.timeout(120)
def test_cancel_running_and_queued(tmp_path):
    with JobManager(tmp_path, max_concurrent=1) as jm:
        running = jm.submit(LONG)
        queued = jm.submit(TINY)
        wait_for(lambda: jm.store.run(running)["epochs_done"] >= 5, what="the first job to train")
        assert jm.store.status(queued) == "queued"
        jm.cancel(queued)
        assert jm.store.status(queued) == "cancelled" and jm.store.run(queued)["started_at"] is None

        jm.cancel(running)  # committed: from now on the worker stops at its next check, between two epochs
        at_cancel = jm.store.run(running)["epochs_done"]  # at least the epochs written before the cancel
        assert jm.wait(running, timeout=30) == "cancelled"
        n = jm.store.run(running)["epochs_done"]
        # It ends after the epoch in flight: at most one more epoch (log_every=1 writes each as it ends).
        assert at_cancel <= n <= at_cancel + 1 and n == len(jm.store.metrics(running))
        assert jm.store.checkpoint_path(running) is not None  # the partly trained model is kept
        assert jm.store.significance(running)[0].shape == (n, 8)
        jm.cancel(running)  # cancelling a finished run changes nothing
        assert jm.store.status(running) == "cancelled"


def test_a_stop_request_ends_the_run_after_the_current_epoch(tmp_path):
    """In-process: the cancel flag set after epoch 3 is written means exactly 3 epochs."""
    store = RunStore(tmp_path)
    config = RunConfig(algo="fgff", layers=(4,), epochs=50, eval_every=0)
    run_id = store.create_run(config)
    store.queue.claim(run_id)
    writer = store.writer(run_id)
    write_epoch = writer.epoch

    def epoch_then_cancel(event):
        write_epoch(event)
        if event.step == 3:
            store.cancel(run_id)

    writer.epoch = epoch_then_cancel
    result = execute_run(config, writer, lambda: writer.cancel_flag() != 0, None)
    assert result.status == "stopped"
    assert list(store.metrics(run_id)["epoch"]) == [1, 2, 3]


@pytest.mark.timeout(150)
def test_sigkilled_worker_fails_and_the_other_job_finishes(tmp_path):
    with JobManager(tmp_path / "runs", max_concurrent=2) as jm:
        victim = jm.submit(LONG)
        healthy = jm.submit({**TINY, "epochs": 40})
        wait_for(lambda: jm.store.run(victim)["epochs_done"] >= 3, what="the victim to train")
        pid = [r["pid"] for r in jm.store.queue.active_runs() if r["run_id"] == victim][0]
        os.kill(pid, signal.SIGKILL)

        assert jm.wait(victim, timeout=30) == "failed"
        error = jm.store.run(victim)["error"]
        assert "signal 9" in error and "SIGKILL" in error
        assert len(jm.store.metrics(victim)) >= 3  # what was committed before the kill is kept
        assert jm.store.significance(victim)[0].shape[0] >= 3
        assert jm.wait(healthy, timeout=120) == "done"
        assert len(jm.store.metrics(healthy)) == 40 and jm.store.run(healthy)["error"] is None


def run_worker_here(runs_dir: Path, config: dict) -> str:
    """The worker's code path in this process (no spawn): how a job records its own failure."""
    store = RunStore(runs_dir)
    run_id = store.create_run(config)
    assert store.queue.claim(run_id)
    worker_main(str(runs_dir), run_id)
    return run_id


def test_nan_loss_fails_with_its_layer_and_epoch(tmp_path, monkeypatch):
    import fgff_core.engine.training as training

    original = training.load_for_config

    def poisoned(config):  # a NaN in the inputs, so that training really produces a NaN loss
        return with_a_nan_pixel(original(config))

    monkeypatch.setattr(training, "load_for_config", poisoned)
    store = RunStore(tmp_path)
    run_id = run_worker_here(tmp_path, {**TINY, "layers": (8, 8)})
    row = store.run(run_id)
    assert row["status"] == "failed"
    assert row["error"].startswith("NaN loss at layer 1 of 2, epoch 1") and "lr" in row["error"]
    m = store.metrics(run_id)
    assert len(m) == 1 and math.isnan(m["loss"].iloc[0])  # the NaN epoch is recorded, nothing after it


@pytest.mark.timeout(180)
def test_a_nan_run_through_the_job_manager_fails_with_the_drivers_reason(tmp_path):
    with JobManager(tmp_path, max_concurrent=1) as jm:
        run_id = jm.submit(NAN_RUN)
        assert jm.wait(run_id, timeout=150) == "failed"
        row = jm.store.run(run_id)
        assert (row["error"], row["test_acc"]) == (NAN_REASON, None)
        assert jm.store.checkpoint_path(run_id) is None  # no NaN weights kept as a model


def test_a_job_that_ends_at_chance_stores_why(tmp_path):
    store = RunStore(tmp_path)
    run_id = run_worker_here(tmp_path, dict(algo="bp", dataset="digits", layers=(8,), epochs=2, eval_every=0, lr=10.0))
    row = store.run(run_id)
    assert (row["status"], row["error"]) == ("done", "at chance: the run diverged; lower lr (now 10.0)")


def test_missing_dataset_fails_with_how_to_message(tmp_path):
    store = RunStore(tmp_path / "runs")
    run_id = run_worker_here(tmp_path / "runs", dict(dataset="mnist", data_dir=str(tmp_path / "empty"),
                                                     download=False, layers=(8,), epochs=2))
    row = store.run(run_id)
    assert row["status"] == "failed" and row["finished_at"] is not None
    assert "mnist" in row["error"] and "not found" in row["error"] and str(tmp_path / "empty") in row["error"]
    assert "Traceback" in store.error_detail(run_id)


CRASHING_SERVER = """
import json, sys, time
from fgff_core.jobs import JobManager

if __name__ == "__main__":
    jm = JobManager(sys.argv[1], max_concurrent=1)
    running = jm.submit(dict(dataset="digits", layers=(8,), epochs=1_000_000, eval_every=0))
    queued = jm.submit(dict(dataset="digits", layers=(8,), epochs=5))
    while jm.store.run(running)["epochs_done"] < 3:
        time.sleep(0.05)
    worker = [r["pid"] for r in jm.store.queue.active_runs() if r["run_id"] == running][0]
    print(json.dumps({"running": running, "queued": queued, "worker": worker}), flush=True)
    time.sleep(600)
"""


@pytest.mark.timeout(150)
def test_restart_marks_orphaned_runs_interrupted(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(CRASHING_SERVER))
    runs_dir = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, str(script), str(runs_dir)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        info = json.loads(server.stdout.readline())
        # Freeze the worker so that it cannot notice its parent's death, then crash the server.
        os.kill(info["worker"], signal.SIGSTOP)
        server.kill()
        server.wait(timeout=10)
        os.kill(info["worker"], signal.SIGKILL)
    finally:
        if server.poll() is None:
            server.kill()
    store = RunStore(runs_dir)
    assert store.status(info["running"]) == "running" and store.status(info["queued"]) == "queued"
    with JobManager(runs_dir, max_concurrent=1) as jm:
        assert jm.store.status(info["running"]) == "interrupted"
        assert jm.store.status(info["queued"]) == "interrupted"
        assert "stopped while this run was running" in jm.store.run(info["running"])["error"]
        assert "before this run started" in jm.store.run(info["queued"])["error"]
        assert len(jm.store.metrics(info["running"])) >= 3  # the epochs trained before the crash are kept


# -- a stand-in executor: the manager's bookkeeping without spawning anything (fake_executor.py) --------


def test_invalid_configs_are_rejected_at_submit(tmp_path):
    fake = FakeExecutor()
    with JobManager(tmp_path, max_concurrent=1, executor=fake) as jm:
        for bad, field in [(dict(layers=(0,)), "layers"), (dict(epochs=-1), "epochs"), (dict(algo="sgd"), "algo"),
                           (dict(dataset="imagenet"), "dataset"), (dict(nonsense=1), "unknown"),
                           (dict(lr=float("nan")), "lr"), ("not a config", "mapping")]:
            with pytest.raises(ValueError, match=field):
                jm.submit(bad)
        if not __import__("torch").cuda.is_available():
            with pytest.raises(ValueError, match="device"):
                jm.submit(dict(device="cuda"))
        assert len(jm.store.runs()) == 0 and fake.started == []
        with pytest.raises(ValueError, match="run_id"):
            jm.store.metrics("../../etc/passwd")
        with pytest.raises(ValueError, match="run_id"):
            jm.cancel("../x")


def test_limits_for_shared_servers(tmp_path):
    limits = Limits(max_units=50, max_layers=2, max_epochs=100, max_queued_per_owner=2, max_train_subset=1000)
    small = dict(layers=(8,), epochs=10)
    with JobManager(tmp_path, max_concurrent=1, limits=limits, executor=FakeExecutor()) as jm:
        for config, limit in [(dict(layers=(60,)), "max_units"), (dict(layers=(8, 8, 8)), "max_layers"),
                              (dict(epochs=101), "max_epochs"),
                              (dict(dataset="mnist", train_subset=0), "max_train_subset"),
                              (dict(dataset="mnist", train_subset=5000), "max_train_subset")]:
            with pytest.raises(ValueError, match=limit):
                jm.submit({**small, **config}, owner="alice")
        jm.submit(dict(dataset="mnist", train_subset=1000, epochs=10, layers=(8,)), owner="alice")  # within caps
        jm.submit(dict(layers=(50, 50), epochs=100), owner="alice")
        with pytest.raises(ValueError, match="max_queued_per_owner"):
            jm.submit(dict(epochs=10, layers=(8,)), owner="alice")
        jm.submit(dict(epochs=10, layers=(8,)), owner="bob")  # another user has their own quota
        jm.shutdown(timeout=0.2)  # the stand-in jobs never stop by themselves
    with pytest.raises(ValueError, match="max_units"):
        Limits(max_units=0)
    assert Limits.from_env({"FGFF_LIMIT_MAX_EPOCHS": "500", "FGFF_LIMIT_MAX_UNITS": ""}) == Limits(max_epochs=500)


def test_a_data_folder_outside_the_servers_roots_is_refused_at_submit(tmp_path, monkeypatch):
    allowed = tmp_path / "data"
    allowed.mkdir()
    monkeypatch.setenv("FGFF_DATA_ROOTS", str(allowed))
    fake = FakeExecutor()
    with JobManager(tmp_path / "runs", max_concurrent=1, executor=fake) as jm:
        for outside in ("/etc", str(allowed / ".." / "elsewhere")):
            with pytest.raises(ValueError, match="data_dir: .* is outside the data folders this server allows"):
                jm.submit(dict(dataset="mnist", data_dir=outside, train_subset=100))
        with pytest.raises(ValueError) as err:
            jm.submit(dict(dataset="mnist", data_dir="/etc", train_subset=100))
        assert str(allowed) not in str(err.value)  # the server's folders are not shown to the user
        jm.submit(dict(dataset="mnist", data_dir=str(allowed / "mnist"), train_subset=100))
        jm.submit(dict(epochs=5))  # no data_dir: the server's own folder
        assert len(jm.store.runs()) == 2
        jm.shutdown(timeout=0.2)


def test_shutdown_all_stops_every_open_manager_and_its_scheduler(tmp_path):
    kept = JobManager(tmp_path / "a", max_concurrent=1, executor=FakeExecutor())
    queued = kept.submit(dict(epochs=5))
    wait_for(lambda: kept.store.status(queued) == "running", 10, "the stand-in run starts")
    other = JobManager(tmp_path / "b", max_concurrent=1, executor=FakeExecutor())
    gone = JobManager(tmp_path / "c", max_concurrent=1, executor=FakeExecutor())
    gone.shutdown()
    schedulers = {f"fgff-jobs-{m.id[:6]}" for m in (kept, other)}  # each manager's thread, by its name
    assert schedulers <= {t.name for t in threading.enumerate()}
    assert shutdown_all(timeout=0.2) >= 2  # the two open ones (and any a failed earlier test left open)
    assert kept.closed and other.closed
    assert not schedulers & {t.name for t in threading.enumerate()}  # no scheduler left polling the store
    assert kept.store.status(queued) == "interrupted"  # what shutdown() does to a running run
    assert shutdown_all() == 0
    with pytest.raises(JobError, match="shut down"):
        other.submit(dict(epochs=5))


def test_queue_respects_the_concurrency_limit_and_notices_dead_workers(tmp_path):
    fake = FakeExecutor()
    with JobManager(tmp_path, max_concurrent=2, executor=fake) as jm:
        ids = [jm.submit(dict(epochs=5)) for _ in range(4)]
        wait_for(lambda: len(fake.started) == 2, 10, "two starts")
        time.sleep(0.3)
        assert fake.started == ids[:2]  # first in, first out; never more than two at once
        assert [jm.store.status(r) for r in ids] == ["running", "running", "queued", "queued"]
        fake.kill(ids[0])  # the worker vanishes without reporting: failed, and the next one starts
        assert jm.wait(ids[0], timeout=10) == "failed"
        assert "signal 9" in jm.store.run(ids[0])["error"]
        wait_for(lambda: len(fake.started) == 3, 10, "the third start")
        assert jm.store.status(ids[3]) == "queued"
        jm.kill(ids[1])  # stop at once, without waiting for the epoch: cancelled
        assert jm.wait(ids[1], timeout=10) == "cancelled"
        wait_for(lambda: len(fake.started) == 4, 10, "the fourth start")
        jm.shutdown(timeout=0.2)  # running runs end as interrupted
        assert [jm.store.status(r) for r in ids[2:]] == ["interrupted"] * 2
        assert "server stopped" in jm.store.run(ids[2])["error"]
        with pytest.raises(JobError, match="shut down"):
            jm.submit(dict(epochs=5))
    with JobManager(tmp_path, max_concurrent=1, executor=FakeExecutor()) as jm:
        again = jm.resubmit(ids[2])  # an interrupted run, queued anew with the same config and name
        assert again != ids[2] and jm.store.config(again) == jm.store.config(ids[2])
        assert jm.store.run(again)["name"] == jm.store.run(ids[2])["name"]
        jm.shutdown(timeout=0.2)


def test_failure_reasons_are_readable():
    import torch

    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.1 GiB total)")
    text = failure_reason(oom)
    assert text.startswith("GPU out of memory: CUDA out of memory. Tried to allocate 20.00 GiB")
    assert "Hint" in text and "batch_size" in text and "max_concurrent" in text
    assert failure_reason(RuntimeError("MPS backend out of memory")).startswith("GPU out of memory")
    assert failure_reason(ValueError("device: 'cuda' was asked for")) == "invalid setting: device: 'cuda' was asked for"
    assert failure_reason(MemoryError()).startswith("out of host memory")
    assert failure_reason(KeyError("x")) == "KeyError: 'x'"


def test_a_second_live_manager_is_not_mistaken_for_a_dead_one(tmp_path):
    with JobManager(tmp_path, max_concurrent=1, executor=FakeExecutor()) as first:
        run_id = first.submit(dict(epochs=5))
        wait_for(lambda: first.store.status(run_id) == "running", 10, "start")
        with JobManager(tmp_path, max_concurrent=1, executor=FakeExecutor()) as second:
            assert second.recover_orphans() == []
            assert second.store.status(run_id) == "running"
        first.shutdown(timeout=0.2)  # the stand-in job never stops by itself
        assert first.store.status(run_id) == "interrupted"


def test_runs_of_a_silent_manager_on_another_host_are_interrupted(tmp_path):
    store = RunStore(tmp_path)
    stale, fresh = store.create_run(dict(epochs=5), manager_id="a" * 32), store.create_run(dict(epochs=5),
                                                                                            manager_id="b" * 32)
    store.queue.claim(stale)
    con = store.connect()
    con.execute("INSERT INTO managers VALUES (?, 'other-host', 4242, '2026-01-01', ?)", ("a" * 32, time.time() - 60))
    con.execute("INSERT INTO managers VALUES (?, 'other-host', 4242, '2026-01-01', ?)", ("b" * 32, time.time()))
    con.close()
    with JobManager(tmp_path, max_concurrent=1, executor=FakeExecutor(), heartbeat_timeout=15) as jm:
        assert jm.store.status(stale) == "interrupted"  # no heartbeat for 60 s
        assert jm.store.status(fresh) == "queued"  # its manager is alive elsewhere: left alone
        assert {m.manager_id for m in jm.registry.managers()} == {"b" * 32, jm.id}
        jm.shutdown(timeout=0.2)


@pytest.mark.timeout(180)
def test_warm_workers_hand_each_job_a_fresh_process_started_ahead_one_per_slot(tmp_path):
    import multiprocessing

    with JobManager(tmp_path, max_concurrent=2, warm_worker=True) as jm:
        ready = jm.executor.standby_pids()
        assert len(ready) == 2  # one per job slot: two runs started together both skip the import
        first, second = jm.submit(TINY), jm.submit({**TINY, "seed": 1})
        for run in (first, second):
            assert jm.wait(run, timeout=150) == "done", jm.store.run(run)["error"]
        with sqlite3.connect(tmp_path / "runs.sqlite") as con:  # the worker pid is internal, not in run()
            pids = [con.execute("SELECT pid FROM runs WHERE run_id = ?", (r,)).fetchone()[0] for r in (first, second)]
        assert sorted(pids) == sorted(ready)  # each job went to a process started ahead of time, one each
        refilled = jm.executor.standby_pids()
        assert len(refilled) == 2 and not set(refilled) & set(pids)  # used once: new standbys took their place
        assert set(refilled) <= {p.pid for p in multiprocessing.active_children()}
    assert not set(refilled) & {p.pid for p in multiprocessing.active_children()}  # shutdown stops them too


# -- an unusable store (a full disk: test_jobs_disk.py) -----------------------------------------------
def test_a_manager_whose_store_refuses_writes_starts_no_worker(tmp_path):
    import multiprocessing

    RunStore(tmp_path)
    with sqlite3.connect(tmp_path / "runs.sqlite") as con:  # a damaged store: the managers table is unusable
        con.execute("DROP TABLE managers")
        con.execute("CREATE TABLE managers (manager_id TEXT)")
    before = set(multiprocessing.active_children())
    with pytest.raises(StoreError):
        JobManager(tmp_path, warm_worker=True)
    assert set(multiprocessing.active_children()) - before == set()  # no warm worker was started


def test_a_non_executor_and_an_unknown_run_are_refused(tmp_path):
    for bad in (5, object()):
        with pytest.raises(ValueError, match="executor"):
            JobManager(tmp_path / "runs", executor=bad)
    with JobManager(tmp_path / "runs", max_concurrent=1, executor=FakeExecutor()) as jm:
        with pytest.raises(UnknownRunError):
            jm.kill("000000000000")
