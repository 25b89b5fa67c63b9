"""Issue 38, item 4: the last tracebacks of the CLI and the job manager. Each failure is one line on stderr,
a non-zero exit code, and nothing is created (no runs folder, no runs.sqlite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fgff_core.jobs import JobManager
from fgff_core.jobs.ray_cluster import RayUnavailableError

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE_RAY = "127.0.0.1:1"  # port 1: nothing listens there, the connection is refused at once
TINY = ("--dataset", "digits", "--layers", "4", "--epochs", "1", "--eval-every", "0", "--quiet")


def _cli(cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    """``python -m fgff_core ...`` run in ``cwd`` (where ./runs would be created), with extra environment."""
    environ = {k: v for k, v in os.environ.items() if k not in ("FGFF_RUNS_DIR", "FGFF_EXECUTOR", "RAY_ADDRESS")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "fgff_core", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env={**environ, **env})


def _one_line_failure(proc: subprocess.CompletedProcess, sentence: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # one line, no traceback
    assert sentence in proc.stderr


def test_an_unreachable_ray_cluster_is_one_line_and_creates_no_runs_folder(tmp_path):
    proc = _cli(tmp_path, "train", *TINY, "--executor", "ray", RAY_ADDRESS=UNREACHABLE_RAY)
    _one_line_failure(proc, f"cannot reach the Ray cluster at {UNREACHABLE_RAY}")
    assert list(tmp_path.iterdir()) == []


def test_an_invalid_fgff_executor_is_refused_by_the_cli(tmp_path):
    proc = _cli(tmp_path, "train", *TINY, FGFF_EXECUTOR="bogus")
    _one_line_failure(proc, "$FGFF_EXECUTOR: 'bogus' is not allowed; choose one of local, ray")
    assert list(tmp_path.iterdir()) == []


def test_damaged_cifar10_python_batches_are_one_line(tmp_path):
    batches = tmp_path / "data" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"):
        (batches / name).write_bytes(b"\x80\x02 not a CIFAR-10 batch" * 40)
    before = sorted(tmp_path.rglob("*"))
    proc = _cli(tmp_path, "train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--no-download",
                "--layers", "4", "--epochs", "1", "--quiet")
    _one_line_failure(proc, "cifar-10-batches-py")
    assert "checksum" in proc.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_the_job_manager_refuses_an_invalid_executor_before_creating_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FGFF_EXECUTOR", "bogus")
    with pytest.raises(ValueError, match=r"\$FGFF_EXECUTOR: 'bogus' is not allowed; choose one of local, ray"):
        JobManager(tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_the_job_manager_reaches_ray_before_creating_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", UNREACHABLE_RAY)
    with pytest.raises(RayUnavailableError, match="cannot reach the Ray cluster"):
        JobManager(tmp_path / "runs", executor="ray")
    assert not (tmp_path / "runs").exists()
