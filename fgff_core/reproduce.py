"""Reproduce the paper's Tables I-IV, and a fair-comparison study beyond them.

``python -m fgff_core reproduce --table {1,2,3,4,study,all} --budget {quick,full} --seeds N`` runs
the configurations behind each table from the named presets (``fgff_core/presets.py``), several
seeds each, and writes into ``--out``:

- ``runs-<budget>.jsonl`` / ``.csv``: one row per finished run, appended as soon as it finishes, so a
  crash loses nothing; a rerun skips every run whose row is already there (resume).
- ``table<N>-<budget>.md``: paper value, our mean +- std over seeds, and the difference.
- ``study-<budget>.md`` and ``study-*-<budget>.png``: the equal-budget FF vs FGFF comparison (each
  algorithm at its best learning rate from a sweep, chosen on a validation split held out from the
  training set), the budget curve (test accuracy vs epochs per layer) and the section III.C
  ablation (FGFF predicting with and without its significance factors).

Budgets: ``full`` is the paper's (all training data, 200 epochs per layer; for a GPU). ``quick``
keeps the paper's 200 epochs per layer -- fewer steps leave FF/FGFF at chance (the label weights
need ~100+ Adam steps) -- and trains on a fixed subset of the training data instead, always
testing on the full test set. ``smoke`` (not on the command line) is a seconds-long version on
the embedded digits data, for the tests.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import math
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig
from .data import SUBSET_SEED, Dataset, DatasetNotFoundError, load_dataset
from .presets import PRESETS
from .training import resolve_device, train

ALGOS = ("bp", "ff", "fgff")
TABLES = ("1", "2", "3", "4")

# The paper's published numbers, in percent (Tables I-III) and seconds per epoch (Table IV, RTX 4060).
PAPER: dict[str, dict[str, dict[str, float]]] = {
    "1": {"2x50": {"bp": 97.65, "ff": 74.71, "fgff": 87.13},
          "2x500": {"bp": 98.27, "ff": 85.82, "fgff": 90.88},
          "2x1000": {"bp": 98.75, "ff": 85.83, "fgff": 92.95}},
    "2": {"2x50": {"bp": 87.52, "ff": 60.76, "fgff": 73.28},
          "2x500": {"bp": 89.34, "ff": 52.24, "fgff": 75.63},
          "2x1000": {"bp": 89.47, "ff": 51.64, "fgff": 77.18}},
    "3": {"train": {"bp": 90.12, "ff": 38.33, "fgff": 50.73},
          "test": {"bp": 52.08, "ff": 37.67, "fgff": 42.67}},
    "4": {"seconds": {"bp": 13.1754, "ff": 0.1066, "fgff": 0.1073}},
}
TABLE_TITLES = {
    "1": "Table I: MNIST test accuracy (%)",
    "2": "Table II: Fashion-MNIST test accuracy (%)",
    "3": "Table III: CIFAR-10 3x800 train / test accuracy (%)",
    "4": "Table IV: time per epoch on Fashion-MNIST 2x500 (s)",
}
TABLE_PRESETS = {
    "1": [f"paper-mnist-2x{w}" for w in (50, 500, 1000)],
    "2": [f"paper-fashion-mnist-2x{w}" for w in (50, 500, 1000)],
    "3": ["paper-cifar10-3x800"],
    "4": ["paper-fashion-mnist-2x500"],
}


# -- budgets ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StudyBudget:
    """The fair-comparison study: lr sweep at ``sweep_epochs``, then a budget curve at the best lr."""

    dataset: str
    layers: tuple[int, ...]
    train_subset: int
    val_size: int  # held out from the rest of the training set, for choosing the learning rate
    lrs: tuple[float, ...]
    sweep_epochs: int
    curve_epochs: tuple[int, ...]
    long_epochs: int  # a second sweep at this longer budget: is the 200-epoch best lr still the best there?
    long_lrs: tuple[float, ...]


@dataclass(frozen=True)
class Budget:
    """How much of the paper's compute a run of ``reproduce`` spends."""

    name: str
    description: str
    train_subset: dict[str, int]  # preset -> training samples (0: all)
    ff_epochs: int | None  # epochs per layer for FF/FGFF; None: the preset's (the paper's)
    bp_epochs: int | None  # None: the preset's
    timing_epochs: int  # Table IV: epochs per layer for FF/FGFF on the full training set
    timing_bp_epochs: int
    study: StudyBudget
    changes: dict[str, Any] = field(default_factory=dict)  # applied to every config (smoke: digits)


BUDGETS: dict[str, Budget] = {b.name: b for b in [
    Budget("quick", "paper settings and 200 epochs per layer, on a fixed subset of the training data "
                    "(MNIST/Fashion-MNIST 2x50: 10000, 2x500: 5000, 2x1000: 2000 samples; CIFAR-10: 2000), "
                    "full test sets; BP with our preset settings on the same subset",
           {**{f"paper-{d}-2x50": 10000 for d in ("mnist", "fashion-mnist")},
            **{f"paper-{d}-2x500": 5000 for d in ("mnist", "fashion-mnist")},
            **{f"paper-{d}-2x1000": 2000 for d in ("mnist", "fashion-mnist")},
            "paper-cifar10-3x800": 2000},
           None, None, timing_epochs=3, timing_bp_epochs=1,
           study=StudyBudget("mnist", (100, 100), 2000, 2000, (0.01, 0.03, 0.06, 0.1), 200,
                             (50, 100, 200, 400, 800), 800, (0.01, 0.03, 0.06))),
    Budget("full", "the paper's budget: all training data, the presets' epochs (200 per layer; CIFAR-10 1200)",
           {}, None, None, timing_epochs=10, timing_bp_epochs=3,
           study=StudyBudget("mnist", (500, 500), 50000, 10000, (0.01, 0.03, 0.06, 0.1), 200,
                             (50, 100, 200, 400, 800), 800, (0.01, 0.03, 0.06))),
    Budget("smoke", "test-suite smoke run: embedded digits, 2x16 layers, 10 epochs per layer (not a reproduction)",
           {}, 10, 2, timing_epochs=2, timing_bp_epochs=1,
           study=StudyBudget("digits", (16, 16), 800, 300, (0.03, 0.1), 10, (5, 10), 5, (0.03, 0.1)),
           changes={"dataset": "digits", "layers": (16, 16)}),
]}


# -- run specs and rows -----------------------------------------------------------------------

@dataclass(frozen=True)
class RunSpec:
    """One training run behind one table cell (or one study point)."""

    part: str  # "1".."4" or "study"
    row: str  # "2x500", "seconds", "sweep lr=0.03", "curve epochs=400", ...
    algo: str
    seed: int
    config: RunConfig
    val_size: int = 0  # >0: test on a validation split held out from the training set

    @property
    def key(self) -> str:
        """Identifies the run for resuming; changes whenever anything that shapes the result does."""
        cfg = self.config.to_dict()
        for name in ("device", "data_dir", "download", "eval_chunk", "log_every"):
            cfg.pop(name, None)
        blob = json.dumps({"cfg": cfg, "val": self.val_size}, sort_keys=True, default=str)
        digest = hashlib.sha1(blob.encode()).hexdigest()[:10]
        return f"{self.part}|{self.row}|{self.algo}|seed{self.seed}|{digest}"


def _preset_config(preset: str, algo: str, budget: Budget, seed: int, args_device: str,
                   data_dir: str | None, **extra: Any) -> RunConfig:
    changes: dict[str, Any] = {"seed": seed, "device": args_device, "data_dir": data_dir, "download": False,
                               "eval_every": 0, "train_subset": budget.train_subset.get(preset, 0)}
    if algo == "bp" and budget.bp_epochs is not None:
        changes["epochs"] = budget.bp_epochs
    if algo != "bp" and budget.ff_epochs is not None:
        changes["epochs"] = budget.ff_epochs
    changes.update(budget.changes)
    changes.update(extra)
    return PRESETS[preset].config(algo, **changes)


def table_specs(table: str, budget: Budget, seeds: int, device: str, data_dir: str | None) -> list[RunSpec]:
    """The runs behind one of Tables I-IV."""
    specs = []
    for preset in TABLE_PRESETS[table]:
        layers = PRESETS[preset].config("fgff").layers
        row = "x".join(map(str, layers)) if len(set(layers)) > 1 else f"{len(layers)}x{layers[0]}"
        for algo in ALGOS:
            for seed in range(seeds):
                if table == "4":
                    epochs = budget.timing_bp_epochs if algo == "bp" else budget.timing_epochs
                    cfg = _preset_config(preset, algo, budget, seed, device, data_dir, train_subset=0, epochs=epochs)
                    specs.append(RunSpec("4", "seconds", algo, seed, cfg))
                else:
                    specs.append(RunSpec(table, row, algo, seed,
                                         _preset_config(preset, algo, budget, seed, device, data_dir)))
    return specs


def study_specs(budget: Budget, seeds: int, device: str, data_dir: str | None,
                best_lr: dict[str, float] | None = None, long: bool = False) -> list[RunSpec]:
    """The lr sweep (validation accuracy) or, given ``best_lr``, the budget curve (test accuracy).

    ``long``: the sweep at ``long_epochs`` instead, or, given ``best_lr``, the test runs at that budget
    (rows named like the curve's where the lr is the curve's, so those runs are not repeated).
    """
    s = budget.study
    base = dict(dataset=s.dataset, layers=s.layers, train_subset=s.train_subset, seed=0, device=device,
                data_dir=data_dir, download=False, eval_every=0)
    specs = []
    for algo in ("ff", "fgff"):
        for seed in range(seeds):
            if best_lr is None:
                epochs, prefix = (s.long_epochs, f"sweep{s.long_epochs} ") if long else (s.sweep_epochs, "sweep ")
                for lr in s.long_lrs if long else s.lrs:
                    cfg = PRESETS["paper-mnist-2x500"].config(algo, **{**base, "seed": seed, "lr": lr,
                                                                       "epochs": epochs})
                    specs.append(RunSpec("study", f"{prefix}lr={lr:g}", algo, seed, cfg, val_size=s.val_size))
            elif long:
                cfg = PRESETS["paper-mnist-2x500"].config(algo, **{**base, "seed": seed, "lr": best_lr[algo],
                                                                   "epochs": s.long_epochs})
                specs.append(RunSpec("study", f"curve epochs={s.long_epochs}", algo, seed, cfg))
            else:
                for epochs in s.curve_epochs:
                    cfg = PRESETS["paper-mnist-2x500"].config(algo, **{**base, "seed": seed, "lr": best_lr[algo],
                                                                       "epochs": epochs})
                    specs.append(RunSpec("study", f"curve epochs={epochs}", algo, seed, cfg))
    return specs


ROW_FIELDS = ("key", "part", "row", "algo", "seed", "budget", "dataset", "layers", "train_subset", "n_train",
              "n_test", "test_on", "epochs", "lr", "sig_lr", "batch_size", "test_acc", "test_acc_no_significance",
              "train_acc", "train_acc_no_significance", "train_seconds", "epoch_seconds_median",
              "wall_seconds", "device", "finished_at")


class RunLog:
    """Append-only JSONL of finished runs, mirrored to CSV; the resume index."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        self.reload()

    def reload(self) -> None:
        """Read the rows again (another process, e.g. a study next to a table run, may have added some)."""
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a crash: rerun that run
                        continue
                    self.rows[row["key"]] = row

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)

    def add(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = self.path.exists() and self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n")
        with self.path.open("a") as f:
            f.write(("\n" if torn else "") + json.dumps(row) + "\n")  # never glue a row onto a torn line
            f.flush()
        self.reload()
        self.rows[row["key"]] = row
        self.write_csv()

    def write_csv(self) -> None:
        with self.path.with_suffix(".csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=ROW_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for row in self.rows.values():
                writer.writerow({**row, "layers": "x".join(map(str, row["layers"]))})


# -- running ----------------------------------------------------------------------------------

class DataCache:
    """Each (dataset, train subset, validation size) is loaded once per process, not once per run."""

    def __init__(self) -> None:
        self._data: dict[tuple, Dataset] = {}

    def get(self, cfg: RunConfig, val_size: int = 0) -> Dataset:
        key = (cfg.dataset, cfg.data_dir, cfg.train_subset, val_size)
        if key not in self._data:
            if val_size:
                self._data[key] = _validation_split(cfg, val_size)
            else:
                self._data[key] = load_dataset(cfg.dataset, cfg.data_dir, cfg.download, cfg.train_subset)
        return self._data[key]


def _validation_split(cfg: RunConfig, val_size: int) -> Dataset:
    """Train on ``load_dataset``'s training subset; test on ``val_size`` other training samples.

    Uses the same fixed shuffle as ``load_dataset(train_subset=...)``, so the training samples are
    exactly those of the test-set runs, and the validation samples are none of them.
    """
    full = load_dataset(cfg.dataset, cfg.data_dir, cfg.download, 0)
    n = cfg.train_subset or len(full.y_train) - val_size
    if n + val_size > len(full.y_train):
        raise ValueError(f"study: train_subset {n} + validation {val_size} exceed the {len(full.y_train)} "
                         f"training samples of {cfg.dataset}")
    perm = torch.randperm(len(full.y_train), generator=torch.Generator().manual_seed(SUBSET_SEED))
    tr, va = perm[:n].sort().values, perm[n:n + val_size].sort().values
    return Dataset(full.name, full.x_train[tr], full.y_train[tr], full.x_train[va], full.y_train[va],
                   full.image_shape, full.n_classes, full.mean, full.std)


def execute(specs: Iterable[RunSpec], log: RunLog, budget: str, data: DataCache,
            say: Callable[[str], None] = print) -> dict[str, str]:
    """Run every spec whose row is not in ``log`` yet. Returns {key: skip reason} for runs that could not run."""
    skipped: dict[str, str] = {}
    missing: dict[str, str] = {}  # dataset -> reason, so a missing dataset is tried once
    specs = list(specs)
    # seed-major: every cell gets its first seed before any gets its second, so partial results cover the table
    todo = sorted((s for s in specs if s.key not in log), key=lambda s: s.seed)
    say(f"{len(specs) - len(todo)} of {len(specs)} runs already done; {len(todo)} to run")
    for n, spec in enumerate(todo, 1):
        cfg = spec.config
        log.reload()
        if spec.key in log:  # another reproduce process (same --out) finished it meanwhile
            continue
        if cfg.dataset in missing:
            skipped[spec.key] = missing[cfg.dataset]
            continue
        try:
            dataset = data.get(cfg, spec.val_size)
        except DatasetNotFoundError as exc:
            missing[cfg.dataset] = f"{cfg.dataset} not found ({str(exc).splitlines()[0]})"
            skipped[spec.key] = missing[cfg.dataset]
            say(f"skipped: {missing[cfg.dataset]}")
            continue
        claim = _claim(log.path.parent, spec.key)
        if claim is None:  # another live reproduce process is running it right now
            say(f"{spec.part} {spec.row} {spec.algo} seed {spec.seed}: running in another process, not repeated")
            continue
        try:
            trainer, result = train(cfg, dataset)
        finally:
            claim.unlink(missing_ok=True)
        row = {"key": spec.key, "part": spec.part, "row": spec.row, "algo": spec.algo, "seed": spec.seed,
               "budget": budget, "dataset": cfg.dataset, "layers": list(cfg.layers),
               "train_subset": cfg.train_subset, "n_train": len(dataset.y_train), "n_test": len(dataset.y_test),
               "test_on": "validation" if spec.val_size else "test", "epochs": cfg.epochs, "lr": cfg.lr,
               "sig_lr": cfg.sig_lr if cfg.algo == "fgff" else None, "batch_size": cfg.batch_size,
               **{k: v for k, v in result.to_dict().items() if k != "event" and k != "status"},
               "device": str(trainer.device), "finished_at": _now(), "config": cfg.to_dict()}
        log.add(row)
        say(f"[{n}/{len(todo)}] {spec.part} {spec.row} {spec.algo} seed {spec.seed}: "
            f"test {_pct(row['test_acc'])} (no sig {_pct(row['test_acc_no_significance'])}), "
            f"{row['wall_seconds']:.1f} s")
    return skipped


def _claim(out: Path, key: str) -> Path | None:
    """Mark run ``key`` of output folder ``out`` as running in this process; None if a live process has.

    The pid files live in the temp folder, not in ``out`` (which is often committed).
    """
    import os
    import tempfile

    folder = Path(tempfile.gettempdir()) / "fgff-reproduce-claims"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha1(f"{out.resolve()}|{key}".encode()).hexdigest()[:20] + ".pid")
    try:
        other = int(path.read_text())
        if other != os.getpid():
            os.kill(other, 0)  # ProcessLookupError if that process is gone: a stale claim from a crash
            return None
    except PermissionError:  # alive, someone else's
        return None
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass
    path.write_text(str(os.getpid()))
    return path


# -- aggregation and markdown -----------------------------------------------------------------

@dataclass
class Cell:
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
            return "not run yet"
        std = "n/a" if self.std is None else f"{self.std * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {std}"


def collect(specs: list[RunSpec], log: RunLog, skipped: dict[str, str], metric: str) -> dict[tuple, Cell]:
    """(row, algo) -> the metric over seeds; skip reasons kept for runs that could not run."""
    cells: dict[tuple, Cell] = {}
    for spec in specs:
        cell = cells.setdefault((spec.row, spec.algo), Cell([]))
        row = log.get(spec.key)
        if row is not None and row.get(metric) is not None and not _isnan(row[metric]):
            cells[(spec.row, spec.algo)].values.append(float(row[metric]))
        elif spec.key in skipped:
            cell.skipped = skipped[spec.key]
    return cells


def _diff(cell: Cell, paper: float, scale: float = 100.0) -> str:
    return "" if cell.mean is None else f"{cell.mean * scale - paper:+.2f}"


def accuracy_table(table: str, specs: list[RunSpec], log: RunLog, skipped: dict[str, str], budget: Budget) -> str:
    """Markdown for Table I or II (test accuracy) or III (train and test accuracy)."""
    lines = [f"### {TABLE_TITLES[table]}", "", f"Budget `{budget.name}`: {budget.description}.", ""]
    metrics = [("train_acc", "train"), ("test_acc", "test")] if table == "3" else [("test_acc", None)]
    header = "| Model | Algorithm | Paper (%) | Ours, mean ± std over seeds (%) | Seeds | Ours − paper (pp) " \
             "| Ours without significance at prediction (%) | Training samples |"
    lines += [header, "|---|---|---|---|---|---|---|---|"]
    for metric, which in metrics:
        cells = collect(specs, log, skipped, metric)
        no_sig = collect(specs, log, skipped, metric + "_no_significance")
        for (row, algo), cell in cells.items():
            paper = PAPER[table][which or row][algo]
            label = f"{row} ({which})" if which else row
            ns = "—" if algo == "bp" else no_sig[(row, algo)].fmt()
            n_train = _n_train(specs, log, row, algo)
            lines.append(f"| {label} | {algo.upper()} | {paper:.2f} | {cell.fmt()} | {cell.n} | {_diff(cell, paper)} "
                         f"| {ns} | {n_train} |")
    return "\n".join(lines) + "\n"


def timing_table(specs: list[RunSpec], log: RunLog, skipped: dict[str, str], budget: Budget) -> str:
    """Markdown for Table IV: our seconds per epoch next to the paper's (different machines)."""
    device = next((r["device"] for s in specs if (r := log.get(s.key))), "?")
    cells = collect(specs, log, skipped, "epoch_seconds_median")
    lines = [f"### {TABLE_TITLES['4']}", "",
             f"Ours: {_machine()}, device `{device}`, full 60000-sample training set, full batch for FF/FGFF "
             f"({budget.timing_epochs} epochs per layer), BP with batch 64 ({budget.timing_bp_epochs} epoch(s)); "
             "median seconds per layer-epoch (FF/FGFF) or per epoch (BP). The paper's numbers are from an "
             "RTX 4060 GPU: a different machine, so compare the ratios, not the seconds. A shared machine makes "
             "times noisy; the fastest seed is the least disturbed measurement.", "",
             "| Algorithm | Paper, RTX 4060 (s/epoch) | Ours, mean ± std over seeds (s/epoch) | Ours, fastest "
             "seed (s/epoch) | Seeds | Ours / paper | Ours relative to FF (fastest seeds) | Paper relative to FF |",
             "|---|---|---|---|---|---|---|---|"]
    ff = cells.get(("seconds", "ff"))
    for (_, algo), cell in cells.items():
        paper = PAPER["4"]["seconds"][algo]
        ratio = "" if cell.mean is None else f"{cell.mean / paper:.2f}x"
        fastest = f"{min(cell.values):.4f}" if cell.values else ""
        rel = "" if cell.mean is None or not ff or ff.mean is None else \
            f"{cell.mean / ff.mean:.3f}x ({min(cell.values) / min(ff.values):.3f}x)"
        lines.append(f"| {algo.upper()} | {paper:.4f} | {cell.fmt(scale=1.0, digits=4)} | {fastest} | {cell.n} "
                     f"| {ratio} | {rel} | {paper / PAPER['4']['seconds']['ff']:.3f}x |")
    return "\n".join(lines) + "\n"


def _n_train(specs: list[RunSpec], log: RunLog, row: str, algo: str) -> str:
    ns = {r["n_train"] for s in specs if s.row == row and s.algo == algo and (r := log.get(s.key))}
    return ", ".join(map(str, sorted(ns))) or "—"


# -- the study --------------------------------------------------------------------------------

def run_study(budget: Budget, seeds: int, device: str, data_dir: str | None, log: RunLog, data: DataCache,
              out: Path, say: Callable[[str], None] = print) -> str:
    """lr sweep -> best lr per algorithm (validation) -> budget curve (test). Returns the markdown."""
    s = budget.study
    sweep = study_specs(budget, seeds, device, data_dir)
    skipped = execute(sweep, log, budget.name, data, say)
    sweep_cells = collect(sweep, log, skipped, "test_acc")
    best_lr = _best_lr(sweep_cells, "sweep ", s.lrs)
    if len(best_lr) < 2:
        reason = next(iter(skipped.values()), "the sweep did not finish")
        return f"## Fair-comparison study\n\nskipped: {reason}\n"
    curve = study_specs(budget, seeds, device, data_dir, best_lr)
    skipped.update(execute(curve, log, budget.name, data, say))
    curve_cells = collect(curve, log, skipped, "test_acc")
    curve_nosig = collect(curve, log, skipped, "test_acc_no_significance")
    sweep_nosig = collect(sweep, log, skipped, "test_acc_no_significance")
    plots = _study_plots(s, sweep_cells, curve_cells, curve_nosig, out, budget.name)
    # Equal budget, longer: sweep again at long_epochs, then test each algorithm at its best lr there.
    long_sweep = study_specs(budget, seeds, device, data_dir, long=True)
    skipped.update(execute(long_sweep, log, budget.name, data, say))
    long_cells = collect(long_sweep, log, skipped, "test_acc")
    long_best = _best_lr(long_cells, f"sweep{s.long_epochs} ", s.long_lrs)
    long_md = ["skipped: the long sweep did not finish"]
    if len(long_best) == 2:
        long_runs = study_specs(budget, seeds, device, data_dir, long_best, long=True)
        skipped.update(execute(long_runs, log, budget.name, data, say))
        long_test = collect(long_runs, log, skipped, "test_acc")
        long_nosig = collect(long_runs, log, skipped, "test_acc_no_significance")
        long_md = ["| lr | FF (validation) | FGFF (validation) |", "|---|---|---|"]
        long_md += [f"| {lr:g} | {long_cells[(f'sweep{s.long_epochs} lr={lr:g}', 'ff')].fmt()} "
                    f"| {long_cells[(f'sweep{s.long_epochs} lr={lr:g}', 'fgff')].fmt()} |" for lr in s.long_lrs]
        row = f"curve epochs={s.long_epochs}"
        ff, fg = long_test[(row, "ff")], long_test[(row, "fgff")]
        gap = "" if ff.mean is None or fg.mean is None else f"{(fg.mean - ff.mean) * 100:+.2f}"
        long_md += ["", f"Best lr at {s.long_epochs} epochs: FF {long_best['ff']:g}, FGFF {long_best['fgff']:g}. "
                        f"Test accuracy at those lrs (%): FF {ff.fmt()}, FGFF {fg.fmt()} (without significance "
                        f"{long_nosig[(row, 'fgff')].fmt()}); FGFF − FF {gap} pp."]

    net = "x".join(map(str, s.layers))
    lines = ["## Fair-comparison study (beyond the paper)", "",
             f"{s.dataset}, {len(s.layers)}x{s.layers[0]} ReLU ({net}), paper settings (full batch, Adam, "
             f"sig_lr {PRESETS['paper-mnist-2x500'].config('fgff').sig_lr}, threshold 2, softplus, label value 1) "
             f"except the learning rate; {s.train_subset} training samples; {seeds} seeds; budget `{budget.name}`.",
             "", f"### 1. Learning-rate sweep at {s.sweep_epochs} epochs per layer "
                 f"(validation accuracy, {s.val_size} held-out training samples, %)", "",
             "| lr | FF | FGFF | FGFF without significance |", "|---|---|---|---|"]
    for lr in s.lrs:
        r = f"sweep lr={lr:g}"
        lines.append(f"| {lr:g} | {sweep_cells[(r, 'ff')].fmt()} | {sweep_cells[(r, 'fgff')].fmt()} "
                     f"| {sweep_nosig[(r, 'fgff')].fmt()} |")
    lines += ["", f"Best lr on validation: FF {best_lr['ff']:g}, FGFF {best_lr['fgff']:g}.", "",
              "### 2. Budget curve at each algorithm's best lr (test accuracy on the full test set, %)", "",
              "| Epochs per layer | FF | FGFF | FGFF − FF (pp) | FGFF without significance | FF without "
              "significance |", "|---|---|---|---|---|---|"]
    for e in s.curve_epochs:
        r = f"curve epochs={e}"
        ff, fg = curve_cells[(r, "ff")], curve_cells[(r, "fgff")]
        gap = "" if ff.mean is None or fg.mean is None else f"{(fg.mean - ff.mean) * 100:+.2f}"
        lines.append(f"| {e} | {ff.fmt()} | {fg.fmt()} | {gap} | {curve_nosig[(r, 'fgff')].fmt()} "
                     f"| {curve_nosig[(r, 'ff')].fmt()} |")
    lines += ["", f"### 3. Equal budget at {s.long_epochs} epochs per layer, each at its best lr for that budget "
                  f"(validation sweep, %)", "", *long_md]
    log.reload()
    fgff_rows = [r for r in log.rows.values() if r["algo"] == "fgff" and r.get("test_acc") is not None
                 and r["budget"] == budget.name and r["part"] != "4"]  # Table IV runs are a few epochs long
    lines += ["", "### 4. Section III.C ablation: FGFF predicting with vs without its significance factors", "",
              _ablation(fgff_rows), ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def _best_lr(cells: dict[tuple, Cell], prefix: str, lrs: tuple[float, ...]) -> dict[str, float]:
    """algo -> the lr with the best mean accuracy (ties: the larger lr)."""
    best = {}
    for algo in ("ff", "fgff"):
        scored = [(cells[(f"{prefix}lr={lr:g}", algo)].mean, lr) for lr in lrs]
        scored = [(m, lr) for m, lr in scored if m is not None]
        if scored:
            best[algo] = max(scored)[1]
    return best


def _ablation(rows: list[dict[str, Any]]) -> str:
    """Every FGFF run of this budget: accuracy with significance minus without, in points."""
    if not rows:
        return "No FGFF runs yet."
    gaps = [(r["test_acc"] - r["test_acc_no_significance"]) * 100 for r in rows]
    groups: dict[str, list[float]] = {}
    for r, g in zip(rows, gaps):
        where = "study" if r["part"] == "study" else f"Table {r['part']}"
        lr = f" lr={r['lr']:g}" if r["row"].startswith("curve") else ""  # the long-budget lr may differ
        groups.setdefault(f"{where} {r['row']}{lr}" + (" (validation)" if r.get("test_on") == "validation" else ""),
                          []).append(g)
    lines = ["| Runs | n | with − without significance (pp), mean ± std | min | max |", "|---|---|---|---|---|"]
    def natural(item: tuple[str, list[float]]) -> list:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", item[0])]

    for name, g in [*sorted(groups.items(), key=natural), ("all FGFF runs", gaps)]:
        std = f"{statistics.stdev(g):.2f}" if len(g) > 1 else "n/a"
        lines.append(f"| {name} | {len(g)} | {statistics.fmean(g):+.2f} ± {std} | {min(g):+.2f} | {max(g):+.2f} |")
    return "\n".join(lines)


def _study_plots(s: StudyBudget, sweep: dict, curve: dict, curve_nosig: dict, out: Path, budget: str) -> list[Path]:
    """The sweep and the budget curve as PNG (plotly + kaleido); HTML where kaleido cannot render."""
    import plotly.graph_objects as go

    colours = {"ff": "#1f77b4", "fgff": "#d62728"}
    figures = {
        "lr-sweep": (s.lrs, {a: [sweep[(f"sweep lr={x:g}", a)] for x in s.lrs] for a in ("ff", "fgff")},
                     "learning rate (Adam, weights)", f"lr sweep at {s.sweep_epochs} epochs per layer "
                                                      f"(validation accuracy)"),
        "budget-curve": (s.curve_epochs, {a: [curve[(f"curve epochs={x}", a)] for x in s.curve_epochs]
                                          for a in ("ff", "fgff")},
                         "epochs (full-batch steps) per layer", "test accuracy vs budget, each at its best lr"),
    }
    paths = []
    for name, (xs, cells, xlabel, title) in figures.items():
        fig = go.Figure()
        series = dict(cells)
        if name == "budget-curve":
            series["fgff-nosig"] = [curve_nosig[(f"curve epochs={x}", "fgff")] for x in xs]
        for algo, cs in series.items():
            pts = [(x, c) for x, c in zip(xs, cs) if c.mean is not None]
            if not pts:
                continue
            colour = colours[algo.split("-")[0]]
            label = "FGFF without significance" if algo == "fgff-nosig" else algo.upper()
            fig.add_scatter(x=[x for x, _ in pts], y=[c.mean * 100 for _, c in pts], name=f"{label}, mean ± std",
                            mode="lines+markers", line=dict(color=colour, dash="dash" if "nosig" in algo else None),
                            error_y=dict(type="data", array=[(c.std or 0.0) * 100 for _, c in pts], visible=True))
            # every seed as a faint point, so the spread is visible
            fig.add_scatter(x=[x for x, c in pts for _ in c.values], y=[v * 100 for _, c in pts for v in c.values],
                            mode="markers", marker=dict(color=colour, size=5, opacity=0.35), showlegend=False,
                            hoverinfo="skip")
        fig.update_layout(title=dict(text=f"{s.dataset} {'x'.join(map(str, s.layers))}, {s.train_subset} "
                                          f"training samples: {title}", font=dict(size=13)),
                          xaxis=dict(title=xlabel, type="log", tickvals=list(xs), ticktext=[f"{x:g}" for x in xs]),
                          yaxis=dict(title="accuracy (%)"), width=760, height=460, template="plotly_white",
                          legend=dict(x=0.99, xanchor="right", y=0.01, yanchor="bottom"))
        path = out / f"study-{name}-{budget}.png"
        try:
            fig.write_image(path)
        except Exception as exc:  # kaleido missing or no Chrome: keep an interactive copy instead
            path = path.with_suffix(".html")
            fig.write_html(path, include_plotlyjs="cdn")
            print(f"no PNG ({type(exc).__name__}: {exc}); wrote {path}", file=sys.stderr)
        paths.append(path)
    return paths


# -- entry point ------------------------------------------------------------------------------

def _machine() -> str:
    import os

    cores = os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()} {platform.processor() or 'CPU'}, {cores} cores, {gpu}, torch {torch.__version__}"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.2f}%"


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def reproduce(tables: list[str], budget_name: str, seeds: int, data_dir: str | None, out: Path,
              device: str = "auto", say: Callable[[str], None] = print) -> dict[str, str]:
    """Run (or resume) the given parts ("1".."4", "study"); write their markdown. Returns {part: markdown}."""
    if budget_name not in BUDGETS:
        raise ValueError(f"budget: {budget_name!r} is not known; choose one of {', '.join(BUDGETS)}")
    if not 1 <= seeds <= 100:
        raise ValueError(f"seeds: {seeds} is out of range; choose 1 to 100")
    resolve_device(device)  # a clear ValueError now rather than one per run
    budget = BUDGETS[budget_name]
    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out / f"runs-{budget_name}.jsonl")
    data = DataCache()
    written: dict[str, str] = {}
    for part in tables:
        start = time.perf_counter()
        say(f"== {'study' if part == 'study' else TABLE_TITLES[part]} (budget {budget_name}, {seeds} seeds)")
        if part == "study":
            md = run_study(budget, seeds, device, data_dir, log, data, out, say)
        else:
            specs = table_specs(part, budget, seeds, device, data_dir)
            skipped = execute(specs, log, budget_name, data, say)
            md = timing_table(specs, log, skipped, budget) if part == "4" else \
                accuracy_table(part, specs, log, skipped, budget)
        name = "study" if part == "study" else f"table{part}"
        header = (f"<!-- generated by `python -m fgff_core reproduce --table {part} --budget {budget_name} "
                  f"--seeds {seeds}` on {_now()}; machine: {_machine()} -->\n\n")
        (out / f"{name}-{budget_name}.md").write_text(header + md)
        written[part] = md
        say(md)
        say(f"({part}: {time.perf_counter() - start:.0f} s)")
    return written


def main(args: Any) -> int:
    """``python -m fgff_core reproduce``: ``args`` has table, budget, seeds, data_dir, out, device."""
    table = str(args.table)
    parts = [*TABLES, "study"] if table == "all" else [table]
    reproduce(parts, args.budget, args.seeds, args.data_dir, Path(args.out), args.device)
    return 0


__all__ = ["BUDGETS", "PAPER", "Budget", "RunSpec", "RunLog", "StudyBudget", "reproduce", "main",
           "table_specs", "study_specs"]
