"""Before and after a launch: a twin already waiting or training, the expected training time on this
server, and where a queued run stands.

Everything works on plain data (configs and the store's run table, ``RunStore.runs()``, newest
first), so the Train and Compare pages only draw the answers:

- ``active_twin`` / ``plan_launch``: a launch identical in config and seed to a run that is queued or
  running is not submitted again (one click, one launch, even when Enter submitted the form first).
  ``free_seed``: the seed of one's own run of that config instead (a class pressing Start on the same
  preset shares one run; each student may then train their own).
- ``over_time_limit``: whether a page asks before starting, from ``estimate.estimate_training`` (seconds of
  training: the config's counted work times this server's measured speed) and ``eta_limit_seconds``;
  ``live_refresh``, how often a running run is redrawn.
- ``queue_position``: how many runs are ahead of a queued one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd

from ..config.schema import RunConfig
from ..format import duration
from ..vocabulary import ACTIVE_STATUSES, RunStatus
from .estimate import TrainingEstimate, estimate_training

ETA_LIMIT_ENV = "FGFF_WARN_ETA_SECONDS"
DEFAULT_ETA_LIMIT_S = 600.0
REFRESH_MIN_S, REFRESH_MAX_S = 1.0, 5.0
SEED_MAX: int = next(f for f in dataclasses.fields(RunConfig) if f.name == "seed").metadata["max"]


def run_key(config: RunConfig | Mapping[str, Any]) -> str:
    """One text per (config, seed): equal for runs that would train exactly the same thing."""
    return json.dumps(RunConfig.coerce(config).to_dict(), sort_keys=True, default=str)


# -- one click, one launch ------------------------------------------------------------------------
def active_twin(runs: pd.DataFrame, config: RunConfig | Mapping[str, Any]) -> str | None:
    """The id of a queued or running run with exactly this config and seed, else None."""
    if runs.empty:
        return None
    key = run_key(config)
    active = runs[runs["status"].isin(ACTIVE_STATUSES)]
    for row in active.to_dict("records"):
        if row.get("config") and run_key(row["config"]) == key:
            return str(row["run_id"])
    return None


def free_seed(runs: pd.DataFrame, config: RunConfig | Mapping[str, Any]) -> int:
    """The smallest seed above ``config``'s that no stored run (of any status) of otherwise the same config
    used, so that a run with it is new and nobody else's twin. ValueError when no seed is left below the
    schema's maximum (``SEED_MAX``)."""
    cfg = RunConfig.coerce(config)
    used: set[int] = set()
    if not runs.empty:
        key = run_key(cfg.to_dict() | {"seed": 0})
        for stored in runs["config"]:
            if isinstance(stored, Mapping) and "seed" in stored:
                try:
                    if run_key({**stored, "seed": 0}) == key:
                        used.add(int(stored["seed"]))
                except (TypeError, ValueError):  # a config an older version stored: not this one
                    continue
    seed = cfg.seed + 1
    while seed in used:
        seed += 1
    if seed > SEED_MAX:
        raise ValueError(f"seed: every seed from {cfg.seed + 1} to {SEED_MAX} is taken by a run of this config")
    return seed


class LaunchPlan(NamedTuple):
    """Which configs of a launch to submit, and which are already queued or running (index -> run id)."""

    to_submit: list[int]  # indices into the launch's configs
    twins: dict[int, str]


def plan_launch(runs: pd.DataFrame, configs: Sequence[RunConfig]) -> LaunchPlan:
    """Split a launch (of distinct configs) into new runs and twins of runs already queued or running."""
    to_submit: list[int] = []
    twins: dict[int, str] = {}
    for i, config in enumerate(configs):
        twin = active_twin(runs, config)
        if twin is None:
            to_submit.append(i)
        else:
            twins[i] = twin
    return LaunchPlan(to_submit, twins)


# -- how long -----------------------------------------------------------------------------------
# The estimate itself: ``estimate.estimate_training`` (counted work times this server's measured speed).
def live_refresh(config: RunConfig | Mapping[str, Any], runs: pd.DataFrame) -> float:
    """Seconds between two redraws of a running run on the Train page (its progress and its curves): about
    once per expected epoch, within [``REFRESH_MIN_S``, ``REFRESH_MAX_S``].

    Redrawing more often than epochs arrive shows nothing new and costs CPU that, on a small machine, the
    training needs: measured during the ff-best-mnist-quick demo with the server and headless Chromium on
    the training's 2 cores, each one-second status redraw cost Chromium ~0.25 s of CPU and the charts' redraws
    another ~20 s over the run (tuning log, session 5). One timer draws both (see ``app_pages/train.py``).
    """
    cfg = RunConfig.coerce(config)
    per_epoch = estimate_training(cfg, runs).seconds / max(1, cfg.epochs)
    return min(REFRESH_MAX_S, max(REFRESH_MIN_S, per_epoch))


def eta_limit_seconds(environ: Mapping[str, str] | None = None) -> float:
    """Above this estimate a page asks before starting: ``$FGFF_WARN_ETA_SECONDS``, else 600 s."""
    raw = (os.environ if environ is None else environ).get(ETA_LIMIT_ENV, "")
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_ETA_LIMIT_S
    return value if math.isfinite(value) and value > 0 else DEFAULT_ETA_LIMIT_S


def over_time_limit(estimate: TrainingEstimate, what: str = "This run") -> str | None:
    """Why a page asks before starting ``what``: the sentence when ``estimate``'s expected time is over
    ``eta_limit_seconds``, else None. A preset's own measured budget is never stopped: when every config is a
    preset whose longest measured training time is within the limit, it starts without asking. The one
    ask-first rule of the Train and Compare pages (each adds what to do)."""
    limit = eta_limit_seconds()
    if estimate.seconds <= limit or (estimate.preset_seconds is not None and estimate.preset_seconds <= limit):
        return None
    return f"{what} would take {estimate.text()}, more than the {duration(limit)} this server starts without asking"


# -- where a run stands --------------------------------------------------------------------------
def queue_position(runs: pd.DataFrame, run_id: str) -> int | None:
    """How many runs are ahead of a queued run (running ones and those queued before it); None when
    the run is not queued."""
    if runs.empty or run_id not in set(runs["run_id"]):
        return None
    row = runs[runs["run_id"] == run_id].iloc[0]
    if row["status"] != RunStatus.QUEUED:
        return None
    running = int((runs["status"] == RunStatus.RUNNING).sum())
    queued = runs[runs["status"] == RunStatus.QUEUED]
    return running + int((queued["created_at"] < row["created_at"]).sum())


def queue_text(ahead: int) -> str:
    if ahead == 0:
        return "next in the queue"
    return f"{ahead} run{'s' if ahead != 1 else ''} ahead of yours"


RAY_WORKER_PHASE = "starting a Ray worker or waiting for a free CPU"


def startup_phase(run: Mapping[str, Any], on_cluster: bool = False) -> str | None:
    """What a running run that has finished no epoch yet is doing: ``"loading the data"`` until its worker
    has stored the run's start (device and parameter count, once the data is loaded and the net built), then
    ``"training its first epoch"``; None otherwise. (The MNIST demo's first epoch, hard negatives and first
    evaluation included, took about 30 s on a loaded class server, and was all shown as loading the data.)

    ``on_cluster`` (jobs run on Ray): before its worker has reported its node the run is ``RAY_WORKER_PHASE``
    (a cold Ray worker took 10-35 s to start on a loaded machine; a run beyond the free CPUs waits in Ray's queue)."""
    try:
        done = int(run.get("epochs_done") or 0)
    except (TypeError, ValueError):  # None or NaN from a fresh row
        done = 0
    if run.get("status") != RunStatus.RUNNING or done:
        return None
    if on_cluster and not run.get("node"):
        return RAY_WORKER_PHASE
    try:
        started = int(run.get("n_params") or 0) > 0
    except (TypeError, ValueError):
        started = False
    return "training its first epoch" if started else "loading the data"
