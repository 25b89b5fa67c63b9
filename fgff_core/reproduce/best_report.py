"""Part "best" as Markdown: the strong recipes for FF and FGFF at equal budget, next to the published anchors."""

from __future__ import annotations

import statistics

from ..analysis.findings import difference_sentence
from ..data.registry import DATASETS
from ..format import percent
from ..vocabulary import algo_label, trains_factors
from .cells import collect, grid_edge
from .execution import BestRuns
from .paper import BEST_ANCHORS, Budget
from .provenance import cpu_counts, loss_sentence, seconds_sentence, seed_pairs, sig_lr_sentence, siglr_recipes
from .runlog import RunLog
from .specs import SWEPT_ALGOS, best_sweep_row, row_name


def _sweep_text(runs: BestRuns, recipe: str, algo: str) -> str:
    parts = []
    for lr in runs.sweep.lrs[(recipe, algo)]:
        cell = runs.sweep_cells.get((best_sweep_row(recipe, lr), algo))
        value = "not run yet" if cell is None or cell.mean is None else percent(cell.mean, unit="")
        mark = "**" if runs.sweep.best.get((recipe, algo)) == lr else ""
        parts.append(f"{mark}{lr:g}: {value}{mark}")
    return ", ".join(parts)


def best_markdown(budget: Budget, seeds: int, runs: BestRuns, log: RunLog) -> str:
    """One table per recipe (FF and FGFF: chosen lr, test accuracy over seeds, without the factors,
    readout, wall time), the verdict FGFF - FF in words, and the anchors with their sources."""
    b = budget.best
    lines = ["### Forward-Forward at its best: strong recipes, FF and FGFF at equal budget", "",
             f"Budget `{budget.name}`. Each recipe is a preset (`python -m fgff_core presets`) trained on the "
             "whole training set and tested on the whole test set with the goodness rule (no backpropagation "
             f"between layers). FF and FGFF get the same recipe and the same sweep: the recipe's lr times "
             f"{', '.join(f'{f:g}' for f in b.lr_factors)}, scored on seed 0 with {b.val_size} training samples "
             "held out (validation accuracy, %; the chosen lr in bold)"
             + (f", and where an algorithm's best lr sits at an end of its sweep, the next lr past that end (twice "
                f"or half), up to {b.widenings} more" if b.widenings else "")
             + "; then every seed at the chosen lr. The recipes were tuned for FF "
             "([tuning-best.md](tuning-best.md)); FGFF gets them unchanged apart from its own lr sweep.", ""]
    ahead, pairs = 0, 0
    tests = collect(runs.test, log, runs.skipped, "test_acc")
    no_sig = collect(runs.test, log, runs.skipped, "test_acc_no_significance")
    readout = collect(runs.test, log, runs.skipped, "readout_test_acc")
    for recipe in b.recipes:
        # as trained
        cfg = next(spec.config for spec in runs.sweep.specs if spec.row.startswith(best_sweep_row(recipe)))
        dataset = cfg.dataset
        lines += [f"#### `{recipe}`: {DATASETS[dataset].title if dataset in DATASETS else dataset} "
                  f"{row_name(cfg.layers)}, {cfg.epochs} epochs, minibatches of {cfg.batch_size}", "",
                  "| algorithm | lr sweep (validation %) | test % (mean ± std) | seeds | FGFF without its factors % "
                  "| linear readout % | wall s per run (median) |", "|---|---|---|---|---|---|---|"]
        for algo in SWEPT_ALGOS:
            walls = [r["wall_seconds"] for s in runs.test if s.row == recipe and s.algo == algo
                     and (r := log.get(s.key))]
            cell, without, linear = (c.get((recipe, algo)) for c in (tests, no_sig, readout))
            lines.append(" | ".join([
                f"| {algo_label(algo)}", _sweep_text(runs, recipe, algo),
                cell.fmt() if cell else "waits for the sweep", str(cell.n if cell else 0),
                without.fmt() if trains_factors(algo) and without and without.n else "—",
                linear.fmt() if linear and linear.n else "—",
                f"{statistics.median(walls):.0f} |" if walls else "— |"]))
        ff, fgff = tests.get((recipe, "ff")), tests.get((recipe, "fgff"))
        lines.append("")
        lines += [f"{algo_label(algo)}: the chosen lr {lr:g} is {edge}." for algo in SWEPT_ALGOS
                  if (lr := runs.sweep.best.get((recipe, algo))) is not None
                  and (edge := grid_edge(lr, runs.sweep.lrs[(recipe, algo)]))]
        if ff and fgff and ff.n and fgff.n:
            lines.append(f"**Verdict:** {difference_sentence('FF', ff.values, 'FGFF', fgff.values)}")
            n_ahead, n_pairs = seed_pairs(*(_by_seed(runs, log, recipe, algo) for algo in ("ff", "fgff")))
            ahead, pairs = ahead + n_ahead, pairs + n_pairs
            lines.append(f"Seed by seed (the same seed of each): FGFF ahead of FF in {n_ahead} of {n_pairs}.")
            nosig = no_sig.get((recipe, "fgff"))
            if nosig and nosig.n:
                lines.append(f"Without its factors at prediction: "
                             f"{difference_sentence('FF', ff.values, 'FGFF without its factors', nosig.values)}")
        else:
            lines.append("**Verdict:** not yet: both algorithms need finished test runs.")
        anchors = BEST_ANCHORS.get(dataset, [])
        if anchors:
            lines += ["", "Published anchors on this dataset (not rerun here):", ""]
            lines += [f"- {name}: {value:.2f}% ({source})" for name, value, source in anchors]
        lines.append("")
    rows = [r for s in runs.test if (r := log.get(s.key))]
    if pairs:
        lines += [f"Over the {len(b.recipes)} recipes: FGFF ahead of FF in {ahead} of {pairs} seed pairs (same "
                  "recipe, same seed), each at its own chosen lr.", ""]
    if rows:
        swept = [r for r in siglr_recipes(log.rows.values()) if r in b.recipes]
        lines += [" ".join(filter(None, [loss_sentence(rows), sig_lr_sentence(rows, swept), f"CPUs of the test runs: "
                                         f"{cpu_counts(rows)}.", seconds_sentence(rows)])), ""]
    return "\n".join(lines)


def _by_seed(runs: BestRuns, log: RunLog, recipe: str, algo: str) -> dict[int, float]:
    """seed -> test accuracy of ``algo``'s test runs of ``recipe`` (at its chosen lr)."""
    return {s.seed: r["test_acc"] for s in runs.test if s.row == recipe and s.algo == algo and (r := log.get(s.key))}
