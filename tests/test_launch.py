"""Launch logic (fgff_core.jobs.launch): twins of active runs, the training-time estimate, queue position."""

from __future__ import annotations

import pandas as pd
import pytest

from fgff_core.config.presets import preset_config
from fgff_core.jobs import launch


def table(*rows) -> pd.DataFrame:
    """A run table as the store lists it (newest first)."""
    return pd.DataFrame([dict(run_id=r[0], status=r[1], config=r[2].to_dict(), created_at=r[3] if len(r) > 3 else "",
                              train_seconds=r[4] if len(r) > 4 else float("nan"), epochs_done=0) for r in rows])


def test_twin_is_a_queued_or_running_run_with_the_same_config_and_seed():
    cfg = preset_config("quick-digits", "fgff", epochs=6)
    runs = table(("a", "done", cfg), ("b", "queued", cfg.replace(seed=1)), ("c", "running", cfg.replace(algo="ff")))
    assert launch.active_twin(runs, cfg) is None  # only a finished one: launching again is a new run
    assert launch.active_twin(runs, cfg.replace(seed=1)) == "b"
    assert launch.active_twin(runs, cfg.replace(algo="ff")) == "c"
    assert launch.active_twin(runs, cfg.replace(algo="ff", epochs=7)) is None
    assert launch.active_twin(pd.DataFrame(), cfg) is None
    plan = launch.plan_launch(runs, [cfg.replace(algo="ff"), cfg, cfg.replace(seed=1)])
    assert plan.to_submit == [1] and plan.twins == {0: "c", 2: "b"}


def test_a_free_seed_is_the_smallest_above_the_configs_that_no_stored_run_of_that_config_used():
    cfg = preset_config("quick-digits", "fgff")
    runs = table(("a", "done", cfg), ("b", "queued", cfg.replace(seed=1)), ("c", "failed", cfg.replace(seed=3)),
                 ("d", "running", cfg.replace(seed=2, algo="ff")))  # another config's seed 2 does not count
    assert launch.free_seed(runs, cfg) == 2
    assert launch.free_seed(runs, cfg.replace(seed=3)) == 4
    assert launch.free_seed(runs, cfg.replace(algo="ff")) == 1
    assert launch.free_seed(pd.DataFrame(), cfg) == 1
    with pytest.raises(ValueError, match="seed: every seed"):
        launch.free_seed(table(("a", "done", cfg.replace(seed=launch.SEED_MAX))), cfg.replace(seed=launch.SEED_MAX - 1))


def test_a_running_run_is_redrawn_about_once_per_expected_epoch():
    quick = preset_config("quick-digits", "fgff")  # 200 epochs in a few seconds: the one-second floor
    assert launch.live_refresh(quick, pd.DataFrame()) == launch.REFRESH_MIN_S
    runs = table(("a", "done", quick, "t", 300.0))  # a slow server: 1.5 s per epoch of the same run
    assert launch.live_refresh(quick, runs) == pytest.approx(1.5)
    runs = table(("a", "done", quick, "t", 600.0))  # 3 s per epoch
    assert launch.live_refresh(quick, runs) == pytest.approx(3.0)
    strong = preset_config("ff-best-mnist", "ff")  # minutes per epoch: capped, so that the page stays live
    assert launch.live_refresh(strong, pd.DataFrame()) == launch.REFRESH_MAX_S


def test_eta_limit_from_the_environment():
    assert launch.eta_limit_seconds({}) == launch.DEFAULT_ETA_LIMIT_S
    assert launch.eta_limit_seconds({launch.ETA_LIMIT_ENV: "30"}) == 30.0
    assert launch.eta_limit_seconds({launch.ETA_LIMIT_ENV: "nonsense"}) == launch.DEFAULT_ETA_LIMIT_S
    assert launch.eta_limit_seconds({launch.ETA_LIMIT_ENV: "-1"}) == launch.DEFAULT_ETA_LIMIT_S


def test_queue_position_counts_running_and_earlier_queued_runs():
    cfg = preset_config("tiny-digits")
    runs = table(("new", "queued", cfg, "2026-01-01T00:00:04"), ("mid", "queued", cfg, "2026-01-01T00:00:03"),
                 ("old", "queued", cfg, "2026-01-01T00:00:02"), ("run", "running", cfg, "2026-01-01T00:00:01"),
                 ("fin", "done", cfg, "2026-01-01T00:00:00"))
    assert launch.queue_position(runs, "old") == 1
    assert launch.queue_position(runs, "new") == 3
    assert launch.queue_position(runs, "run") is None and launch.queue_position(runs, "gone") is None
    assert launch.queue_text(3) == "3 runs ahead of yours" and launch.queue_text(1) == "1 run ahead of yours"
    assert launch.queue_text(0) == "next in the queue"


def test_a_run_without_an_epoch_is_loading_its_data_until_its_start_is_stored():
    assert launch.startup_phase({"status": "running", "epochs_done": 0}) == "loading the data"
    assert launch.startup_phase({"status": "running", "epochs_done": float("nan"), "n_params": float("nan")}) == \
        "loading the data"
    assert launch.startup_phase({"status": "running", "epochs_done": 0, "n_params": 648010}) == \
        "training its first epoch"
    assert launch.startup_phase({"status": "running", "epochs_done": 3, "n_params": 648010}) is None
    assert launch.startup_phase({"status": "queued", "epochs_done": 0}) is None


def test_a_ray_run_without_a_node_is_starting_a_ray_worker():
    """Issue 36 item 6: a cold Ray worker took 13-35 s, shown as loading the data."""
    assert launch.startup_phase({"status": "running", "epochs_done": 0, "node": None}, on_cluster=True) == \
        "starting a Ray worker or waiting for a free CPU"
    assert launch.startup_phase({"status": "running", "epochs_done": 0, "node": "vm (127.0.0.1, node 1a2b3c4d)"},
                                on_cluster=True) == "loading the data"
    assert launch.startup_phase({"status": "running", "epochs_done": 0, "node": None}) == "loading the data"
    assert launch.startup_phase({"status": "queued", "epochs_done": 0}, on_cluster=True) is None


def test_over_time_limit_says_why_only_above_the_servers_limit(monkeypatch):
    monkeypatch.setenv("FGFF_WARN_ETA_SECONDS", "60")
    assert launch.over_time_limit(launch.TrainingEstimate(60.0, 40.0, 90.0)) is None
    assert launch.over_time_limit(launch.TrainingEstimate(61.0, 45.0, 2 * 61.0, 2), "These 4 runs") == (
        "These 4 runs would take about 45 s to 2 min 02 s of training (this server's speed on its last 2 finished "
        "runs), more than the 1 min 00 s this server starts without asking")


def test_a_presets_own_measured_budget_is_never_stopped(monkeypatch):
    """Issue 39 item 5: the MNIST demo (measured 69-102 s) was stopped at 'about 52 min' on a busy server."""
    slow = launch.TrainingEstimate(3126.0, 1800.0, 6000.0, 10, preset_seconds=102.0)
    assert launch.over_time_limit(slow) is None  # within the default 10 min: the preset starts
    assert launch.over_time_limit(slow._replace(preset_seconds=None)) is not None  # the same estimate, no preset
    monkeypatch.setenv("FGFF_WARN_ETA_SECONDS", "60")  # a server that asks above a minute asks for it too
    assert launch.over_time_limit(slow) is not None
