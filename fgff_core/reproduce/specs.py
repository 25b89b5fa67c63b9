"""The training runs behind each table cell and study point, and the key that identifies a run for resuming."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config.choices import LEARNING_INVARIANT_FIELDS
from ..config.presets import PRESETS
from ..config.schema import RunConfig
from ..vocabulary import has_goodness
from .paper import ALGOS, STUDY_PRESET, TABLE_PRESETS, Budget

# The RunConfig fields when the committed logs (docs/reproduction/runs-*.jsonl) were written. A key hashes
# these always, and a field added later only when it is not at its default, so a new field keeps every
# existing key (and resume keeps skipping the runs already in a log).
KEYED_FIELDS_2026_11 = ("algo", "dataset", "layers", "epochs", "batch_size", "optimizer", "lr", "sig_lr",
                        "threshold", "loss", "delta", "label_value", "negatives", "schedule", "seed", "eval_every",
                        "eval_subset", "train_subset", "factorize", "precision", "compile")
# Those logs' keys left out these learning-invariant fields and hashed ``compile`` at its default (False,
# the only value any logged run had); every other field that cannot change a run's result is hashed at its
# default too, as compile: the learning-invariant fields, and the hinge margin of a softplus run.
_LEFT_OUT_OF_KEY = ("device", "data_dir", "download", "eval_chunk", "log_every")


def run_identity(config: RunConfig) -> dict[str, Any]:
    """What of ``config`` shapes a run's result, as hashed by ``RunSpec.key``."""
    defaults = RunConfig().to_dict()
    identity = {}
    for name, value in config.to_dict().items():
        if name in _LEFT_OUT_OF_KEY:
            continue
        if name in LEARNING_INVARIANT_FIELDS or (name == "delta" and config.loss != "hinge"):
            value = defaults[name]  # the hinge margin shapes hinge runs only
        if name in KEYED_FIELDS_2026_11 or value != defaults[name]:
            identity[name] = value
    return identity


@dataclass(frozen=True)
class RunSpec:
    """One training run behind one table cell (or one study point)."""

    part: str  # "1".."4" or "study"
    row: str  # "2x500", "seconds", "sweep lr=0.03", "curve epochs=400", ...
    algo: str
    seed: int
    config: RunConfig
    val_size: int = 0  # >0: test on a validation split held out from the training set
    # >0 (a test-set run): also score a validation split of this size, so that a sweep run of the same training
    # takes its row from this run (``sharing``); not part of the key, as it changes no result
    also_val_size: int = 0

    @property
    def key(self) -> str:
        """Identifies the run for resuming; changes whenever anything that shapes the result does."""
        blob = json.dumps({"cfg": run_identity(self.config), "val": self.val_size}, sort_keys=True, default=str)
        digest = hashlib.sha1(blob.encode()).hexdigest()[:10]
        return f"{self.part}|{self.row}|{self.algo}|seed{self.seed}|{digest}"

    @property
    def test_on(self) -> str:
        """What the run's row's ``test_acc`` is measured on: ``"validation"`` or ``"test"``."""
        return "validation" if self.val_size else "test"

    @property
    def label(self) -> str:
        return f"{self.part} {self.row} {self.algo} seed {self.seed}"


def preset_run_config(preset: str, algo: str, budget: Budget, seed: int, device: str, data_dir: str | None,
                      **extra: Any) -> RunConfig:
    """Preset ``preset`` for ``algo`` under ``budget`` (its training subset, epochs and changes)."""
    changes: dict[str, Any] = {"seed": seed, "device": device, "data_dir": data_dir, "download": False,
                               "eval_every": 0}
    if preset in budget.train_subset:  # otherwise the preset's own (MNIST: the authors' first 50000)
        changes["train_subset"] = budget.train_subset[preset]
    if not has_goodness(algo) and budget.bp_epochs is not None:
        changes["epochs"] = budget.bp_epochs
    if has_goodness(algo) and budget.ff_epochs is not None:  # epochs per layer
        changes["epochs"] = budget.ff_epochs
    if has_goodness(algo) and preset in budget.epochs:
        changes["epochs"] = budget.epochs[preset]
    changes.update(budget.changes)
    changes.update(extra)
    return PRESETS[preset].config(algo, **changes)


def row_name(layers: tuple[int, ...]) -> str:
    """A table row's model name: "2x500" for equal widths, "784x500x10"-style otherwise."""
    return "x".join(map(str, layers)) if len(set(layers)) > 1 else f"{len(layers)}x{layers[0]}"


def table_specs(table: str, budget: Budget, seeds: int, device: str, data_dir: str | None) -> list[RunSpec]:
    """The runs behind one of Tables I-IV."""
    specs = []
    for preset in TABLE_PRESETS[table]:
        row = row_name(PRESETS[preset].config("fgff").layers)
        for algo in ALGOS:
            for seed in range(seeds):
                if table == "4":
                    epochs = budget.timing_epochs if has_goodness(algo) else budget.timing_bp_epochs
                    cfg = preset_run_config(preset, algo, budget, seed, device, data_dir, train_subset=0,
                                            epochs=epochs)
                    specs.append(RunSpec("4", "seconds", algo, seed, cfg))
                else:
                    specs.append(RunSpec(table, row, algo, seed,
                                         preset_run_config(preset, algo, budget, seed, device, data_dir)))
    return specs


def lr_row(prefix: str, lr: float | None = None) -> str:
    """The row name of a sweep run at ``lr`` among the rows named ``prefix`` ("sweep " -> "sweep lr=0.03");
    without ``lr``: the prefix. Every lr sweep (the study's, part "best"'s) names its rows here."""
    return prefix if lr is None else f"{prefix}lr={lr:g}"


SWEPT_ALGOS = ("ff", "fgff")  # what the study and part "best" sweep and compare


def grid_end(lr: float, lrs: tuple[float, ...]) -> int:
    """Where ``lr`` sits in the sorted grid ``lrs``: 1 at its largest, -1 at its smallest, 0 inside (or no grid)."""
    if len(lrs) < 2 or min(lrs) < lr < max(lrs):
        return 0
    return 1 if lr == max(lrs) else -1


def widen(lrs: tuple[float, ...], chosen: float) -> tuple[float, ...]:
    """``lrs`` with one more lr past the end that ``chosen`` sits on (twice the largest or half the smallest),
    so that a sweep can bracket its best lr; unchanged when ``chosen`` lies inside."""
    end = grid_end(chosen, lrs)
    if end == -1 and min(lrs) == 0:  # 0 (a significance lr's) cannot be halved
        return lrs
    if end == 1:
        return (*lrs, round(max(lrs) * 2, 10))
    return (round(min(lrs) / 2, 10), *lrs) if end == -1 else lrs


def study_sweep_row(lr: float | None = None, long_epochs: int | None = None) -> str:
    """The row name of a study sweep run at ``lr``: "sweep lr=0.03", or "sweep800 lr=0.03" for the sweep at the
    long budget ``long_epochs``; without ``lr``: the rows' prefix."""
    return lr_row(f"sweep{long_epochs} " if long_epochs else "sweep ", lr)


def study_curve_row(epochs: int) -> str:
    """The row name of a study test run at ``epochs`` per layer (the budget curve and the long budget)."""
    return f"curve epochs={epochs}"


def study_specs(budget: Budget, seeds: int, device: str, data_dir: str | None,
                best_lr: dict[str, float] | None = None, long: bool = False,
                lrs: Mapping[str, tuple[float, ...]] | None = None) -> list[RunSpec]:
    """The lr sweep (validation accuracy) or, given ``best_lr``, the budget curve (test accuracy).

    ``long``: the sweep at ``long_epochs`` instead, or, given ``best_lr``, the test runs at that budget
    (rows named like the curve's where the lr is the curve's, so those runs are not repeated).
    A test run also scores the validation split, and a sweep run the test set: a sweep run and a test run of
    the same training share one run (``sharing``), whichever comes first.
    ``lrs``: algo -> the sweep's grid (a widened one); the budget's grid where not given.
    """
    s = budget.study
    # shuffled: the validation split is the rest of the same fixed shuffle (execution.validation_split)
    base = dict(dataset=s.dataset, layers=s.layers, train_subset=s.train_subset, train_subset_order="shuffled",
                device=device, data_dir=data_dir, download=False, eval_every=0)

    def config(algo: str, seed: int, lr: float, epochs: int) -> RunConfig:
        return PRESETS[STUDY_PRESET].config(algo, **base, seed=seed, lr=lr, epochs=epochs)

    specs = []
    for algo in SWEPT_ALGOS:
        for seed in range(seeds):
            if best_lr is None:
                epochs = s.long_epochs if long else s.sweep_epochs
                specs += [RunSpec("study", study_sweep_row(lr, s.long_epochs if long else None), algo, seed,
                                  config(algo, seed, lr, epochs),
                                  val_size=s.val_size)
                          for lr in (lrs or {}).get(algo, s.long_lrs if long else s.lrs)]
            else:
                budgets = (s.long_epochs,) if long else s.curve_epochs
                specs += [RunSpec("study", study_curve_row(epochs), algo, seed,
                                  config(algo, seed, best_lr[algo], epochs), also_val_size=s.val_size)
                          for epochs in budgets]
    return specs


def best_sweep_lrs(recipe: str, budget: Budget) -> tuple[float, ...]:
    """The learning rates that part "best" tries for ``recipe``: its own lr times each factor, for FF and FGFF."""
    lr = PRESETS[recipe].config("ff").lr
    return tuple(round(lr * factor, 10) for factor in budget.best.lr_factors)


def best_sweep_row(recipe: str, lr: float | None = None) -> str:
    """The row name of a sweep run of part "best" for ``recipe`` at ``lr`` (without ``lr``: the rows' prefix)."""
    return lr_row(f"{recipe} sweep ", lr)


def best_specs(budget: Budget, seeds: int, device: str, data_dir: str | None,
               best_lr: dict[tuple[str, str], float] | None = None,
               lrs: Mapping[tuple[str, str], tuple[float, ...]] | None = None) -> list[RunSpec]:
    """Part "best": the lr sweep (seed 0, validation split) or, given ``best_lr`` per (recipe, algo), the test runs.

    Both algorithms get the same recipe, the same budget and the same starting grid; only ``algo`` differs.
    ``lrs``: (recipe, algo) -> the sweep's grid (a widened one); ``best_sweep_lrs`` where not given.
    """
    specs = []
    for recipe in budget.best.recipes:
        for algo in SWEPT_ALGOS:
            if best_lr is None:
                specs += [RunSpec("best", best_sweep_row(recipe, lr), algo, 0,
                                  preset_run_config(recipe, algo, budget, 0, device, data_dir, lr=lr),
                                  val_size=budget.best.val_size)
                          for lr in (lrs or {}).get((recipe, algo), best_sweep_lrs(recipe, budget))]
            elif (recipe, algo) in best_lr:
                lr = best_lr[(recipe, algo)]
                specs += [RunSpec("best", recipe, algo, seed,
                                  preset_run_config(recipe, algo, budget, seed, device, data_dir, lr=lr))
                          for seed in range(seeds)]
    return specs


def siglr_sweep_row(recipe: str, lr: float, sig_lr: float | None = None) -> str:
    """The row name of a sweep run of part "siglr" for ``recipe`` at weight lr ``lr`` and significance lr
    ``sig_lr`` ("ff-best-mnist-quick sweep lr=0.04 sig_lr=0.03"); without ``sig_lr``: the rows' prefix."""
    return lr_row(f"{recipe} sweep lr={lr:g} sig_", sig_lr)


def siglr_test_row(recipe: str, lr: float, sig_lr: float) -> str:
    """The row name of a test run of part "siglr" ("ff-best-mnist-quick lr=0.04 sig_lr=0.03")."""
    return f"{recipe} lr={lr:g} sig_lr={sig_lr:g}"


def siglr_specs(budget: Budget, seeds: int, device: str, data_dir: str | None, weight_lr: Mapping[str, float],
                best_sig_lr: Mapping[str, float] | None = None,
                sig_lrs: Mapping[str, tuple[float, ...]] | None = None) -> list[RunSpec]:
    """Part "siglr": FGFF's significance-lr sweep (seed 0, part "best"'s validation split) or, given
    ``best_sig_lr`` per recipe, the test runs (every seed) at it; always at ``weight_lr[recipe]``, FGFF's weight
    lr chosen by part "best" (a recipe without one has no runs yet). Only ``sig_lr`` differs from part "best"'s
    FGFF runs, so its sweep run and test runs at the recipe's own sig lr are part "best"'s trainings (``sharing``).
    ``sig_lrs``: recipe -> the sweep's grid; the budget's where not given.
    """
    specs = []
    for recipe in budget.siglr.recipes:
        if recipe not in weight_lr:
            continue
        lr = weight_lr[recipe]

        def config(seed: int, sig_lr: float, recipe: str = recipe, lr: float = lr) -> RunConfig:
            return preset_run_config(recipe, "fgff", budget, seed, device, data_dir, lr=lr, sig_lr=sig_lr)

        if best_sig_lr is None:
            specs += [RunSpec("siglr", siglr_sweep_row(recipe, lr, sig_lr), "fgff", 0, config(0, sig_lr),
                              val_size=budget.best.val_size)
                      for sig_lr in (sig_lrs or {}).get(recipe, budget.siglr.sig_lrs)]
        elif recipe in best_sig_lr:
            sig_lr = best_sig_lr[recipe]
            specs += [RunSpec("siglr", siglr_test_row(recipe, lr, sig_lr), "fgff", seed, config(seed, sig_lr))
                      for seed in range(seeds)]
    return specs
