"""Issue 38, item 3: a run's memory is estimated from its config before training, and a run the machine (or the
server's ``$FGFF_MEMORY_LIMIT``) cannot hold is refused with the estimate: by the CLI in one line with nothing
created, and by the job manager's submit. Nothing big is trained here: the refusals come before any data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fgff_core.config import RunConfig
from fgff_core.data.registry import DATASETS
from fgff_core.engine.memory import (
    FLOAT,
    RUNTIME_BYTES,
    MemoryLimitError,
    check_memory,
    estimate_for_config,
    estimate_memory,
)
from fgff_core.engine.memory_budget import MEMORY_LIMIT_ENV, MemoryBudget, memory_cap, memory_limit, parse_size
from fgff_core.jobs import JobManager, Limits

ROOT = Path(__file__).resolve().parents[1]
HUGE = dict(dataset="digits", layers=(65536,), epochs=1, device="cpu")  # the issue's run: > 2 GiB
TINY = dict(dataset="digits", layers=(8,), epochs=1, eval_every=0, device="cpu")
GIB = 1 << 30


def _estimate(**config):
    return estimate_for_config({"device": "cpu", **config}, "cpu")


# -- the estimate ----------------------------------------------------------------------------------
def test_weights_and_optimizer_follow_the_layer_sizes():
    digits = DATASETS["digits"].input_dim
    e = _estimate(layers=[1000, 500])
    weights = digits * 1000 + 1000 + 1000 * 500 + 500  # W and b of both layers
    assert e.weights == e.gradients == FLOAT * weights
    assert e.optimizer == 2 * e.weights  # Adam: two numbers per weight
    assert _estimate(layers=[1000, 500], optimizer="sgd").optimizer == e.weights  # the momentum buffer
    assert _estimate(layers=[1000, 500], optimizer="sgd", momentum=0.0).optimizer == 0
    bp = _estimate(layers=[1000, 500], algo="bp")
    assert bp.weights == FLOAT * (weights + 500 * 10 + 10) and bp.significance == 0  # the head, no factors
    fgff, ff = (_estimate(layers=[1000, 500], algo=algo).significance for algo in ("fgff", "ff"))
    assert fgff > ff > 0  # FGFF also keeps the factors' gradient and Adam state


def test_the_estimate_grows_with_width_depth_batch_and_chunk():
    narrow, wide = _estimate(layers=[2000]), _estimate(layers=[4000])
    assert 1.8 < wide.training / narrow.training <= 2.0  # activations are rows x width
    assert wide.total > narrow.total
    square = _estimate(layers=[2000, 2000]).weights, _estimate(layers=[4000, 4000]).weights
    assert square[1] > 3.5 * square[0]  # a hidden-to-hidden layer is width squared
    mnist = dict(dataset="mnist", layers=[2000], schedule="simultaneous")  # greedy: the hand-over of all N rows
    small, large, full = (_estimate(**mnist, batch_size=b).training for b in (100, 1000, 0))
    assert small < large < full
    assert _estimate(layers=[4000], eval_chunk=64).evaluation < _estimate(layers=[4000], eval_chunk=512).evaluation
    assert _estimate(layers=[2000], readout_epochs=5).evaluation > _estimate(layers=[2000]).evaluation
    subset = _estimate(dataset="mnist", layers=[100], train_subset=1000, batch_size=100)
    assert subset.data > FLOAT * 784 * 70_000  # the full set stays cached beside the subset
    assert subset.runtime == RUNTIME_BYTES


def test_the_issues_runs_are_estimated_over_what_they_cannot_fit():
    one = _estimate(**HUGE)
    assert one.total > 2 * GIB  # measured: over 4 GB of RSS
    assert _estimate(layers=[65536] * 16).weights > 16 * 65536**2 * FLOAT * 0.9  # 16 x 65536: 256 GiB of weights


def test_estimate_memory_takes_the_shapes_of_loaded_data():
    e = estimate_memory(RunConfig(layers=(100,)), input_dim=784, n_train=500, n_test=100)
    assert e.data == (FLOAT * 784 + 8) * 600
    with pytest.raises(ValueError, match="n_train"):
        estimate_memory(RunConfig(), input_dim=64, n_train=0, n_test=10)


# -- the limit -------------------------------------------------------------------------------------
def test_sizes_in_the_environment_are_parsed_or_refused_by_name():
    assert parse_size("8G") == 8 * GIB and parse_size("512M") == 512 << 20 and parse_size("1.5GiB") == 3 * GIB // 2
    assert parse_size("2000000000") == 2_000_000_000 and parse_size(" 4 gb ") == 4 * GIB
    for bad in ("lots", "8X", "0", "-1G", "1e9", "100"):
        with pytest.raises(ValueError, match=f"{MEMORY_LIMIT_ENV}: expected a size of at least 1 MiB"):
            parse_size(bad)
    assert memory_cap({}) is None and memory_cap({MEMORY_LIMIT_ENV: " "}) is None
    assert memory_cap({MEMORY_LIMIT_ENV: "2G"}) == 2 * GIB
    with pytest.raises(ValueError, match=MEMORY_LIMIT_ENV):
        Limits.from_env({MEMORY_LIMIT_ENV: "two gigabytes"})
    assert Limits.from_env({MEMORY_LIMIT_ENV: "2G"}) == Limits(max_memory=2 * GIB)


def test_the_limit_is_the_lower_of_the_machines_memory_and_the_cap():
    machine = memory_limit("cpu", {})
    assert machine is not None and machine.bytes > 0 and "available memory" in machine.source
    capped = memory_limit("cpu", {MEMORY_LIMIT_ENV: "64M"})
    assert capped == MemoryBudget(64 << 20, f"${MEMORY_LIMIT_ENV}")


def test_check_refuses_with_the_estimate_the_limit_and_what_to_change():
    with pytest.raises(MemoryLimitError) as err:
        check_memory(HUGE, environ={MEMORY_LIMIT_ENV: "2G"})
    message = str(err.value)
    assert isinstance(err.value, ValueError) and "\n" not in message
    assert message.startswith("memory: this run needs about ") and "GiB (temporaries " in message
    assert "more than the 2 GiB it may use ($FGFF_MEMORY_LIMIT)" in message
    assert message.endswith("use fewer or narrower layers, a smaller batch_size or eval_chunk")
    assert check_memory(TINY, environ={MEMORY_LIMIT_ENV: "2G"}).total < 2 * GIB  # a reasonable run passes
    assert check_memory(TINY, MemoryBudget(2 * GIB, "given")).total == _estimate(**TINY).total


# -- the CLI and the job manager refuse it ---------------------------------------------------------
def _cli(cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("FGFF_RUNS_DIR", "FGFF_EXECUTOR", MEMORY_LIMIT_ENV)}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "fgff_core", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env={**environ, **env})


def test_the_cli_refuses_a_run_over_the_limit_in_one_line_and_creates_nothing(tmp_path):
    proc = _cli(tmp_path, "train", "--dataset", "digits", "--layers", "65536", "--device", "cpu", "--quiet",
                **{MEMORY_LIMIT_ENV: "2G"})
    assert proc.returncode != 0 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: memory: this run needs about ") and "more than the 2 GiB" in lines[0]
    assert list(tmp_path.iterdir()) == []
    fits = _cli(tmp_path, "train", "--layers", "100,100", "--epochs", "2", "--quiet", "--json",
                **{MEMORY_LIMIT_ENV: "2G"})
    assert fits.returncode == 0, fits.stderr  # a reasonable run trains under the same limit


def test_the_cli_refuses_a_bad_memory_limit_in_one_line(tmp_path):
    proc = _cli(tmp_path, "train", *("--layers", "4", "--epochs", "1", "--quiet"), **{MEMORY_LIMIT_ENV: "lots"})
    assert proc.returncode != 0 and proc.stderr.strip().splitlines() == [
        f"error: {MEMORY_LIMIT_ENV}: expected a size of at least 1 MiB, as bytes or with a unit (8G, 512M, 1.5GiB), "
        "got 'lots'"]
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def no_standby_worker(monkeypatch):
    monkeypatch.setenv("FGFF_WARM_WORKER", "0")
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)


@pytest.mark.timeout(180)
def test_the_job_manager_refuses_at_submit_and_queues_nothing(tmp_path, monkeypatch, no_standby_worker):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "2G")
    with JobManager(tmp_path / "runs", max_concurrent=1, executor="local") as jm:
        with pytest.raises(MemoryLimitError, match=r"this run needs about .* more than the 2 GiB it may use "
                                                   r"\(this server's limit, max_memory\)"):
            jm.submit(HUGE)
        assert jm.store.runs().empty
        run_id = jm.submit(TINY)  # a reasonable run passes
        assert jm.wait(run_id, timeout=150) == "done", jm.store.run(run_id)["error"]


def test_the_job_manager_refuses_what_the_machine_cannot_hold_without_a_cap(tmp_path, no_standby_worker):
    with JobManager(tmp_path / "runs", max_concurrent=1, executor="local") as jm:
        with pytest.raises(MemoryLimitError, match="available memory"):
            jm.submit({**HUGE, "layers": (65536,) * 16})  # about 1 TiB
        assert jm.store.runs().empty


def test_a_bad_memory_limit_is_refused_before_the_runs_folder_exists(tmp_path, monkeypatch, no_standby_worker):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "8 gigs")
    with pytest.raises(ValueError, match=MEMORY_LIMIT_ENV):
        JobManager(tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
