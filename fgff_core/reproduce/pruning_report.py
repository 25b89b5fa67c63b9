"""Markdown of part "pruning" (``pruning-<budget>.md``), read from its log ``pruning-<budget>.jsonl`` only.

Per recipe and algorithm: a table of the removal orders with each curve's area and the neurons it can
remove for at most 1 point of accuracy (mean ± standard deviation over seeds), a verdict sentence (is s a
better order than activity, weight norm and random: the difference of the means against the spread over
seeds), the runs that are missing, and what the results do not show. Every number comes from a log row;
a run without rows shows as missing. Torch-free, so the tests import it without the engine.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..analysis.ablation_result import ORDER_TEXT, REMOVAL_TEXT, RULE_TEXT, TOLERANCE
from ..data.registry import DATASETS
from ..format import MISSING, duration, percent
from .pruning import PruningRun

Row = dict[str, Any]
RIVALS = ("activity", "weight_norm", "random")  # what s is compared with
ALGO_TEXT = {"ff": "FF", "fgff": "FGFF"}


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _cell(values: Sequence[float], pct: bool) -> str:
    """"97.12 ± 0.30" (percent) or "433 ± 29" (neurons), "n/a" for the spread of one seed; missing without any."""
    if not values:
        return MISSING
    mean, std = _mean_std(values)
    if pct:
        return f"{percent(mean, unit='')} ± {'n/a' if std is None else percent(std, unit='')}"
    return f"{mean:.0f} ± {'n/a' if std is None else f'{std:.0f}'}"


def compare(s_values: Mapping[int, float], other: Mapping[int, float]) -> str:
    """"better", "worse" or "level" (s against another order, higher is better), or "one seed" / "no runs":
    s is better (worse) where the difference of the means exceeds the larger of the two standard deviations
    over seeds; otherwise the two are level within the spread. Only seeds that both have are compared."""
    seeds = sorted(set(s_values) & set(other))
    if not seeds:
        return "no runs"
    if len(seeds) < 2:
        return "one seed"
    a, b = [s_values[k] for k in seeds], [other[k] for k in seeds]
    diff = statistics.fmean(a) - statistics.fmean(b)
    spread = max(statistics.stdev(a), statistics.stdev(b))
    return "better" if diff > spread else "worse" if diff < -spread else "level"


def _by_seed(rows: Iterable[Row], order: str, removal: str, rule: str, field: str) -> dict[int, float]:
    return {int(r["seed"]): float(r[field]) for r in rows
            if (r["order"], r["removal"], r["rule"]) == (order, removal, rule)}


def _diff_text(s_values: Mapping[int, float], other: Mapping[int, float], pct: bool) -> str:
    seeds = sorted(set(s_values) & set(other))
    diff = statistics.fmean(s_values[k] for k in seeds) - statistics.fmean(other[k] for k in seeds)
    ahead = sum(s_values[k] > other[k] for k in seeds)
    size = f"{100 * diff:+.2f} points" if pct else f"{diff:+.0f} neurons"
    return f"{size}, s ahead in {ahead} of {len(seeds)} seeds"


def verdict(rows: list[Row], removal: str, rule: str) -> str:
    """One sentence: by area and by neurons removable, is s a better order than each rival (``compare``)?"""
    parts = []
    for field, what, pct in (("area", "by area", True), ("removable", "by neurons removable for 1 point", False)):
        s_values = _by_seed(rows, "s", removal, rule, field)
        groups: dict[str, list[str]] = {}
        for rival in RIVALS:
            other = _by_seed(rows, rival, removal, rule, field)
            outcome = compare(s_values, other)
            text = ORDER_TEXT[rival].removeprefix("by ")
            if outcome != "no runs":
                text += f" ({_diff_text(s_values, other, pct)})"
            groups.setdefault(outcome, []).append(text)
        words = {"better": "s is a better order than", "worse": "s is a worse order than",
                 "level": "s is level, within the spread over seeds, with",
                 "one seed": "one seed only (no spread to compare against) for",
                 "no runs": "no runs to compare for"}
        parts.append(f"{what}, " + "; ".join(f"{words[o]} {', '.join(t)}" for o, t in groups.items()))
    head = f"{REMOVAL_TEXT[removal].capitalize()}, {RULE_TEXT[rule]}: "
    return head + "; ".join(parts) + "."


def _table(rows: list[Row], rule: str, removals: Sequence[str], orders: Sequence[str]) -> list[str]:
    head = " | ".join(f"{REMOVAL_TEXT[r]}: area % | {REMOVAL_TEXT[r]}: removable for 1 point" for r in removals)
    lines = [f"| order ({RULE_TEXT[rule]}) | {head} |", "|---" * (1 + 2 * len(removals)) + "|"]
    for order in orders:
        cells = []
        for removal in removals:
            chosen = [r for r in rows if (r["order"], r["removal"], r["rule"]) == (order, removal, rule)]
            n = {r["n_neurons"] for r in chosen}
            cells += [_cell([r["area"] for r in chosen], True),
                      _cell([r["removable"] for r in chosen], False) + (f" of {n.pop()}" if len(n) == 1 else "")]
        draws = {r["draws"] for r in rows if r["order"] == order}
        name = ORDER_TEXT[order] + (f" (mean curve of {draws.pop()} draws)" if order == "random" and draws else "")
        lines.append(f"| {name.replace('|', chr(92) + '|')} | " + " | ".join(cells) + " |")  # |s| in a table
    return lines


def _fractions(runs: list[PruningRun]) -> str:
    """The settings' fractions kept in words: "100 % down to 5 % in steps of 5 %" or the list."""
    fractions = sorted({f for r in runs for f in r.settings.fractions}, reverse=True)
    steps = {round(a - b, 6) for a, b in zip(fractions, fractions[1:])}
    if len(steps) == 1:
        return f"{fractions[0]:.0%} down to {fractions[-1]:.0%} in steps of {steps.pop():.0%}".replace("%", " %")
    return ", ".join(f"{f:.0%}".replace("%", " %") for f in fractions)


def _summary(rows: list[Row], runs: list[PruningRun]) -> list[str]:
    """The pruning table in one: per recipe, algorithm and kind of removal (the network's own rule, with its
    factors), the area and the neurons removable of s and its three rivals, mean ± std over seeds."""
    orders = ("s", *RIVALS)
    names = [ORDER_TEXT[o].removeprefix("by ").removesuffix(" (pos - neg)") for o in orders]
    lines = ["| recipe | algorithm | removal | seeds | " + " | ".join(f"area %: {n}" for n in names) + " | "
             + " | ".join(f"removable: {n}" for n in names) + " |", "|---" * (4 + 2 * len(orders)) + "|"]
    for recipe, algo in dict.fromkeys((r.recipe, r.algo) for r in runs):
        got = [r for r in rows if (r["recipe"], r["algo"], r["rule"]) == (recipe, algo, "with_factors")]
        expected = sum((r.recipe, r.algo) == (recipe, algo) for r in runs)
        for removal in dict.fromkeys(x for r in runs for x in r.settings.removals):
            chosen = [r for r in got if r["removal"] == removal]
            n = len({r["run_key"] for r in chosen})
            cells = [_cell([r["area"] for r in chosen if r["order"] == o], True) for o in orders]
            cells += [_cell([r["removable"] for r in chosen if r["order"] == o], False) for o in orders]
            lines.append(f"| `{recipe}` | {ALGO_TEXT.get(algo, algo)} | {REMOVAL_TEXT[removal]} | {n} of {expected} | "
                         + " | ".join(cells) + " |")
    return lines


def _recipe_title(recipe: str, rows: list[Row], runs: list[PruningRun]) -> str:
    row = rows[0] if rows else None
    source = next((r.source for r in runs if r.recipe == recipe and r.spec is not None), "no run")
    if row is None:
        return f"#### `{recipe}` ({source})"
    layers = "x".join(map(str, row["layers"])) if len(set(row["layers"])) > 1 else \
        f"{len(row['layers'])}x{row['layers'][0]}"
    dataset = DATASETS[row["dataset"]].title if row["dataset"] in DATASETS else row["dataset"]
    return (f"#### `{recipe}`: {dataset} {layers}, {row['epochs']} epochs per layer, {row['n_train']} "
            f"training images, tested on {row['n_test']} ({source.split(' at lr')[0]})")


def _provenance(rows: list[Row]) -> str:
    runs = {r["run_key"]: r for r in rows}.values()
    if not runs:
        return "No run has finished yet."
    cpus = sorted({str(r.get("cpu")) for r in runs})
    loads = [x for r in runs for x in (r["load_start"][0], r["load_end"][0])]
    train = statistics.median(r["train_seconds"] for r in runs)
    ablate = statistics.median(r["ablation_seconds"] for r in runs)
    finished = sorted(r["finished_at"] for r in runs)
    threads = sorted({r.get("threads") for r in runs})
    return (f"Machine: {'; '.join(cpus)}, {', '.join(map(str, threads))} torch thread(s), device "
            f"{', '.join(sorted({r['device'] for r in runs}))}, shared with other work and run under `nice -n 10`: "
            f"the 1-minute load average at the start and the end of the {len(runs)} runs was "
            f"{min(loads):.1f}-{max(loads):.1f} (2 cores), so the seconds are not timings of the method. Median "
            f"per run: training {duration(train)}, all curves {duration(ablate)}. Finished {finished[0]} to "
            f"{finished[-1]}.")


def _reference(rows: list[Row]) -> str:
    """How the retrained networks compare with the same configs' runs in the tables' log."""
    runs = [r for r in {r["run_key"]: r for r in rows}.values() if r.get("reference_test_acc") is not None]
    if not runs:
        return ""
    gaps = [abs(r["train_test_acc"] - r["reference_test_acc"]) for r in runs]
    return (f"Each network is trained again from its config (no weights are stored); {len(runs)} of them have a "
            f"run with the same config in `runs-{rows[0]['budget']}.jsonl`, whose logged test accuracy differs "
            f"from the retrained one's by at most {100 * max(gaps):.2f} points (median "
            f"{100 * statistics.median(gaps):.2f}).")


def _trained(rows: list[Row]) -> str:
    """What each recipe trained, from its rows: "ff-best-mnist-quick 15 epochs per layer on 60000 images"."""
    seen = {(r["recipe"], r["epochs"], r["n_train"]) for r in rows}
    return "; ".join(f"`{recipe}` {epochs} epochs per layer on {n} training images"
                     for recipe, epochs, n in sorted(seen)) or "no run finished"


def _not_shown(rows: list[Row], budget: Any, seeds: int, runs: list[PruningRun]) -> str:
    sig = sorted({r["sig_lr"] for r in rows if r.get("sig_lr") is not None})
    return ("**What these results do not show.** "
            f"Budget `{budget.name}` only ({_trained(rows)}), so networks trained longer or on more data may prune "
            f"differently. {seeds} seed{'s' if seeds != 1 else ''} per cell: the ± is a standard deviation over at "
            f"most {seeds} network{'s' if seeds != 1 else ''}, a rough spread, "
            "and \"better\" means only that the difference of the means exceeds the larger of the two spreads, not a "
            "significance test. The strong recipes were tuned for FF (docs/reproduction/tuning-best.md); FGFF "
            "runs them at its own swept weight lr, with the significance lr fixed at "
            f"{', '.join(f'{x:g}' for x in sig) or 'its preset value'}, never swept, so a tuned FGFF may learn "
            "factors that order neurons better or worse. FF trains no factors (every s is 1): its s and |s| orders "
            "remove neurons in index order, an arbitrary fixed order, so FF's s rows are a control, not evidence "
            "about significance. Nothing is retrained after a removal. Only the whole network is pruned here: one "
            "order over both layers compares the scores of layer 1's neurons with layer 2's, so an order can empty "
            "one layer before it touches the other (`--scopes network,layer` logs per-layer curves too; `python -m "
            "fgff_core ablate` draws them for a stored run). The fractions kept are "
            f"{_fractions(runs)}, so \"removable\" counts neurons at that resolution, and a random order's "
            "area and removable count are those of its mean curve over the draws. The curves and the activity "
            "order are measured on the test set itself (no held-out split), which is fine for comparing orders "
            "but is not an estimate of a pruned network's accuracy on new data.")


def pruning_markdown(budget: Any, runs: list[PruningRun], rows: list[Row], missing: Mapping[str, str]) -> str:
    """The part's Markdown: per recipe and algorithm the orders' table, the verdicts and the missing runs."""
    wanted = {r.key for r in runs}
    # rows of other settings or configs are not this table's, nor the per-layer curves (scope "layer N")
    rows = [r for r in rows if r["run_key"] in wanted and r.get("scope", "network") == "network"]
    seeds = len({r.seed for r in runs})
    lines = [f"### Pruning: is s a better removal order than activity, weight norm or random? (budget "
             f"`{budget.name}`)", "",
             "Each network is trained as its part trains it (the strong recipes: part best's test runs, each "
             "algorithm at the lr part best chose; the paper presets: Tables I and II's runs), then neurons are "
             "removed from the whole network, least useful first by each order, and the test accuracy measured "
             f"at each fraction kept ({_fractions(runs)}). *Goodness only*: the neuron's term leaves the goodness "
             "sum, the next layer's input is unchanged; *silenced*: its output is zero, so the next layer sees the "
             "change. Area: the curve's mean accuracy over the fraction kept (100 % for a network that loses "
             f"nothing). Removable: neurons removed before the accuracy first falls more than "
             f"{100 * TOLERANCE:.0f} point below the unpruned network's. Mean ± standard deviation over seeds.", "",
             _provenance(rows)]
    lines += ["", "The pruning table (prediction with the factors, the network's own rule; FF's s is its index "
              "order, a control; every column is detailed per recipe below):", "", *_summary(rows, runs)]
    reference = _reference(rows)
    if reference:
        lines += ["", reference]
    for recipe in dict.fromkeys(r.recipe for r in runs):
        recipe_rows = [r for r in rows if r["recipe"] == recipe]
        lines += ["", _recipe_title(recipe, recipe_rows, runs)]
        for algo in dict.fromkeys(r.algo for r in runs if r.recipe == recipe):
            expected = [r for r in runs if (r.recipe, r.algo) == (recipe, algo)]
            got = [r for r in recipe_rows if r["algo"] == algo]
            done = sorted({int(r["seed"]) for r in got})
            lost = [r for r in expected if not any(g["run_key"] == r.key for g in got)]
            head = f"**{ALGO_TEXT.get(algo, algo)}**: {len(done)} of {len(expected)} seeds" + (
                f" (seed{'s' if len(done) > 1 else ''} {', '.join(map(str, done))})" if done else "")
            if lost:
                head += "; missing: " + ", ".join(
                    f"seed {r.seed} ({missing.get(r.key) or r.reason or 'not run yet'})" for r in lost)
            lines += ["", head + "."]
            if not got:
                continue
            unpruned = {r["run_key"]: r["unpruned_acc"] for r in got if r["rule"] == "with_factors"}
            lr = sorted({r["lr"] for r in got})
            lines[-1] += (f" Unpruned test accuracy {_cell(list(unpruned.values()), True)} % (lr "
                          f"{', '.join(f'{x:g}' for x in lr)}).")
            settings = got[0]["settings"]
            orders = [o for o in settings["orders"]]
            for rule in settings["rules"] if algo == "fgff" else ["with_factors"]:
                lines += ["", *_table(got, rule, settings["removals"], orders)]
            lines.append("")
            for removal in settings["removals"]:
                lines.append(f"- {verdict(got, removal, 'with_factors')}")
            if any(r.get("sig_lr") is None for r in got):
                lines.append(f"- {ALGO_TEXT.get(algo, algo)} trains no factors (every s is 1): its s order is the "
                             "neurons' index order, which removes every neuron of layer 1 before any of layer 2 (so "
                             "silencing half the network silences layer 1 whole), a control rather than a test of "
                             "significance.")
    lines += ["", _not_shown(rows, budget, seeds, runs), ""]
    return "\n".join(lines)
