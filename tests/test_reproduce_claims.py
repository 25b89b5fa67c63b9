"""docs/REPRODUCTION.md says what its run logs say: the generated tables are what the committed logs give today,
and each hand-written number that issue 37 (item 1) found drifting is recomputed here from the log by its own
query. A claim is a sentence fragment with ``{}`` where the log's value goes; the doc must contain it with that
value (whitespace-normalised, so line breaks do not matter)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from fgff_core.reproduce import PARTS, reproduce
from fgff_core.reproduce.provenance import NOT_RECORDED, row_cpu, study_ff_choice
from fgff_core.reproduce.report import refresh_includes

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "REPRODUCTION.md"
OUT = ROOT / "docs" / "reproduction"
Row = dict[str, Any]


class Logs(NamedTuple):
    quick: list[Row]
    full: list[Row]


def _load(budget: str) -> list[Row]:
    return [json.loads(line) for line in (OUT / f"runs-{budget}.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def logs() -> Logs:
    return Logs(_load("quick"), _load("full"))


def _flat(text: str) -> str:
    return " ".join(text.split())


def _pct(x: float) -> str:
    return f"{x * 100:.2f}"


def _mean_std(values: list[float]) -> str:
    return f"{statistics.fmean(values) * 100:.2f} ± {statistics.stdev(values) * 100:.2f}"


def _span(lo: float, hi: float, digits: int) -> str:
    a, b = f"{lo:.{digits}f}", f"{hi:.{digits}f}"
    return a if a == b else f"{a}-{b}"


def _start(row: Row) -> dt.datetime:
    return dt.datetime.fromisoformat(row["finished_at"]) - dt.timedelta(seconds=row["wall_seconds"])


def _end(row: Row) -> dt.datetime:
    return dt.datetime.fromisoformat(row["finished_at"])


# -- the log queries ---------------------------------------------------------------------------------------------

def _cifar(rows: list[Row], algo: str, epochs: int) -> list[Row]:
    return sorted((r for r in rows if r["part"] == "3" and r["algo"] == algo and r["epochs"] == epochs),
                  key=lambda r: r["seed"])


def cifar_ff_range(L: Logs) -> str:
    accs = [r["test_acc"] for r in _cifar(L.full, "ff", 200)]
    return f"{_pct(min(accs))}-{_pct(max(accs))}"


def cifar_fgff_nearest_chance(L: Logs) -> str:
    return _pct(min(r["test_acc"] for r in _cifar(L.full, "fgff", 200)))


def cifar_fgff_without_factors(L: Logs) -> str:
    return _pct(statistics.fmean(r["test_acc_no_significance"] for r in _cifar(L.full, "fgff", 200)))


def cifar_quick_ff_lead(L: Logs) -> str:
    ff = [r["test_acc"] for r in _cifar(L.quick, "ff", 1200)]
    fgff = [r["test_acc"] for r in _cifar(L.quick, "fgff", 1200)]
    lead = (statistics.fmean(ff) - statistics.fmean(fgff)) * 100
    return f"{lead:.1f} points on the test set ({_mean_std(ff)} against {_mean_std(fgff)} %)"


def _best_tests(L: Logs) -> dict[str, dict[str, dict[int, Row]]]:
    out: dict[str, dict[str, dict[int, Row]]] = {}
    for r in L.full:
        if r["part"] == "best" and r["test_on"] == "test":
            out.setdefault(r["row"], {}).setdefault(r["algo"], {})[r["seed"]] = r
    return out


def fgff_seed_pairs(L: Logs) -> str:
    ahead = pairs = 0
    for by_algo in _best_tests(L).values():
        for seed, ff in by_algo["ff"].items():
            pairs += 1
            ahead += by_algo["fgff"][seed]["test_acc"] > ff["test_acc"]
    return f"{ahead} of the {pairs}"


def _headline(L: Logs, recipe: str) -> str:
    runs = [r for _, r in sorted(_best_tests(L)[recipe]["ff"].items())]
    lrs = {r["config"]["lr"] for r in runs}
    assert len(lrs) == 1
    return f"**{_mean_std([r['test_acc'] for r in runs])} %** ({', '.join(_pct(r['test_acc']) for r in runs)}) at " \
           f"lr {lrs.pop():g}"


def headline_mnist(L: Logs) -> str:
    return _headline(L, "ff-best-mnist")


def headline_fashion(L: Logs) -> str:
    return _headline(L, "ff-best-fashion")


def headline_mnist_has_shifts(L: Logs) -> str:
    shifts = {r["config"].get("augment_shift") for r in _best_tests(L)["ff-best-mnist"]["ff"].values()}
    assert len(shifts) == 1
    return f"random shifts of up to {shifts.pop()} pixels"


def mnist_sweep_tie(L: Logs) -> str:
    val = {r["config"]["lr"]: r["test_acc"] for r in L.full if r["part"] == "best" and r["algo"] == "ff"
           and r["row"].startswith("ff-best-mnist sweep")}
    best = max(val.values())
    tied = sorted(lr for lr, v in val.items() if _pct(v) == _pct(best))
    assert len(tied) == 2, tied
    return f"chose {tied[1]:g} (tied with {tied[0]:g} at {_pct(best)} % validation"


def _curve200(L: Logs) -> list[Row]:
    return sorted((r for r in L.full
                   if r["part"] == "study" and r["row"] == "curve epochs=200" and r["algo"] == "fgff"),
                  key=lambda r: r["seed"])


def determinism_full_batch(L: Logs) -> str:
    curve = _curve200(L)
    table = {r["seed"]: r for r in L.full if r["part"] == "1" and r["row"] == "2x500" and r["algo"] == "fgff"
             and r["config"]["train_subset_order"] == "shuffled"}
    for r in curve:  # the claim: the same to the last digit, with and without the factors
        assert (r["test_acc"], r["test_acc_no_significance"]) == \
            (table[r["seed"]]["test_acc"], table[r["seed"]]["test_acc_no_significance"])
    assert {row_cpu(table[0]), row_cpu(table[1])} == {"AVX-512 EPYC", "Zen 3 EPYC"}  # across the CPU change
    return " / ".join(_pct(r["test_acc"]) for r in curve) + " %; " + \
        " / ".join(_pct(r["test_acc_no_significance"]) for r in curve) + " %"


def _same_config_pairs(L: Logs, recipe: str) -> list[tuple[Row, Row]]:
    def sig(r: Row) -> str:
        return json.dumps({k: v for k, v in r["config"].items() if k != "data_dir"}, sort_keys=True) + r["test_on"]
    full = {sig(r): r for r in L.full if r["part"] == "best" and r["row"].startswith(recipe)}
    return [(r, full[sig(r)]) for r in L.quick if r["part"] == "best" and r["row"].startswith(recipe)
            and sig(r) in full]


def fashion_quick_moved(L: Logs) -> str:
    pairs = _same_config_pairs(L, "ff-best-fashion-quick")
    diffs = [abs(a["test_acc"] - b["test_acc"]) * 100 for a, b in pairs]
    assert all(row_cpu(a) == "AVX-512 EPYC" for a, _ in pairs)
    return f"the {len(pairs)} runs of `ff-best-fashion-quick` made on the AVX-512 CPU before the fused kernel and " \
           f"before hard negatives were scored only for the samples that take one (2026-12-02 " \
           f"{min(_end(a) for a, _ in pairs):%H:%M}-{max(_end(a) for a, _ in pairs):%H:%M} UTC) and made again " \
           f"at `full` on 2026-12-06 with the same config differ by {min(diffs):.2f}-{max(diffs):.2f} points each"


def mnist_quick_same(L: Logs) -> str:
    pairs = [(a, b) for a, b in _same_config_pairs(L, "ff-best-mnist-quick") if row_cpu(a) == "Zen 3 EPYC"]
    assert all(a["test_acc"] == b["test_acc"] for a, b in pairs)
    return f"the {len(pairs)} runs of `ff-best-mnist-quick` made after those changes (Zen 3, " \
           f"{min(_end(a) for a, _ in pairs):%H:%M}-{max(_end(a) for a, _ in pairs):%H:%M} UTC) came out the same"


def _rates(L: Logs, row: str, algos: tuple[str, ...]) -> list[float]:
    """Each Table I/II cell's median over seeds of seconds per (layer-)epoch per 1000 training samples."""
    return [statistics.median(r["epoch_seconds_median"] / r["n_train"] * 1000 for r in L.quick
                              if r["part"] == part and r["row"] == row and r["algo"] == algo)
            for part in ("1", "2") for algo in algos]


def rate(row: str, digits: int, algos: tuple[str, ...] = ("ff", "fgff")) -> Callable[[Logs], str]:
    return lambda L: _span(min(_rates(L, row, algos)), max(_rates(L, row, algos)), digits)


def _first_table1(L: Logs) -> list[Row]:
    return [r for r in L.full if r["part"] == "1" and r.get("note")]  # the random-50,000 runs


def first_runs_window(L: Logs) -> str:
    day1 = [r for r in _first_table1(L) if r["finished_at"] < "2026-12-03"]
    return f"{min(map(_start, day1)):%H:%M}-{max(map(_end, day1)):%H:%M}"


def other_runs(L: Logs) -> list[Row]:
    return [r for r in _first_table1(L) if r["finished_at"] >= "2026-12-03"]


def other_runs_window(L: Logs) -> str:
    runs = other_runs(L)
    return f"other {len(runs)} runs on 2026-12-03 {min(map(_start, runs)):%H:%M}-{max(map(_end, runs)):%H:%M} UTC"


def other_runs_2x1000(L: Logs) -> str:
    walls = [r["wall_seconds"] for r in other_runs(L) if r["row"] == "2x1000" and r["algo"] != "bp"]
    return f"FF and FGFF {min(walls):.0f}-{max(walls):.0f}"


def other_runs_hours(L: Logs) -> str:
    runs = other_runs(L)
    span = (max(map(_end, runs)) - min(map(_start, runs))).total_seconds() / 3600
    return f"{span:.1f} h of wall time ({sum(r['wall_seconds'] for r in runs) / 3600:.1f} h of runs"


def curve800(L: Logs) -> str:
    walls = [r["wall_seconds"] for r in L.full if r["part"] == "study" and r["row"] == "curve epochs=800"
             and not r.get("same_run_as")]
    words = ["none", "one", "two", "three", "four", "five", "six"]
    return f"800 epochs: {min(walls):.0f}-{max(walls):.0f} s (the curve's {words[len(walls)]})"


def cifar_walls(L: Logs) -> str:
    ff = [r["wall_seconds"] for r in _cifar(L.full, "ff", 200)]
    fgff = [r["wall_seconds"] for r in _cifar(L.full, "fgff", 200)]
    return f"FF {min(ff):.0f}-{max(ff):.0f} s, FGFF {min(fgff):.0f}-{max(fgff):.0f} s"


def cifar_minutes(L: Logs) -> str:
    walls = [r["wall_seconds"] for algo in ("ff", "fgff") for r in _cifar(L.full, algo, 200)]
    return f"{min(walls) / 60:.0f}-{max(walls) / 60:.0f} minutes"


def cifar_1200_hours(L: Logs) -> str:
    walls = [r["wall_seconds"] for algo in ("ff", "fgff") for r in _cifar(L.full, algo, 200)]
    return f"6x the 200-epoch runs' {min(walls):.0f}-{max(walls):.0f} s: " \
           f"{6 * min(walls) / 3600:.1f}-{6 * max(walls) / 3600:.1f} h"


def cifar_1200_hours_rounded(L: Logs) -> str:
    walls = [r["wall_seconds"] for algo in ("ff", "fgff") for r in _cifar(L.full, algo, 200)]
    return f"{6 * statistics.median(walls) / 3600:.0f}"


def ff_lr_swept_where(L: Logs) -> str:
    full, quick = study_ff_choice(L.full), study_ff_choice(L.quick)
    assert full and quick and full.dataset == quick.dataset == "mnist"
    return f"{full.size} at `full` and {quick.size}"


def cpu_models(L: Logs) -> str:
    cpus = sorted({row_cpu(r) for r in L.quick + L.full} - {NOT_RECORDED})
    return {2: "**two**", 3: "**three**"}.get(len(cpus), str(len(cpus)))


def no_hinge(L: Logs) -> str:
    assert all(r["config"].get("loss") != "hinge" for r in L.quick + L.full)
    return "was never trained"


def sig_lr_fixed(L: Logs) -> str:
    lrs = {r["config"]["sig_lr"] for r in L.quick + L.full if r["algo"] == "fgff" and r["part"] == "best"}
    assert len(lrs) == 1
    return f"{lrs.pop():g} in part `best`"


def _siglr_sweep(L: Logs, recipe: str) -> dict[float, float]:
    """sig lr -> FGFF's validation accuracy in part siglr's sweep of ``recipe`` (seed 0)."""
    return {r["config"]["sig_lr"]: r["test_acc"] for r in L.full
            if r["part"] == "siglr" and r["test_on"] == "validation" and r["row"].startswith(recipe + " ")}


def siglr_chosen(L: Logs) -> str:
    chosen = {max((acc, lr) for lr, acc in _siglr_sweep(L, recipe).items())[1]
              for recipe in ("ff-best-mnist-quick", "ff-best-fashion-quick")}
    assert len(chosen) == 1
    return f"{chosen.pop():g}"


def _siglr_path(recipe: str) -> Callable[[Logs], str]:
    def path(L: Logs) -> str:
        sweep = _siglr_sweep(L, recipe)
        best = max((acc, lr) for lr, acc in sweep.items())[1]
        top = max(sweep)
        return f"{_pct(sweep[0.0])} % at 0 to {_pct(sweep[best])} % at {best:g} and falls to {_pct(sweep[top])} % " \
               f"at {top:g}"
    return path


def siglr_seed_pairs(L: Logs) -> str:
    tuned = {(r["row"].split()[0], r["seed"]): r["test_acc"] for r in L.full
             if r["part"] == "siglr" and r["test_on"] == "test"}
    ff = {(recipe, seed): r["test_acc"] for recipe, by_algo in _best_tests(L).items()
          for seed, r in by_algo["ff"].items() if (recipe, seed) in tuned}
    return f"{sum(tuned[k] > v for k, v in ff.items())} of the {len(ff)}"


def _siglr_trained(L: Logs) -> list[Row]:
    return [r for r in L.full if r["part"] == "siglr" and "same_run_as" not in r]


def siglr_walls(L: Logs) -> str:
    walls = [r["wall_seconds"] for r in _siglr_trained(L)]
    return f"{min(walls):.0f}-{max(walls):.0f} s per run"


def siglr_loads(L: Logs) -> str:
    loads = [r["load_avg"] for r in _siglr_trained(L)]
    return _span(min(loads), max(loads), 1)


class Claim(NamedTuple):
    fragment: str  # doc text around the number, "{}" where the log's value goes
    value: Callable[[Logs], str]


CLAIMS = [
    Claim("FF is at chance in every seed ({} %)", cifar_ff_range),
    Claim("FGFF is near chance in one seed of three ({} %)", cifar_fgff_nearest_chance),
    Claim("FGFF without its factors is at chance too ({} %)", cifar_fgff_without_factors),
    Claim("FF leads FGFF by {}", cifar_quick_ff_lead),
    Claim("seed by seed FGFF leads in {} seed pairs", fgff_seed_pairs),
    Claim("`ff-best-mnist` {}, **with", headline_mnist),
    Claim("**with {}** (training augmentation", headline_mnist_has_shifts),
    Claim("`ff-best-fashion` {}, no augmentation", headline_fashion),
    Claim("The sweep on 10,000 held-out training images {}", mnist_sweep_tie),
    Claim("with and without the factors ({}). **The minibatch", determinism_full_batch),
    Claim("**The minibatch recipes did move**: {}, while", fashion_quick_moved),
    Claim("while {} to the last digit on 2026-12-06", mnist_quick_same),
    Claim("| 2x50 | quick log, Tables I-II (10000 samples) | 1 thread, three `reproduce` side by side | {} |",
          rate("2x50", 4)),
    Claim("| 2x500 | quick log (5000 samples) | same | {} |", rate("2x500", 3)),
    Claim("| 2x1000 | quick log (2000 samples) | same | {} |", rate("2x1000", 3)),
    Claim("BP, per epoch per 1000 samples (quick log): {} (2x50)", rate("2x50", 3, ("bp",))),
    Claim("(2x50), {} (2x500)", rate("2x500", 3, ("bp",))),
    Claim("(2x500), {} (2x1000)", rate("2x1000", 2, ("bp",))),
    Claim("and of 2x1000 BP on 2026-12-02 ({} UTC, one thread", first_runs_window),
    Claim("the {} on the Zen 3 CPU", other_runs_window),
    Claim("2x1000 BP 159-328, {}. The 20 runs", other_runs_2x1000),
    Claim("The 20 runs took {}, two side by side)", other_runs_hours),
    Claim("200-epoch run (30 sweep runs, two side by side); {} |", curve800),
    Claim("(45-55 minutes per run as measured: {})", cifar_walls),
    Claim("the 200-epoch runs then took {}, so 300 might", cifar_minutes),
    Claim("**about 5 h per run** ({})", cifar_1200_hours),
    Claim("so 1200 would take about {} hours per run there", cifar_1200_hours_rounded),  # the budget's words
    Claim("runs then took {}, so 1200 would take", cifar_minutes),
    Claim("| Machine | {} 2-core x86_64 CPUs", cpu_models),
    Claim("FF's lr was swept only in the study, on MNIST {} at `quick`", ff_lr_swept_where),
    Claim("**the paper's hinge loss, eq. (1), {}** |", no_hinge),
    Claim("significance lr fixed at the authors' {}", sig_lr_fixed),
    Claim("The validation sweep chose the authors' {} on both recipes", siglr_chosen),
    Claim("on MNIST FGFF's validation accuracy goes from {};", _siglr_path("ff-best-mnist-quick")),
    Claim("on Fashion-MNIST it goes from {}. So", _siglr_path("ff-best-fashion-quick")),
    Claim("ahead in {} seed pairs (the table below)", siglr_seed_pairs),
    Claim("load average {} from other work: ", siglr_loads),
    Claim("from other work: {} (part `best`'s quick runs", siglr_walls),
]


def check_claims(doc: str, logs: Logs) -> list[str]:
    """Each claim the doc does not make with the log's value, as a line naming both."""
    text = _flat(doc)
    return [f"{c.value.__name__ if hasattr(c.value, '__name__') else c.fragment}: the log gives "
            f"{_flat(c.fragment.format(c.value(logs)))!r}, not in the doc"
            for c in CLAIMS if _flat(c.fragment.format(c.value(logs))) not in text]


def test_every_numeric_claim_of_issue_37_item_1_is_what_the_log_gives(logs):
    assert check_claims(DOC.read_text(), logs) == []


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.fragment[:40])
def test_a_changed_number_in_the_doc_is_caught(claim, logs):
    """The check can fail: raise the claim's first digit by one in a copy of the doc, and it says so."""
    right = _flat(claim.fragment.format(claim.value(logs)))
    value = claim.value(logs)
    digit = next((i for i, ch in enumerate(value) if ch.isdigit()), None)
    if digit is None:  # a word, not a number: negate it instead
        wrong_value = "was trained"
    else:
        wrong_value = value[:digit] + str((int(value[digit]) + 1) % 10) + value[digit + 1:]
    wrong = _flat(claim.fragment.format(wrong_value))
    doc = _flat(DOC.read_text()).replace(right, wrong)
    assert right not in doc
    assert len(check_claims(doc, logs)) == 1


def test_the_generated_tables_and_their_copies_in_the_doc_are_what_the_committed_logs_give(tmp_path):
    """Regenerate every table from copies of the committed logs (no training) and compare: the files in
    docs/reproduction/ (less their generated-by line) and the include blocks of REPRODUCTION.md."""
    out = tmp_path / "reproduction"
    out.mkdir()
    for budget in ("quick", "full"):
        shutil.copy(OUT / f"runs-{budget}.jsonl", out)
        for pruning_log in OUT.glob(f"pruning-{budget}.jsonl"):  # part pruning's own log
            shutil.copy(pruning_log, out)
        reproduce(list(PARTS), budget, 3, None, out, device="cpu", say=lambda *_: None, train=False)
    for made in sorted(out.glob("*.md")):
        committed = (OUT / made.name).read_text().split("\n", 1)[1]
        assert made.read_text().split("\n", 1)[1] == committed, f"{made.name} differs from what its log gives"
    shutil.copy(OUT / "table1-full-random50k.md", out)  # made once from accuracy_table over other specs
    doc = tmp_path / "REPRODUCTION.md"
    shutil.copy(DOC, doc)
    refresh_includes(doc)
    assert doc.read_text() == DOC.read_text(), "an include block of REPRODUCTION.md is not its generated file"
