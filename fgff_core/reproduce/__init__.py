"""Reproduce the paper's Tables I-IV, and a fair-comparison study and strong FF recipes beyond them.

``python -m fgff_core reproduce --table {1,2,3,4,study,best,siglr,pruning,mf,all} --budget {quick,full} --seeds N`` runs
the configurations behind each table from the named presets (``fgff_core/config/presets.py``), several
seeds each, and writes into ``--out``:

- ``runs-<budget>.jsonl`` / ``.csv``: one row per finished run, appended as soon as it finishes, so a
  crash loses nothing; a rerun skips every run whose row is already there (resume).
- ``table<N>-<budget>.md``: paper value, our mean +- std over seeds, and the difference.
- ``study-<budget>.md`` and ``study-*-<budget>.png``: the equal-budget FF vs FGFF comparison (each
  algorithm at its best learning rate from a sweep, chosen on a validation split held out from the
  training set), the budget curve (test accuracy vs epochs per layer) and the section III.C
  ablation (FGFF predicting with and without its significance factors).
- ``best-<budget>.md``: "Forward-Forward at its best": the strong recipes (``ff-best-*`` presets) for FF
  and FGFF at equal budget after the same lr sweep, several seeds, next to published anchors.
- ``siglr-<budget>.md``: FGFF's significance lr swept on the quick strong recipes at FGFF's weight lr from
  part "best", then several seeds at the best one, against FF at its best (``siglr``, ``siglr_report``).
- ``pruning-<budget>.md``: is FGFF's significance factor s a better pruning order than activity, weight norm or
  random? (``pruning``, ``pruning_report``; curves in their own log, ``pruning-<budget>.jsonl``).
- ``mf-<budget>.md``: Mono-Forward (issue 37 item 4) on MLPs for MNIST, Fashion-MNIST and CIFAR-10: MF's lr
  swept on held-out training images, then several seeds, BP at the same network, images and epochs, beside the
  FF/FGFF runs of Tables I-III in the same log and the MF paper's published numbers (``mf``, ``mf_report``).

The package: ``paper`` (published numbers, budgets), ``specs`` (the runs and their resume keys),
``runlog`` (JSONL/CSV log, claims between processes), ``execution`` (training), ``sharing`` (one
training behind a sweep row and a test row of the same network), ``cells``
(aggregation over seeds), ``report`` and ``study_report`` (Markdown), ``provenance`` (each table's CPU,
loss, lr provenance and load, read from its rows, for the captions); the figures are
``fgff_core.viz.reproduction``.

Budgets: ``full`` is the paper's (all training data, 200 epochs per layer). ``quick``
keeps the paper's 200 epochs per layer -- fewer steps leave FF/FGFF at chance (the label weights
need ~100+ Adam steps) -- and trains on a fixed subset of the training data instead, always
testing on the full test set. ``smoke`` (not on the command line) is a seconds-long version on
the embedded digits data, for the tests.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .._files import atomic_write
from ..engine.device import resolve_device
from ..format import duration
from .best_report import best_markdown
from .cells import Cell, collect
from .execution import DataCache, Say, Sweep, bracketed_sweep, execute, now, run_best, run_study, validation_split
from .mf import run_mf
from .mf_report import mf_markdown
from .paper import BUDGETS, PAPER, PARTS, TABLE_TITLES, TABLES, Budget, StudyBudget, get_budget
from .pruning import PruningLog, pruning_runs, pruning_settings, pruning_values, run_pruning
from .pruning_report import pruning_markdown
from .report import accuracy_table, machine, timing_table
from .runlog import RunLog, claim
from .siglr import run_siglr
from .siglr_report import siglr_markdown
from .specs import RunSpec, study_specs, table_specs, widen
from .study_report import ablation_markdown, study_markdown, study_plots

MAX_SEEDS = 100


def _part(part: str, budget: Budget, seeds: int, device: str, data_dir: str | None, log: RunLog, data: DataCache,
          out: Path, say: Say, train: bool, executor: str = "local", ablation: dict[str, Any] | None = None) -> str:
    """Train what part ``part`` still needs (unless ``train`` is False), then build its Markdown from the log."""
    if part == "study":
        runs = run_study(budget, seeds, device, data_dir, log, data, say, train, executor)
        return study_markdown(budget, seeds, runs, log, study_plots(budget, runs, log, out))
    if part == "pruning":
        runs_log = out / f"runs-{budget.name}.jsonl"  # the trainings' own log, where part best's lrs are read
        networks = pruning_runs(budget, seeds, device, data_dir, runs_log, pruning_settings(ablation))
        curves = PruningLog(out / f"pruning-{budget.name}.jsonl")
        missing = run_pruning(networks, curves, budget.name, runs_log, say, train)
        return pruning_markdown(budget, networks, list(curves.rows.values()), missing)
    if part == "best":
        return best_markdown(budget, seeds, run_best(budget, seeds, device, data_dir, log, data, say, train, executor),
                             log)
    if part == "siglr":
        runs = run_siglr(budget, seeds, device, data_dir, log, data, say, train, executor)
        return siglr_markdown(budget, seeds, runs, log)
    if part == "mf":
        return mf_markdown(budget, seeds, run_mf(budget, seeds, device, data_dir, log, data, say, train, executor),
                           log)
    specs = table_specs(part, budget, seeds, device, data_dir)
    skipped = execute(specs, log, budget.name, data, say, train, executor)
    if part == "4":
        return timing_table(specs, log, skipped, budget)
    return accuracy_table(part, specs, log, skipped, budget)


def reproduce(tables: list[str], budget_name: str, seeds: int, data_dir: str | None, out: Path,
              device: str = "auto", say: Say = print, train: bool = True, executor: str = "local",
              ablation: dict[str, Any] | None = None) -> dict[str, str]:
    """Run (or resume) the given parts ("1".."4", "study"); write their markdown. Returns {part: markdown}.

    Also writes ``ablation-<budget>.md`` (section III.C over every FGFF run in the log). ``train=False``
    writes the Markdown of what the log holds so far and trains nothing (for a log another process fills).
    ``ablation``: part "pruning"'s ablation settings over its defaults (``pruning.pruning_settings``).
    """
    budget = get_budget(budget_name)
    if not 1 <= seeds <= MAX_SEEDS:
        raise ValueError(f"seeds: {seeds} is out of range; choose 1 to {MAX_SEEDS}")
    if executor == "local":  # on a cluster the device is checked where each run lands
        resolve_device(device)  # a clear ValueError now rather than one per run
    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out / f"runs-{budget_name}.jsonl")
    data = DataCache()
    written: dict[str, str] = {}
    for part in tables:
        start = time.perf_counter()
        say(f"== {TABLE_TITLES.get(part, part)} (budget {budget_name}, {seeds} seeds)")
        md = _part(part, budget, seeds, device, data_dir, log, data, out, say, train, executor, ablation)
        name = part if part in ("study", "best", "siglr", "pruning", "mf") else f"table{part}"
        atomic_write(out / f"{name}-{budget_name}.md", _header(part, budget_name, seeds, train) + md)
        written[part] = md
        say(md)
        say(f"({part}: {duration(time.perf_counter() - start)})")
    written["ablation"] = ablation_markdown(log, budget)
    ablation_file = out / f"ablation-{budget_name}.md"
    if _body(ablation_file) != written["ablation"]:  # else its header keeps naming the command that wrote it
        table = tables[0] if len(tables) == 1 else "all"
        atomic_write(ablation_file, _header(table, budget_name, seeds, train) + written["ablation"])
    return written


def _check_out(out: Path) -> None:
    """Refuse an output folder that cannot take the tables before anything trains."""
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ValueError(f"out: {existing.name!r} is a file, not a folder for the tables and the run log")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"out: cannot write in {existing.name or str(existing)!r} (read-only)")


def _body(path: Path) -> str | None:
    """A generated Markdown file's text after its ``_header``; None if there is no such file."""
    if not path.is_file():
        return None
    _, sep, body = path.read_text().partition(" -->\n\n")
    return body if sep else None


def _header(table: str, budget: str, seeds: int, train: bool) -> str:
    command = "fgff_core reproduce" if train else "fgff_core.reproduce"  # the latter writes tables only
    return (f"<!-- generated by `python -m {command} --table {table} --budget {budget} --seeds {seeds}` on {now()}"
            f"{'' if train else ' from the run log (runs: its finished_at)'}; machine: {machine()} -->\n\n")


def main(args: Any) -> int:
    """``python -m fgff_core reproduce``: ``args`` has table, budget, seeds, data_dir, out, device."""
    table = str(args.table)
    parts = list(PARTS) if table == "all" else [table]
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        # Every cell would be skipped as "dataset not found" and the run would look like a success.
        raise ValueError(f"data_dir: {Path(args.data_dir).name or args.data_dir!r} is not a folder; give the folder "
                         "that holds the datasets (see python -m fgff_core datasets)")
    _check_out(Path(args.out))
    reproduce(parts, args.budget, args.seeds, args.data_dir, Path(args.out), args.device,
              executor=getattr(args, "executor", "local"), ablation=pruning_values(args))
    return 0


__all__ = ["BUDGETS", "PAPER", "PARTS", "TABLES", "Budget", "Cell", "DataCache", "RunSpec", "RunLog",
           "StudyBudget", "Sweep", "bracketed_sweep", "claim", "collect", "execute", "main", "reproduce", "run_best",
           "run_study", "study_specs", "table_specs", "validation_split", "widen"]
