"""AppTest fixtures: every test gets its own runs folder and the pages' JobManager for it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fgff_core.config import RunConfig
from fgff_core.jobs import shutdown_all

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # pages import `app_pages._shared` and `fgff_core` from the repo root
    sys.path.insert(0, str(ROOT))

# A finished run is needed by several tests: the smallest config that still trains and evaluates.
TINY = dict(algo="fgff", dataset="digits", layers=[12, 12], epochs=4, eval_every=2, eval_subset=200)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FGFF_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FGFF_MAX_CONCURRENT", "1")
    # No standby worker per test (each imports torch ahead of time); tests/test_jobs.py covers it.
    monkeypatch.setenv("FGFF_WARM_WORKER", "0")
    return tmp_path / "runs"


@pytest.fixture(autouse=True)
def _no_manager_outlives_its_test():
    """Shut down the job managers the pages opened (each test's runs folder gets its own): one left
    open keeps its scheduler thread polling the store, and dozens of them slowed every later test."""
    yield
    shutdown_all(timeout=1.0)  # a run that a test launched is killed after 1 s, not waited on: its folder goes


@pytest.fixture
def jm(runs_dir):
    """The same JobManager the pages use (cached per runs folder)."""
    from app_pages._shared import job_manager

    return job_manager()


@pytest.fixture
def finished_run(runs_dir):
    """A finished TINY run named "tiny fgff", trained in this process through the job worker's own code (a spawned
    worker would cost each test seconds of start-up; tests/test_jobs.py covers that path). Ask for it before
    ``jm``: an open manager's scheduler could claim the queued run first, and ``stored_runs`` would say so."""
    (run_id,) = stored_runs(runs_dir, [TINY], name=lambda cfg: "tiny fgff")
    return run_id


def page(name: str) -> str:
    return str(ROOT / "app_pages" / f"{name}.py")


def open_page(name: str, **params: str):
    """Run ``app.py`` (so st.navigation knows every page) on page ``name`` with URL query ``params``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(f"app_pages/{name}.py")
    return at.run()


def stored_runs(runs_dir: Path, configs, name: str | Callable[[RunConfig], str] = "test") -> list[str]:
    """Train runs in this process through the job worker's own code path (no spawned worker). Each run is named
    ``name(config)``, or "<name> <algo> seed <seed>" for a text ``name``."""
    from fgff_core.jobs import worker_main
    from fgff_core.store import RunStore

    store = RunStore(runs_dir)
    ids = []
    for cfg in map(RunConfig.coerce, configs):
        run_name = name(cfg) if callable(name) else f"{name} {cfg.algo} seed {cfg.seed}"
        rid = store.create_run(cfg, name=run_name)
        assert store.queue.claim(rid), f"run {rid} was claimed by another worker (a job manager open on this folder?)"
        worker_main(str(runs_dir), rid)
        ids.append(rid)
    return ids


def open_page_with_runs(monkeypatch, runs_dir: Path, name: str, **params: str):
    """``open_page`` on a given runs folder (for module-scoped stored runs)."""
    monkeypatch.setenv("FGFF_RUNS_DIR", str(runs_dir))
    monkeypatch.chdir(ROOT)
    return open_page(name, **params)


def query_param(at, key: str) -> str:
    """A query parameter's value as the page left it (AppTest keeps a str or a one-item list)."""
    value = at.query_params[key]
    return value[0] if isinstance(value, list) else value
