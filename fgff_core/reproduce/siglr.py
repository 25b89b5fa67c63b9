"""Part "siglr": FGFF's significance lr swept on part "best"'s quick strong recipes, then seeds at the best one.

Part "best" chose FGFF's weight lr with the significance lr fixed at the authors' 0.15. Here FGFF keeps that
weight lr and sweeps the significance lr (``SigLrBudget.sig_lrs``, 0 included: the factors frozen at 1) on seed
0, scored on part "best"'s validation split, and runs every seed at the sig lr with the best validation
accuracy, to compare with FF's test runs at FF's own chosen lr (part "best"'s).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .cells import Cells, best_lr, collect
from .execution import BestRuns, DataCache, Say, Sweep, bracketed_sweep, run_best, stage_runner
from .paper import Budget
from .runlog import RunLog
from .specs import RunSpec, siglr_specs, siglr_sweep_row


@dataclass
class SigLrRuns:
    """Part "siglr": part "best" for its recipes, the sig-lr sweep at FGFF's chosen weight lr, the test runs."""

    best: BestRuns  # part "best" restricted to the swept recipes: FF's test runs and FGFF's weight lr
    weight_lr: dict[str, float]  # recipe -> FGFF's weight lr chosen (and settled) by part "best"
    sweep: Sweep[str]  # recipe -> the sig-lr grid and the sig lr chosen on validation
    sweep_cells: Cells  # (sweep row, "fgff") -> validation accuracy of seed 0
    test: list[RunSpec] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def best_for_siglr(budget: Budget) -> Budget:
    """``budget`` with part "best" limited to the recipes that part "siglr" sweeps."""
    return replace(budget, best=replace(budget.best, recipes=budget.siglr.recipes))


def run_siglr(budget: Budget, seeds: int, device: str, data_dir: str | None, log: RunLog, data: DataCache,
              say: Say = print, train_missing: bool = True, executor: str = "local") -> SigLrRuns:
    """Part "best" for the swept recipes (whatever of it the log lacks) -> FGFF's settled weight lr -> the
    sig-lr sweep there (validation, seed 0) -> every seed at the chosen sig lr (test)."""
    best = run_best(best_for_siglr(budget), seeds, device, data_dir, log, data, say, train_missing, executor)
    weight_lr = {recipe: lr for (recipe, algo), lr in best.sweep.settled.items() if algo == "fgff"}
    skipped: dict[str, str] = {}
    run = stage_runner(skipped, log, budget, data, say, train_missing, executor)

    def specs_for(grids: dict[str, tuple[float, ...]]) -> list[RunSpec]:
        return siglr_specs(budget, seeds, device, data_dir, weight_lr, sig_lrs=grids)

    def choose(specs: list[RunSpec], grids: dict[str, tuple[float, ...]]) -> dict[str, float]:
        cells = collect(specs, log, skipped, "test_acc")  # a sweep run's test_acc is on the validation split
        return {recipe: sig_lr for recipe, grid in grids.items()
                for sig_lr in best_lr(cells, siglr_sweep_row(recipe, weight_lr[recipe]), {"fgff": grid}).values()}

    def tests(settled: dict[str, float]) -> list[RunSpec]:
        return siglr_specs(budget, seeds, device, data_dir, weight_lr, best_sig_lr=settled)

    # widened past its largest sig lr where the best sits there (0, at the other end, cannot be halved)
    sweep = bracketed_sweep({recipe: budget.siglr.sig_lrs for recipe in weight_lr}, specs_for, choose, run,
                            budget.siglr.widenings, then=tests)
    return SigLrRuns(best, weight_lr, sweep, collect(sweep.specs, log, skipped, "test_acc"), tests(sweep.settled),
                     {**best.skipped, **skipped})
