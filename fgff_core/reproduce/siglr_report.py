"""Part "siglr" as Markdown: FGFF's significance-lr sweep, and FGFF at its tuned sig lr against FF at its best.

Every number is read from the run log; a run not in it reads "not run yet", never a value.
"""

from __future__ import annotations

import statistics

from ..analysis.findings import difference_sentence
from ..config.presets import PRESETS
from ..data.registry import DATASETS
from ..format import percent
from .cells import NOT_RUN, Cell, collect, grid_edge, missing_sentence
from .paper import Budget
from .provenance import cpu_counts, loss_sentence, row_cpu, seconds_sentence, seed_pairs, sig_lr_sentence
from .runlog import RunLog
from .siglr import SigLrRuns
from .specs import RunSpec, best_sweep_row, row_name, siglr_sweep_row


def _authors_sig_lr(recipes: tuple[str, ...]) -> str:
    return ", ".join(sorted({f"{PRESETS[r].config('fgff').sig_lr:g}" for r in recipes}))


def _by_seed(specs: list[RunSpec], log: RunLog, row: str, algo: str) -> dict[int, float]:
    """seed -> test accuracy of the logged runs of ``specs`` in ``row`` for ``algo``."""
    return {s.seed: r["test_acc"] for s in specs if s.row == row and s.algo == algo and (r := log.get(s.key))}


def _seeds_text(by_seed: dict[int, float], seeds: int) -> str:
    return ", ".join(percent(by_seed[s], unit="") if s in by_seed else NOT_RUN for s in range(seeds))


def _sweep_table(runs: SigLrRuns, log: RunLog, recipe: str) -> list[str]:
    lr = runs.weight_lr[recipe]
    no_sig = collect(runs.sweep.specs, log, runs.skipped, "test_acc_no_significance")
    lines = ["| significance lr | FGFF validation % (seed 0) | without its factors at prediction % | trained |",
             "|---|---|---|---|"]
    for sig_lr in runs.sweep.lrs[recipe]:
        row = siglr_sweep_row(recipe, lr, sig_lr)
        cell, without = runs.sweep_cells.get((row, "fgff"), Cell([])), no_sig.get((row, "fgff"), Cell([]))
        logged = log.get(_spec(runs.sweep.specs, row).key)
        value = percent(cell.mean, unit="") if cell.n else (cell.fmt() if cell.skipped else NOT_RUN)
        mark = "**" if runs.sweep.best.get(recipe) == sig_lr else ""
        trained = "—" if logged is None else (
            f"part \"{log.rows[logged['same_run_as']]['part']}\"'s run, the same training"
            if logged.get("same_run_as") in log.rows else f"here, {logged['wall_seconds']:.0f} s")
        lines.append(f"| {sig_lr:g} | {mark}{value}{mark} | {percent(without.mean, unit='') if without.n else '—'} "
                     f"| {trained} |")
    return lines


def _frozen_check(runs: SigLrRuns, log: RunLog, recipe: str) -> str:
    """Sig lr 0 against FF's own sweep run at FGFF's weight lr (part "best"), where that run exists."""
    lr = runs.weight_lr[recipe]
    if 0.0 not in runs.sweep.lrs[recipe]:
        return ""
    frozen = runs.sweep_cells.get((siglr_sweep_row(recipe, lr, 0.0), "fgff"), Cell([]))
    ff = runs.best.sweep_cells.get((best_sweep_row(recipe, lr), "ff"), Cell([]))
    if not ff.n:
        return f"FF's lr sweep in part \"best\" has no run at lr {lr:g}, so FGFF at significance lr 0 has no FF run " \
               "of the same training to be compared with."
    if not frozen.n:
        return f"FGFF at significance lr 0 is {NOT_RUN}; FF's sweep run at lr {lr:g} scored {percent(ff.mean)}."
    text = (f"FGFF at significance lr 0 against FF's own sweep run at the same lr {lr:g} (part \"best\", the same "
            f"validation split): {percent(frozen.mean)} and {percent(ff.mean)}, ")
    if frozen.mean == ff.mean:
        return text + "the same to the last digit."
    where = [f"{row_cpu(r)}, {r.get('threads', 'threads not recorded')} threads" for r in (
        log.get(_spec(runs.sweep.specs, siglr_sweep_row(recipe, lr, 0.0)).key),
        log.get(_spec(runs.best.sweep.specs, best_sweep_row(recipe, lr), "ff").key))]
    return text + f"{abs(frozen.mean - ff.mean) * 100:.2f} points apart (where each ran: {where[0]}; {where[1]})."


def _spec(specs: list[RunSpec], row: str, algo: str = "fgff") -> RunSpec:
    return next(s for s in specs if s.row == row and s.algo == algo)


Outcome = tuple[dict[int, float], dict[int, float], float]  # FF's and tuned FGFF's test accuracy by seed, the sig lr


def _recipe(budget: Budget, seeds: int, runs: SigLrRuns, log: RunLog, recipe: str) -> tuple[list[str], Outcome | None]:
    """The section of one recipe, and its outcome where FF and FGFF at the tuned sig lr both have test runs."""
    cfg = PRESETS[recipe].config("fgff")
    specs = [s for s in runs.best.sweep.specs if s.row.startswith(best_sweep_row(recipe))]
    if specs:  # as trained (the smoke budget swaps the dataset)
        cfg = specs[0].config
    title = DATASETS[cfg.dataset].title if cfg.dataset in DATASETS else cfg.dataset
    lines = [f"#### `{recipe}`: {title} {row_name(cfg.layers)}, {cfg.epochs} epochs, minibatches of "
             f"{cfg.batch_size}", ""]
    if recipe not in runs.weight_lr:
        return lines + [f"Waits for part \"best\"'s FGFF lr sweep on this recipe ({NOT_RUN}).", ""], None
    lr = runs.weight_lr[recipe]
    lines += [f"FGFF at weight lr {lr:g}, the lr part \"best\" chose for it.", "", *_sweep_table(runs, log, recipe), ""]
    frozen = _frozen_check(runs, log, recipe)
    lines += [frozen, ""] if frozen else []
    chosen = runs.sweep.best.get(recipe)
    if chosen is None:
        return lines + [f"**Verdict:** not yet: the sweep is not complete ({NOT_RUN} above).", ""], None
    best_rows = [r for s in runs.best.test if s.row == recipe and (r := log.get(s.key))]
    ff_lr = next((r["lr"] for r in best_rows if r["algo"] == "ff"), None)
    ff = _by_seed(runs.best.test, log, recipe, "ff")
    at_authors = _by_seed(runs.best.test, log, recipe, "fgff")
    authors = _authors_sig_lr((recipe,))
    tuned = {s.seed: r["test_acc"] for s in runs.test if s.row.startswith(f"{recipe} ") and (r := log.get(s.key))}
    tuned_no_sig = [r["test_acc_no_significance"] for s in runs.test
                    if s.row.startswith(f"{recipe} ") and (r := log.get(s.key))]
    edge = grid_edge(chosen, runs.sweep.lrs[recipe]).replace(" lr ", " significance lr ")
    lines += [f"Chosen on validation: significance lr **{chosen:g}**" + (f", {edge}." if edge else "."), "",
              f"| test runs | weight lr | significance lr | test % (mean ± std) | seeds | per seed "
              f"({', '.join(map(str, range(seeds)))}) | without its factors at prediction % |",
              "|---|---|---|---|---|---|---|"]
    for name, weight, sig, by_seed, without in [
            ("FF at its best (part \"best\")", "—" if ff_lr is None else f"{ff_lr:g}", "—", ff, "—"),
            ("FGFF at the authors' significance lr (part \"best\")", f"{lr:g}", authors, at_authors,
             Cell([r["test_acc_no_significance"] for r in best_rows if r["algo"] == "fgff"]).fmt()),
            ("FGFF at its tuned significance lr (here)", f"{lr:g}", f"{chosen:g}", tuned, Cell(tuned_no_sig).fmt())]:
        cell = Cell(list(by_seed.values()))
        lines.append(f"| {name} | {weight} | {sig} | {cell.fmt()} | {cell.n} | {_seeds_text(by_seed, seeds)} "
                     f"| {without if cell.n else '—'} |")
    lines.append("")
    if not (ff and tuned):
        return lines + ["**Verdict:** not yet: FF and FGFF at its tuned significance lr both need test runs.", ""], None
    n_ahead, n_pairs = seed_pairs(ff, tuned)
    lines += [f"**Verdict:** {difference_sentence('FF', list(ff.values()), 'FGFF', list(tuned.values()))} "
              f"Seed by seed (the same seed of each): FGFF ahead of FF in {n_ahead} of {n_pairs}."]
    if f"{chosen:g}" != authors and at_authors:
        lines.append(f"Against FGFF at the authors' {authors}: " + difference_sentence(
            f"FGFF at {authors}", list(at_authors.values()), f"FGFF at {chosen:g}", list(tuned.values())))
    return lines + [""], (ff, tuned, chosen)


def _wall_minutes(log: RunLog, recipe: str) -> str:
    """The median wall time of the logged part "best" runs of ``recipe``, in words ("" without any)."""
    walls = [r["wall_seconds"] for r in log.rows.values()
             if r["part"] == "best" and (r["row"] == recipe or r["row"].startswith(best_sweep_row(recipe)))]
    return f", median {statistics.median(walls) / 60:.0f} min per run in this log" if walls else ""


def _size(recipe: str) -> str:
    return row_name(PRESETS[recipe].config().layers)


def siglr_markdown(budget: Budget, seeds: int, runs: SigLrRuns, log: RunLog) -> str:
    """Per recipe: the sig-lr sweep (validation), the test runs of FF and of FGFF at the authors' and at its
    tuned sig lr, the verdict in words; then the answer over the recipes, what it does not show, provenance."""
    g, b = budget.siglr, budget.best
    authors = _authors_sig_lr(g.recipes)
    lines = ["### FGFF's significance lr swept: with its own tuned significance lr, does FGFF beat FF?", "",
             f"Budget `{budget.name}`. Part \"best\" chose each algorithm's weight lr on the strong recipes with "
             f"FGFF's significance lr fixed at the authors' {authors}. Here FGFF keeps the weight lr chosen for it "
             f"there and trains at significance lr {', '.join(f'{s:g}' for s in g.sig_lrs)}, on seed 0, scored on "
             f"the same {b.val_size} held-out training samples as part \"best\"'s sweep (validation accuracy, %; the "
             "chosen significance lr in bold, ties to the larger)"
             + (f", and where the best sits at the largest, twice that, up to {g.widenings} more"
                if g.widenings else "")
             + "; then every seed at the chosen significance lr, "
             "trained on the whole training set and tested on the whole test set. FF is part \"best\"'s: its test "
             "runs at its own chosen lr, not retrained. A run of the same training as one of part \"best\"'s "
             "(the authors' significance lr) takes that run's row. At significance lr 0 the factors stay at 1 and "
             "FGFF trains exactly as FF does (the same weights bit for bit on one thread: "
             "`tests/test_reproduce_siglr.py`), at FGFF's weight lr.", ""]
    outcomes: dict[str, Outcome] = {}
    for recipe in g.recipes:
        section, outcome = _recipe(budget, seeds, runs, log, recipe)
        lines += section
        if outcome is not None:
            outcomes[recipe] = outcome
    wanted = [*runs.sweep.specs, *runs.test]
    lines += [f"**With its own tuned significance lr, does FGFF beat FF?** {_answer(outcomes, authors)}"
              + missing_sentence(wanted, log), "",
              "What this does not show:", "",
              f"- Only the recipes {', '.join(f'`{r}` ({_size(r)})' for r in g.recipes)}, and {seeds} seeds: a "
              "difference "
              "smaller than the seed spread is not a difference.",
              "- The significance lr is chosen on one seed's validation accuracy; sig lrs whose validation "
              "accuracies differ by less than the seed spread are not told apart by this sweep.",
              "- The recipes were tuned for FF ([tuning-best.md](tuning-best.md)), and FGFF's weight lr was chosen "
              f"at the significance lr {authors}, not swept jointly with it."]
    others = [r for r in b.recipes if r not in g.recipes]
    if others:
        lines.append(f"- Not swept: {', '.join(f'`{r}` ({_size(r)}{_wall_minutes(log, r)})' for r in others)}, "
                     "part \"best\"'s other recipes; their FGFF runs keep the authors' significance lr.")
    rows = [r for s in wanted if (r := log.get(s.key))]
    trained = [r for r in rows if "same_run_as" not in r]
    taken = [r for r in rows if "same_run_as" in r]
    where = [f"CPUs of the {len(trained)} runs trained here: {cpu_counts(trained)}" if trained else "",
             f"of the {len(taken)} taken from part \"best\"'s trainings: {cpu_counts(taken)}" if taken else ""]
    if rows:
        lines += ["", " ".join(filter(None, [loss_sentence(rows), sig_lr_sentence(rows),
                                             "; ".join(filter(None, where)) + ".",
                                             seconds_sentence(trained) if trained else ""]))]
    return "\n".join(lines) + "\n"


def _answer(outcomes: dict[str, Outcome], authors: str) -> str:
    """The answer in words over the recipes with an outcome: means, seed pairs, whether tuning moved the sig lr."""
    if not outcomes:
        return "Not yet: no recipe has test runs of both."
    ahead = pairs = above = 0
    per = []
    for recipe, (ff, tuned, chosen) in outcomes.items():
        n_ahead, n_pairs = seed_pairs(ff, tuned)
        ahead, pairs = ahead + n_ahead, pairs + n_pairs
        fgff, base = Cell(list(tuned.values())), Cell(list(ff.values()))
        above += fgff.mean > base.mean
        per.append(f"`{recipe}` (significance lr {chosen:g}): FGFF {fgff.fmt()} % against FF {base.fmt()} %, "
                   f"ahead in {n_ahead} of {n_pairs} seeds")
    n = len(outcomes)
    text = (f"FGFF's mean is above FF's on {above} of {n} recipe{'s' if n > 1 else ''}, and FGFF is ahead of FF in "
            f"{ahead} of {pairs} seed pairs (same recipe, same seed), each at its own chosen lrs: {'; '.join(per)}.")
    if all(f"{chosen:g}" == authors for _, _, chosen in outcomes.values()):
        text += (f" The sweep chose the authors' {authors} on every recipe, so FGFF at its tuned significance lr is "
                 "part \"best\"'s FGFF.")
    return text + " Whether a mean difference exceeds the seed spread: each recipe's verdict above."
