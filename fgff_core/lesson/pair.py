"""Step 4's FF-vs-FGFF pair: the stored runs of the lesson's net, trained once as background jobs.

Works on the store's run table (``RunStore.runs()``, newest first) and plain values, so the Learn
page only draws what these functions decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pandas as pd

from ..config.schema import RunConfig
from ..vocabulary import RunStatus, algo_label, trains_factors
from .settings import LESSON_ALGOS

# A stored run of the lesson's config is reused while it is waiting, training or done.
REUSABLE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.DONE)
# A run that ended in one of these has no result to show.
ENDED_WITHOUT_RESULT = (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED)


class AccuracyBar(NamedTuple):
    """One bar of step 4's accuracy chart."""

    label: str  # "FF", "FGFF", "FGFF, factors dropped"
    algo: str  # whose colour the bar takes
    accuracy: float  # in [0, 1]


def has_accuracies(row: Mapping[str, Any]) -> bool:
    """Whether a run row holds both final test accuracies (an imported checkpoint has none)."""
    values = pd.to_numeric(pd.Series([row.get("test_acc"), row.get("test_acc_no_significance")]), errors="coerce")
    return bool(values.notna().all())


def find_stored_run(runs: pd.DataFrame, config: RunConfig, trained_only: bool = False) -> dict[str, Any] | None:
    """The newest stored run of exactly ``config`` that is queued, running or done with evaluated
    accuracies (``trained_only``: done only), else None. A done run without accuracies (an imported
    checkpoint) is never used: the lesson would print "nan %"."""
    if runs.empty:
        return None
    wanted = config.to_dict()
    usable = {RunStatus.DONE.value} if trained_only else {s.value for s in REUSABLE_STATUSES}
    for row in runs.to_dict("records"):
        if row["status"] not in usable or row.get("config") != wanted:
            continue
        if row["status"] != RunStatus.DONE or has_accuracies(row):
            return row
    return None


@dataclass(frozen=True)
class LessonPair:
    """The stored run (a store row, or None) of each lesson algorithm for one lesson config; for an algorithm
    without one, the status its newest run of that config ended in (``ended``: why it needs training again)."""

    runs: Mapping[str, dict[str, Any] | None]
    ended: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def find(cls, runs: pd.DataFrame, config: RunConfig) -> LessonPair:
        found = {algo: find_stored_run(runs, config.replace(algo=algo)) for algo in LESSON_ALGOS}
        records = [] if runs.empty else runs.to_dict("records")
        ended = {}
        for algo in (a for a, row in found.items() if row is None):
            wanted = config.replace(algo=algo).to_dict()
            newest = next((row for row in records if row.get("config") == wanted), None)
            if newest is not None:
                ended[algo] = str(newest["status"])
        return cls(found, ended)

    @property
    def missing(self) -> list[str]:
        """Algorithms with no stored run yet: these need training."""
        return [algo for algo, row in self.runs.items() if row is None]

    @property
    def all_done(self) -> bool:
        return all(row is not None and row["status"] == RunStatus.DONE for row in self.runs.values())

    def accuracy_bars(self) -> list[AccuracyBar]:
        """Test accuracy of each run; for FGFF also with its factors dropped at prediction (eq. 2)."""
        bars = []
        for algo in LESSON_ALGOS:
            row = self.runs[algo]
            bars.append(AccuracyBar(algo_label(algo), algo, float(row["test_acc"])))
            if trains_factors(algo):
                bars.append(AccuracyBar("FGFF, factors dropped", "ff", float(row["test_acc_no_significance"])))
        return bars

    def factor_drop(self) -> float:
        """How much test accuracy (a fraction) FGFF gains (+) or loses (-) when its factors are dropped at
        prediction; ``fgff_core.format.points`` writes it in percentage points."""
        fgff = self.runs["fgff"]
        return float(fgff["test_acc_no_significance"]) - float(fgff["test_acc"])


def pair_job_name(config: RunConfig, algo: str) -> str:
    """The run name a lesson pair's job gets in the store."""
    return f"lesson {algo} {','.join(map(str, config.layers))} seed {config.seed}"


def ended_without_result(statuses: Mapping[str, str]) -> list[str]:
    """``"FF failed"``-style notes for each algorithm whose run ended without a result."""
    ended = {s.value for s in ENDED_WITHOUT_RESULT}
    return [f"{algo_label(algo)} {status}" for algo, status in statuses.items() if status in ended]
