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


def test_estimate_uses_this_servers_measured_speed():
    quick = preset_config("quick-digits", "fgff")
    idle = launch.estimate_training(quick, pd.DataFrame())
    assert idle.measured_runs == 0 and 0.5 < idle.seconds < 5  # about 1.4 s on an idle CPU
    assert "idle CPU" in idle.text()
    # This server took 10 s for the quick demo (a busy machine): the estimate follows it.
    runs = table(("a", "done", quick, "t", 10.0), ("b", "failed", quick, "t", 1.0))
    busy = launch.estimate_training(quick, runs)
    assert busy.measured_runs == 1 and busy.seconds == pytest.approx(10.0)
    assert "about 10 s of training (this server's speed on its last 1 finished run)" == busy.text()
    # Twice the epochs and a layer twice as wide take about twice and more as long.
    bigger = launch.estimate_training(quick.replace(epochs=400), runs)
    assert bigger.seconds == pytest.approx(20.0)
    huge = launch.estimate_training(quick.replace(layers=(65536, 65536)), runs)
    assert huge.seconds > launch.eta_limit_seconds({})


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


def test_loading_data_is_running_without_an_epoch():
    assert launch.is_loading_data({"status": "running", "epochs_done": 0})
    assert launch.is_loading_data({"status": "running", "epochs_done": float("nan")})
    assert not launch.is_loading_data({"status": "running", "epochs_done": 3})
    assert not launch.is_loading_data({"status": "queued", "epochs_done": 0})


def test_over_time_limit_says_why_only_above_the_servers_limit(monkeypatch):
    monkeypatch.setenv("FGFF_WARN_ETA_SECONDS", "60")
    assert launch.over_time_limit(launch.TrainingEstimate(60.0, 0)) is None
    assert launch.over_time_limit(launch.TrainingEstimate(61.0, 2), "These 4 runs") == (
        "These 4 runs would take about 1 min 01 s of training (this server's speed on its last 2 finished runs), "
        "more than the 1 min 00 s this server starts without asking")
