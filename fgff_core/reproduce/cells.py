"""Aggregation: one table cell is a metric over seeds, read from the run log."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .runlog import RunLog
from .specs import RunSpec, grid_end, lr_row

NOT_RUN = "not run yet"  # what a report shows for a run missing from the log, never a value


def missing_sentence(specs: list[RunSpec], log: RunLog) -> str:
    """The words for a part's ``specs`` missing from ``log`` (" 2 of the 13 runs of this part are not run yet."),
    "" when none is."""
    missing = sum(log.get(s.key) is None for s in specs)
    return f" {missing} of the {len(specs)} runs of this part are {NOT_RUN}." if missing else ""


@dataclass
class Cell:
    """A metric over seeds (fractions, e.g. 0.91), or the reason its runs were skipped."""

    values: list[float]
    skipped: str | None = None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def fmt(self, scale: float = 100.0, digits: int = 2) -> str:
        if self.skipped and not self.values:
            return f"skipped: {self.skipped}"
        if not self.values:
            return NOT_RUN
        std = "n/a" if self.std is None else f"{self.std * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {std}"


Cells = dict[tuple[str, str], Cell]  # (row, algo) -> cell


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def collect(specs: list[RunSpec], log: RunLog, skipped: dict[str, str], metric: str) -> Cells:
    """(row, algo) -> the metric over seeds; skip reasons kept for runs that could not run."""
    cells: Cells = {}
    for spec in specs:
        cell = cells.setdefault((spec.row, spec.algo), Cell([]))
        row = log.get(spec.key)
        if row is not None and row.get(metric) is not None and not _isnan(row[metric]):
            cell.values.append(float(row[metric]))
        elif spec.key in skipped:
            cell.skipped = skipped[spec.key]
    return cells


def best_lr(cells: Cells, prefix: str, lrs: Mapping[str, tuple[float, ...]], seeds: int = 1) -> dict[str, float]:
    """algo -> the lr of its grid ``lrs[algo]`` with the best mean accuracy (ties: the larger lr), for each
    algorithm whose whole grid has results from ``seeds`` seeds: a part-finished sweep chooses nothing."""
    best = {}
    for algo, grid in lrs.items():
        scored = [(cells.get((lr_row(prefix, lr), algo), Cell([])), lr) for lr in grid]
        if all(cell.n >= seeds for cell, _ in scored):
            best[algo] = max((cell.mean, lr) for cell, lr in scored)[1]
    return best


def grid_edge(lr: float, lrs: tuple[float, ...]) -> str:
    """Words for an lr chosen at an end of the grid it was chosen from ("" inside it): the sweep did not
    bracket the optimum, so a larger (smaller) lr might do better."""
    return {1: "the largest lr tried: a larger one might do better",
            -1: "the smallest lr tried: a smaller one might do better"}.get(grid_end(lr, lrs), "")
