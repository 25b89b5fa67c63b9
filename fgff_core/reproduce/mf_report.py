"""Part "mf" as Markdown: MF's lr sweep, MF and BP over seeds, beside the FF/FGFF runs of Tables I-III in the same
log and the MF paper's published numbers.

Every number of our runs is read from the run log; a run not in it reads "not run yet", never a value.
"""

from __future__ import annotations

import statistics
from typing import Any

from ..analysis.findings import difference_sentence
from ..data.registry import DATASETS
from ..format import percent, points
from ..vocabulary import algo_label, has_goodness
from .cells import NOT_RUN, Cell, grid_edge, missing_sentence
from .mf import MF_PAPER, MF_PAPER_LAYERS, MF_PAPER_SOURCE, MF_SETTINGS, MfRuns, mf_sweep_row, network_row
from .paper import TABLE_TITLES, Budget, MfNetwork
from .provenance import cpu_counts, seconds_sentence, seed_pairs
from .runlog import RunLog
from .sharing import scored_on
from .specs import RunSpec, row_name, table_specs

Row = dict[str, Any]


def _rows(specs: list[RunSpec], log: RunLog, row: str, algo: str) -> dict[int, Row]:
    """seed -> the logged row of each spec of ``specs`` in ``row`` for ``algo``."""
    return {s.seed: r for s in specs if s.row == row and s.algo == algo and (r := log.get(s.key))}


def _accuracies(rows: dict[int, Row]) -> dict[int, float]:
    return {seed: float(r["test_acc"]) for seed, r in rows.items() if r.get("test_acc") is not None}


def _epochs(row: Row) -> str:
    per_layer = has_goodness(row["algo"]) and row["config"].get("schedule", "greedy") == "greedy"
    return f"{row['epochs']}{' per layer' if per_layer else ''}"


def _seconds(rows: list[Row]) -> str:
    """The median wall seconds of the trainings behind ``rows`` (a shared row holds its one training's seconds)."""
    walls = [float(r["wall_seconds"]) for r in rows]
    return f"{statistics.median(walls):.0f}" if walls else "—"


def _line(name: str, rows: dict[int, Row], seeds: int, paper: str) -> str:
    """One table line: the settings as logged, mean ± std, spread, seeds, per seed, seconds, the paper's number."""
    if not rows:
        return f"| {name} | — | — | — | — | {NOT_RUN} | — | 0 | — | — | {paper} |"
    accs = _accuracies(rows)
    cell = Cell([accs[s] for s in sorted(accs)])
    first = next(iter(rows.values()))
    batch = "full" if not first["batch_size"] else str(first["batch_size"])
    spread = f"{percent(min(cell.values), unit='')}–{percent(max(cell.values), unit='')}" if cell.n else "—"
    per_seed = ", ".join(percent(accs[s], unit="") if s in accs else NOT_RUN for s in range(seeds))
    return (f"| {name} | {first['lr']:g} | {_epochs(first)} | {batch} | {first['n_train']} | {cell.fmt()} | {spread} "
            f"| {cell.n} | {per_seed} | {_seconds(list(rows.values()))} | {paper} |")


def _paper(dataset: str, algo: str, note: str = "") -> str:
    if dataset not in MF_PAPER or algo not in MF_PAPER[dataset]:
        return "—"
    mean, std = MF_PAPER[dataset][algo]
    return f"{mean:.2f} ± {std:.2f} ({row_name(MF_PAPER_LAYERS[dataset])}{note})"


def _sweep_line(runs: MfRuns, log: RunLog, budget: Budget, net: MfNetwork) -> str:
    row = network_row(net)
    grid = runs.sweep.lrs.get(row, budget.mf.lrs)
    parts = []
    for lr in grid:
        cell = runs.sweep_cells.get((mf_sweep_row(net, lr), "mf"), Cell([]))
        value = percent(cell.mean, unit="") if cell.n else (cell.fmt() if cell.skipped else NOT_RUN)
        parts.append(f"**{lr:g}: {value}**" if runs.sweep.best.get(row) == lr else f"{lr:g}: {value}")
    text = (f"MF's lr sweep (seed 0; accuracy % on the {budget.mf.val_size} held-out training images; the chosen lr "
            f"in bold, ties to the larger): {', '.join(parts)}.")
    chosen = runs.sweep.best.get(row)
    if chosen is not None and (edge := grid_edge(chosen, grid)):
        text += f" Chosen: {chosen:g}, {edge}."
    bp = _rows(runs.test, log, row, "bp").get(0)
    held_out = (bp or {}).get("scores", {}).get(scored_on(budget.mf.val_size))
    if held_out is not None:
        text += (f" BP at lr {budget.mf.bp_lr:g}, seed 0, on the same held-out images: "
                 f"{percent(held_out['test_acc'], unit='')} (not swept).")
    return text


def _comparators(budget: Budget, seeds: int, log: RunLog, net: MfNetwork) -> dict[str, dict[int, Row]]:
    """algo -> seed -> the logged rows of the FGFF table's runs for this network's dataset (FF, FGFF, BP)."""
    specs = [s for s in table_specs(net.table, budget, seeds, "cpu", None) if s.row == net.table_row]
    return {algo: _rows(specs, log, net.table_row, algo) for algo in ("ff", "fgff", "bp")}


Outcome = tuple[dict[int, float], dict[int, float], dict[int, float]]  # MF, BP here, FF of the table, by seed


def _network(budget: Budget, seeds: int, runs: MfRuns, log: RunLog, net: MfNetwork) -> tuple[list[str], Outcome]:
    row = network_row(net)
    title = DATASETS[net.dataset].title if net.dataset in DATASETS else net.dataset
    table = TABLE_TITLES.get(net.table, f"Table {net.table}").split(":")[0]
    mf, bp = _rows(runs.test, log, row, "mf"), _rows(runs.test, log, row, "bp")
    others = _comparators(budget, seeds, log, net)
    lines = [f"#### {title}, MLP {row_name(net.layers)}", "", _sweep_line(runs, log, budget, net), "",
             f"| run | lr | epochs | batch | training images | test % (mean ± std) | min–max | seeds | per seed "
             f"({', '.join(map(str, range(seeds)))}) | seconds per run (median) | the MF paper, its MLP |",
             "|---|---|---|---|---|---|---|---|---|---|---|",
             _line("**MF** (here)", mf, seeds, _paper(net.dataset, "mf")),
             _line("BP (here, same network, images and epochs)", bp, seeds, _paper(net.dataset, "bp")),
             _line(f"FF ({table}'s runs, {net.table_row})", others["ff"], seeds,
                   _paper(net.dataset, "ff", ", its vanilla FF")),
             _line(f"FGFF ({table}'s runs, {net.table_row})", others["fgff"], seeds, "—"),
             _line(f"BP ({table}'s runs, {net.table_row}, the FGFF tables' BP settings)", others["bp"], seeds, "—"),
             ""]
    mf_acc, bp_acc, ff_acc = _accuracies(mf), _accuracies(bp), _accuracies(others["ff"])
    verdict = []
    if mf_acc and bp_acc:
        ahead, pairs = seed_pairs(bp_acc, mf_acc)
        verdict.append(f"{difference_sentence('BP', list(bp_acc.values()), 'MF', list(mf_acc.values()))} Seed by "
                       f"seed (the same seed of each): MF ahead of BP in {ahead} of {pairs}.")
    if mf_acc and ff_acc:
        verdict.append(f"Against FF at the FGFF paper's settings ({table}'s runs in this log, another training "
                       f"budget): {difference_sentence('FF', list(ff_acc.values()), 'MF', list(mf_acc.values()))}")
    if mf_acc and net.dataset in MF_PAPER:
        ours = statistics.fmean(mf_acc.values())
        gap = ours - MF_PAPER[net.dataset]["mf"][0] / 100
        verdict.append(f"MF here is {points(abs(gap), sign=False)} {'above' if gap > 0 else 'below'} the MF paper's "
                       f"{MF_PAPER[net.dataset]['mf'][0]:.2f} % (its {row_name(MF_PAPER_LAYERS[net.dataset])}, "
                       f"up to 200 epochs; here {row_name(net.layers)}, {budget.mf.epochs} epochs).")
    lines += [f"**Verdict:** {' '.join(verdict)}" if verdict else
              "**Verdict:** not yet: MF and BP both need test runs here.", ""]
    return lines, (mf_acc, bp_acc, ff_acc)


def _answer(outcomes: dict[str, Outcome]) -> str:
    done = {row: o for row, o in outcomes.items() if o[0] and o[1]}
    if not done:
        return "Not yet: no network has test runs of both MF and BP."
    above = sum(statistics.fmean(mf.values()) > statistics.fmean(bp.values()) for mf, bp, _ in done.values())
    ahead = pairs = 0
    for mf, bp, _ in done.values():
        a, p = seed_pairs(bp, mf)
        ahead, pairs = ahead + a, pairs + p
    with_ff = {row: o for row, o in done.items() if o[2]}
    over_ff = sum(statistics.fmean(mf.values()) > statistics.fmean(ff.values()) for mf, _, ff in with_ff.values())
    return (f"MF's mean test accuracy is above BP's on {above} of {len(done)} network{'s' * (len(done) > 1)} "
            f"(same network, images, epochs and minibatches; MF's lr chosen on validation, BP's fixed), and MF is "
            f"ahead of BP in {ahead} of {pairs} seed pairs; MF's mean is above FF's (the FGFF tables' runs) on "
            f"{over_ff} of {len(with_ff)}. Whether a difference exceeds the seed spread: each network's verdict.")


def mf_markdown(budget: Budget, seeds: int, runs: MfRuns, log: RunLog) -> str:
    """Per network: MF's sweep, the test table beside the FGFF tables' FF/FGFF/BP and the MF paper, the verdict;
    then the answer over the networks, what this does not show, and where and how long the runs ran."""
    m = budget.mf
    settings = ", ".join(f"{k} {v}" for k, v in MF_SETTINGS.items() if k not in ("eval_every", "train_subset_order"))
    lines = ["### Mono-Forward (MF) on MLPs, beside BP, FF, FGFF and the MF paper", "",
             f"Budget `{budget.name}`: {m.description}. MF's lr is swept over {', '.join(f'{lr:g}' for lr in m.lrs)}"
             + (f" (where the best sits at an end of the grid, one lr past it, up to {m.widenings} more)"
                if m.widenings else "")
             + f" on seed 0, scored on {m.val_size} training images held out from its training; then seeds "
             f"0-{seeds - 1} at the chosen lr, tested on the whole test set. BP trains the same network on the same "
             f"images for the same epochs at lr {m.bp_lr:g} (not swept). Both: {settings}; MF steps every layer on "
             "every minibatch on its own class scores (`fgff_core/engine/mono_forward.py`) and predicts from the "
             "last layer's. The seed-0 MF test run at the chosen lr is that lr's sweep run (one training, scored "
             "on both sets). FF, FGFF and the third BP line are the runs of the FGFF paper's Tables I-III in this "
             "log, as trained there (their settings in their columns).", "",
             f"The MF paper's numbers: {MF_PAPER_SOURCE}.", ""]
    outcomes: dict[str, Outcome] = {}
    for net in m.networks:
        section, outcome = _network(budget, seeds, runs, log, net)
        lines += section
        outcomes[network_row(net)] = outcome
    wanted = [*runs.sweep.specs, *runs.test]
    other_networks = [n for n in m.networks if n.dataset in MF_PAPER_LAYERS and MF_PAPER_LAYERS[n.dataset] != n.layers]
    lines += [f"**Does MF match BP at equal budget here?** {_answer(outcomes)}" + missing_sentence(wanted, log), "",
              "What this does not show:", "",
              f"- The MF paper's budget: it trains up to 200 epochs with early stopping on validation; here every run "
              f"trains {m.epochs} epochs, so a number here above or below the paper's is no test of its numbers "
              "at its budget.",
              "- " + "; ".join(f"{DATASETS[n.dataset].title if n.dataset in DATASETS else n.dataset}: "
                               f"{row_name(n.layers)} here, {row_name(MF_PAPER_LAYERS[n.dataset])} in the MF paper"
                               for n in other_networks) + "."
              if other_networks else "- The networks are the MF paper's.",
              f"- {seeds} seeds; MF's lr chosen on one seed's validation accuracy; BP's lr not swept, so BP may be "
              "below its best here.",
              "- FF and FGFF are not retrained here: their rows are the FGFF tables' runs (full batch, their own "
              "epochs, images and lrs), a different budget from MF's."]
    rows = [r for s in wanted if (r := log.get(s.key))]
    trained = [r for r in rows if "same_run_as" not in r]
    if trained:
        total = sum(float(r["wall_seconds"]) for r in trained)
        when = sorted(str(r["finished_at"]) for r in trained)
        threads = sorted({str(r.get("threads", "not recorded")) for r in trained})
        lines += ["", f"Runs of this part: {len(trained)} trainings ({algo_label('mf')} and BP), {total / 60:.0f} "
                      f"minutes of wall time in all, finished {when[0]} to {when[-1]}; CPUs: {cpu_counts(trained)}; "
                      f"torch threads: {', '.join(threads)}. {seconds_sentence(trained)}"]
    return "\n".join(lines) + "\n"
