"""The fair-comparison study's Markdown and figures, and the section III.C ablation, from the run log."""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path
from typing import Any

from ..config.presets import PRESETS
from ..format import points
from ..vocabulary import algo_label, trains_factors
from . import sharing
from .cells import Cell, Cells, collect, grid_edge
from .execution import StudyRuns, Sweep
from .paper import STUDY_PRESET, Budget, StudyBudget
from .provenance import cpu_counts, loss_sentence, seconds_sentence, sig_lr_sentence
from .runlog import RunLog
from .specs import SWEPT_ALGOS, study_curve_row, study_sweep_row


def _gap(ff_mean: float | None, fgff_mean: float | None) -> str:
    return "" if ff_mean is None or fgff_mean is None else points(fgff_mean - ff_mean, unit="")


def _chosen(sweep: Sweep[str]) -> str:
    """ "FF 0.06, FGFF 0.1 (the largest lr tried: ...)": each algorithm's chosen lr, flagged at its grid's end."""
    return ", ".join(f"{algo_label(a)} {sweep.best[a]:g}"
                     + (f" ({edge})" if (edge := grid_edge(sweep.best[a], sweep.lrs[a])) else "") for a in SWEPT_ALGOS)


def _grid(sweep: Sweep[str]) -> list[float]:
    """Every lr that either algorithm's sweep tried, in order (a widened grid adds lrs to one algorithm only)."""
    return sorted({lr for lrs in sweep.lrs.values() for lr in lrs})


def _at(cells: Cells, sweep: Sweep[str], row: str, lr: float, algo: str) -> str:
    """A sweep cell, or "—" where ``lr`` is not in that algorithm's grid."""
    return cells[(row, algo)].fmt() if lr in sweep.lrs[algo] else "—"


def _training_set(row: dict[str, Any]) -> str:
    """ ", first 50000" or ", random 5000" for a table run on part of the training set, so runs on different
    samples are never pooled; "" for the study (its own fixed subset) and for the whole training set."""
    cfg = row.get("config", {})
    if not row["part"].isdigit() or not cfg.get("train_subset") or row["n_train"] < cfg["train_subset"]:
        return ""
    return f", {'first' if cfg.get('train_subset_order') == 'first' else 'random'} {row['n_train']}"


POOLED_ROW = "every FGFF network once (its test-set gap where it has one)"  # the ablation's last row


def ablation(rows: list[dict[str, Any]]) -> str:
    """Every FGFF run given: accuracy with significance minus without, in points, grouped by table row, then
    pooled over every network once (a network can be in several rows: one training scored for a sweep and a
    test run, or trained again by a table and the study)."""
    if not rows:
        return "No FGFF runs yet."
    gaps = [(r["test_acc"] - r["test_acc_no_significance"]) * 100 for r in rows]
    by_name: dict[str, dict[int, list[float]]] = {}  # group name -> epochs per layer -> gaps
    for r, g in zip(rows, gaps):
        where = f"Table {r['part']}" if r["part"].isdigit() else r["part"]  # "study", "best"
        lr = f" lr={r['lr']:g}" if r["row"].startswith("curve") else ""  # the long-budget lr may differ
        name = (f"{where} {r['row']}{lr}{_training_set(r)}"
                + (" (validation)" if r.get("test_on") == "validation" else ""))
        by_name.setdefault(name, {}).setdefault(r["epochs"], []).append(g)
    # A cell whose budget changed (runs at two epoch counts in one log) is split, never pooled.
    groups = {name + (f", {epochs} epochs per layer" if len(per) > 1 else ""): g
              for name, per in by_name.items() for epochs, g in per.items()}
    lines = ["| Runs | n | with − without significance (pp), mean ± std | min | max |", "|---|---|---|---|---|"]

    def natural(item: tuple[str, list[float]]) -> list:  # numbers by value: lr=0.005 < 0.01, 2x500 < 2x1000
        return [float(t) if i % 2 else t for i, t in enumerate(re.split(r"(\d+(?:\.\d+)?)", item[0]))]

    once: dict[str, float] = {}  # network -> its gap, on the test set where it was scored there
    for r, g in sorted(zip(rows, gaps), key=lambda row_gap: row_gap[0].get("test_on") == "validation"):
        once.setdefault(sharing.network(r), g)
    pooled = (POOLED_ROW, list(once.values()))
    for name, g in [*sorted(groups.items(), key=natural), pooled]:
        std = f"{statistics.stdev(g):.2f}" if len(g) > 1 else "n/a"
        lines.append(f"| {name} | {len(g)} | {statistics.fmean(g):+.2f} ± {std} | {min(g):+.2f} | {max(g):+.2f} |")
    return "\n".join(lines)


def ablation_rows(log: RunLog, budget: str) -> list[dict[str, Any]]:
    """The FGFF runs of ``budget`` that the ablation covers (not Table IV's, which are a few epochs long, nor those
    at significance lr 0, whose factors stay at 1): every cell's seeds, a row that is another row's training
    (``same_run_as``) too; ``ablation`` pools each network once."""
    log.reload()
    return [r for r in log.rows.values() if trains_factors(r["algo"]) and r.get("test_acc") is not None
            and r["budget"] == budget and r["part"] != "4" and _learns_factors(r)]


def _learns_factors(row: dict[str, Any]) -> bool:
    return float(row["config"].get("sig_lr", 1.0)) > 0.0


def _long_budget(s: StudyBudget, runs: StudyRuns, log: RunLog) -> list[str]:
    sweep = runs.long_sweep
    if sweep is None or len(sweep.best) < 2:
        return ["skipped: the long sweep did not finish"]
    long_cells = collect(sweep.specs, log, runs.skipped, "test_acc")
    long_test = collect(runs.long_runs, log, runs.skipped, "test_acc")
    long_nosig = collect(runs.long_runs, log, runs.skipped, "test_acc_no_significance")
    lines = ["| lr | FF (validation) | FGFF (validation) |", "|---|---|---|"]
    lines += [f"| {lr:g} | {_at(long_cells, sweep, study_sweep_row(lr, s.long_epochs), lr, 'ff')} "
              f"| {_at(long_cells, sweep, study_sweep_row(lr, s.long_epochs), lr, 'fgff')} |" for lr in _grid(sweep)]
    row = study_curve_row(s.long_epochs)
    ff, fg = long_test[(row, "ff")], long_test[(row, "fgff")]
    return lines + ["", f"Best lr at {s.long_epochs} epochs: {_chosen(sweep)}. Test accuracy "
                        f"at those lrs (%): FF {ff.fmt()}, FGFF {fg.fmt()} (without significance "
                        f"{long_nosig[(row, 'fgff')].fmt()}); FGFF − FF {_gap(ff.mean, fg.mean)} pp."]


def _shared(runs: StudyRuns, log: RunLog) -> str:
    """A sentence on the rows that took their result from another row's training (``sharing``), if any."""
    specs = [*runs.sweep.specs, *runs.curve, *(runs.long_sweep.specs if runs.long_sweep else []), *runs.long_runs]
    rows = [row for row in map(log.get, {spec.key for spec in specs}) if row is not None]
    shared = sum("same_run_as" in row for row in rows)
    if not shared:
        return ""
    return (f" {shared} of its {len(rows)} runs are another run's training scored on the other held-out set (a "
            "sweep run and a test run of the same config train the same network on the same samples), so it "
            f"trained {len(rows) - shared} networks.")


def study_markdown(budget: Budget, seeds: int, runs: StudyRuns, log: RunLog, plots: list[Path]) -> str:
    """The study's Markdown: sweep, budget curve, the long budget, the ablation and the figures."""
    s = budget.study
    sweep = runs.sweep
    if len(sweep.best) < 2:
        reason = next(iter(runs.skipped.values()), "the sweep did not finish")
        return f"### Fair-comparison study\n\nskipped: {reason}\n"
    sweep_cells = collect(sweep.specs, log, runs.skipped, "test_acc")
    sweep_nosig = collect(sweep.specs, log, runs.skipped, "test_acc_no_significance")
    curve_cells = collect(runs.curve, log, runs.skipped, "test_acc")
    curve_nosig = collect(runs.curve, log, runs.skipped, "test_acc_no_significance")
    net = "x".join(map(str, s.layers))
    lines = ["### Fair-comparison study (beyond the paper)", "",
             f"{s.dataset}, {len(s.layers)}x{s.layers[0]} ReLU ({net}), paper settings (full batch, Adam, "
             f"sig_lr {PRESETS[STUDY_PRESET].config('fgff').sig_lr}, threshold 2, softplus, label value 1) "
             f"except the learning rate; {s.train_subset} training samples; {seeds} seeds; budget `{budget.name}`."
             f"{_shared(runs, log)}", "", _provenance(runs, log),
             "", f"#### 1. Learning-rate sweep at {s.sweep_epochs} epochs per layer "
                 f"(validation accuracy, {s.val_size} held-out training samples, %)", "",
             "| lr | FF | FGFF | FGFF without significance |", "|---|---|---|---|"]
    for lr in _grid(sweep):
        r = study_sweep_row(lr)
        lines.append(f"| {lr:g} | {_at(sweep_cells, sweep, r, lr, 'ff')} | {_at(sweep_cells, sweep, r, lr, 'fgff')} "
                     f"| {_at(sweep_nosig, sweep, r, lr, 'fgff')} |")
    lines += ["", f"Best lr on validation: {_chosen(sweep)}.", "",
              "#### 2. Budget curve at each algorithm's best lr (test accuracy on the full test set, %)", "",
              "| Epochs per layer | FF | FGFF | FGFF − FF (pp) | FGFF without significance | FF without "
              "significance |", "|---|---|---|---|---|---|"]
    for e in s.curve_epochs:
        r = study_curve_row(e)
        ff, fg = curve_cells[(r, "ff")], curve_cells[(r, "fgff")]
        lines.append(f"| {e} | {ff.fmt()} | {fg.fmt()} | {_gap(ff.mean, fg.mean)} "
                     f"| {curve_nosig[(r, 'fgff')].fmt()} | {curve_nosig[(r, 'ff')].fmt()} |")
    lines += ["", f"#### 3. Equal budget at {s.long_epochs} epochs per layer, each at its best lr for that budget "
                  f"(validation sweep, %)", "", *_long_budget(s, runs, log)]
    lines += ["", "#### 4. Section III.C ablation: FGFF predicting with vs without its significance factors", "",
              ablation(ablation_rows(log, budget.name)), ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def _provenance(runs: StudyRuns, log: RunLog) -> str:
    """Loss, significance lr, CPUs and how the seconds were measured, from the study's rows."""
    specs = [*runs.sweep.specs, *runs.curve, *(runs.long_sweep.specs if runs.long_sweep else []), *runs.long_runs]
    rows = list({r["key"]: r for s in specs if (r := log.get(s.key))}.values())
    return " ".join(filter(None, [loss_sentence(rows), sig_lr_sentence(rows), f"CPUs: {cpu_counts(rows)}.",
                                  seconds_sentence(rows)]))


def study_plots(budget: Budget, runs: StudyRuns, log: RunLog, out: Path) -> list[Path]:
    """The sweep and the budget curve as PNG (plotly + kaleido); HTML where kaleido cannot render."""
    from ..viz.reproduction import seed_curves

    s = budget.study
    if len(runs.sweep.best) < 2:
        return []
    sweep: Cells = collect(runs.sweep.specs, log, runs.skipped, "test_acc")
    lrs = _grid(runs.sweep)
    curve = collect(runs.curve, log, runs.skipped, "test_acc")
    curve_nosig = collect(runs.curve, log, runs.skipped, "test_acc_no_significance")
    where = f"{s.dataset} {'x'.join(map(str, s.layers))}, {s.train_subset} training samples"
    figures = {
        "lr-sweep": seed_curves(
            {a: (a, [sweep.get((study_sweep_row(x), a), Cell([])) for x in lrs]) for a in SWEPT_ALGOS}, lrs,
            f"{where}: lr sweep at {s.sweep_epochs} epochs per layer (validation accuracy)",
            "learning rate (Adam, weights)"),
        "budget-curve": seed_curves(
            {**{a: (a, [curve[(study_curve_row(x), a)] for x in s.curve_epochs]) for a in SWEPT_ALGOS},
             "fgff_no_significance": ("fgff", [curve_nosig[(study_curve_row(x), "fgff")] for x in s.curve_epochs])},
            s.curve_epochs, f"{where}: test accuracy vs budget, each at its best lr",
            "epochs (full-batch steps) per layer"),
    }
    paths = []
    for name, fig in figures.items():
        path = out / f"study-{name}-{budget.name}.png"
        try:
            fig.write_image(path)
        except Exception as exc:  # kaleido missing or no Chrome: keep an interactive copy instead
            path = path.with_suffix(".html")
            fig.write_html(path, include_plotlyjs="cdn")
            print(f"no PNG ({type(exc).__name__}: {exc}); wrote {path}", file=sys.stderr)
        paths.append(path)
    return paths


def ablation_markdown(log: RunLog, budget: Budget) -> str:
    """Section III.C over every FGFF run of ``budget`` in the log: the tables' cells and the study's points."""
    return "\n".join([f"### Section III.C ablation: FGFF predicting with vs without its significance factors "
                      f"(budget `{budget.name}`)", "",
                      "Test accuracy (validation for the study's sweeps) with the learned factors minus without "
                      "them (all set to 1) at prediction, for the same trained network; one row per table cell "
                      "or study point, over seeds" + _frozen_note(log, budget.name) + ".", "",
                      ablation(ablation_rows(log, budget.name))]) + "\n"


def _frozen_note(log: RunLog, budget: str) -> str:
    """Words for the FGFF runs left out because their factors never left 1 (part "siglr"'s sig lr 0), if any."""
    n = sum(trains_factors(r["algo"]) and r["budget"] == budget and not _learns_factors(r) for r in log.rows.values())
    if not n:
        return ""
    runs, verb = (f"{n} FGFF runs", "are") if n > 1 else ("one FGFF run", "is")
    return f"; {runs} at significance lr 0 (factors fixed at 1) {verb} left out"
