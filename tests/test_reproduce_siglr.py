"""Part "siglr": FGFF's significance lr swept at FGFF's own weight lr of part "best", then seeds at the best one.

The report is checked on a small synthetic log (no training); sig lr 0 is checked to train exactly FF under a
strong recipe's settings; the whole part runs once on the smoke budget (slow).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch

from fgff_core import reproduce as rp
from fgff_core.config.presets import PRESETS
from fgff_core.engine.training import train
from fgff_core.reproduce.paper import SIG_LRS, get_budget
from fgff_core.reproduce.siglr import best_for_siglr, run_siglr
from fgff_core.reproduce.siglr_report import siglr_markdown
from fgff_core.reproduce.specs import RunSpec, best_specs, best_sweep_lrs, siglr_specs, widen

MNIST, FASHION = "ff-best-mnist-quick", "ff-best-fashion-quick"


def _row(spec: RunSpec, acc: float, no_sig: float | None = None, **extra) -> dict:
    return {"key": spec.key, "part": spec.part, "row": spec.row, "algo": spec.algo, "seed": spec.seed,
            "budget": "full", "test_on": spec.test_on, "lr": spec.config.lr, "test_acc": acc,
            "test_acc_no_significance": acc if no_sig is None else no_sig, "wall_seconds": 100.0,
            "n_train": 50000, "layers": list(spec.config.layers), "epochs": spec.config.epochs,
            "finished_at": "2026-12-07T18:00:00+00:00", "cpu": "Test CPU", "threads": 2, "load_avg": 3.0,
            "config": spec.config.to_dict(), **extra}


def _no_training(*_args, **_kwargs):
    raise AssertionError("train() was called although every run is in the log")


@pytest.fixture
def synthetic(tmp_path, monkeypatch):
    """A log where part "best" is complete for both quick recipes (each grid's middle lr best: settled), part
    "siglr"'s MNIST sweep is complete with sig lr 0.01 best and two of its three test seeds in, and its
    Fashion sweep lacks sig lr 0.03."""
    monkeypatch.setattr("fgff_core.reproduce.execution.train", _no_training)
    budget = get_budget("full")
    best = best_for_siglr(budget)
    log = rp.RunLog(tmp_path / "runs-full.jsonl")
    for spec in best_specs(best, 3, "cpu", None):  # the sweeps: the middle lr best, FGFF ahead of FF by lr
        middle = spec.config.lr == best_sweep_lrs(spec.row.split()[0], best)[1]
        log.add(_row(spec, 0.95 + 0.01 * middle + (0.001 if spec.algo == "fgff" else 0.0)))
    chosen = {(r, a): best_sweep_lrs(r, best)[1] for r in best.best.recipes for a in ("ff", "fgff")}
    ff_tests = {0: 0.980, 1: 0.982, 2: 0.978}
    for spec in best_specs(best, 3, "cpu", None, chosen):
        log.add(_row(spec, ff_tests[spec.seed] if spec.algo == "ff" else 0.979, no_sig=0.970))
    weight_lr = {r: chosen[(r, "fgff")] for r in best.best.recipes}
    validation = {0.0: 0.958, 0.003: 0.961, 0.01: 0.965, 0.03: 0.962, 0.15: 0.961}
    for spec in siglr_specs(budget, 3, "cpu", None, weight_lr):
        sig_lr = spec.config.sig_lr
        if spec.row.startswith(MNIST):
            # sig lr 0: the same validation accuracy as FF's sweep run at that lr (the factors stay at 1)
            log.add(_row(spec, 0.960 if sig_lr == 0.0 else validation[sig_lr], no_sig=0.955))
        elif sig_lr != 0.03:
            log.add(_row(spec, validation[sig_lr]))
    tuned = {0: 0.984, 1: 0.978}  # seed 2 not run yet
    for spec in siglr_specs(budget, 3, "cpu", None, weight_lr, best_sig_lr={MNIST: 0.01}):
        if spec.seed in tuned:
            log.add(_row(spec, tuned[spec.seed], no_sig=0.975))
    runs = run_siglr(budget, 3, "cpu", None, log, rp.DataCache(), say=lambda _m: None, train_missing=False)
    return budget, runs, log, weight_lr, ff_tests, tuned


def test_the_sweep_is_fgffs_own_weight_lr_on_the_validation_split_then_every_seed_at_the_chosen_sig_lr(synthetic):
    budget, runs, _log, weight_lr, _ff, _tuned = synthetic
    assert runs.weight_lr == weight_lr
    assert {s.row.split()[0] for s in runs.sweep.specs} == {MNIST, FASHION}
    for spec in runs.sweep.specs:
        assert spec.algo == "fgff" and spec.seed == 0 and spec.val_size == budget.best.val_size
        assert spec.config.lr == weight_lr[spec.row.split()[0]]
    assert sorted(s.config.sig_lr for s in runs.sweep.specs if s.row.startswith(MNIST)) == [0.0, 0.003, 0.01, 0.03,
                                                                                             0.15]
    assert runs.sweep.best == {MNIST: 0.01}  # Fashion's sweep lacks a run: nothing chosen
    assert [(s.seed, s.config.sig_lr, s.val_size) for s in runs.test] == [(0, 0.01, 0), (1, 0.01, 0), (2, 0.01, 0)]


def test_the_report_answers_with_the_logs_numbers_and_shows_missing_runs_as_missing(synthetic):
    budget, runs, log, weight_lr, ff, tuned = synthetic
    md = siglr_markdown(budget, 3, runs, log)
    mnist, fashion = md.split(f"#### `{MNIST}`")[1].split(f"#### `{FASHION}`")
    assert "| 0.01 | **96.50** | 95.50 | here, 100 s |" in mnist
    assert "| 0.15 | 96.10 | 95.50 |" in mnist and "Chosen on validation: significance lr **0.01**." in mnist
    lr = weight_lr[MNIST]
    assert f"against FF's own sweep run at the same lr {lr:g}" in mnist and "the same to the last digit" in mnist
    ff_cell = f"{statistics.fmean(ff.values()) * 100:.2f} ± {statistics.stdev(ff.values()) * 100:.2f}"
    tuned_cell = f"{statistics.fmean(tuned.values()) * 100:.2f} ± {statistics.stdev(tuned.values()) * 100:.2f}"
    assert f"| {ff_cell} | 3 | 98.00, 98.20, 97.80 | — |" in mnist
    assert f"| {lr:g} | 0.01 | {tuned_cell} | 2 | 98.40, 97.80, not run yet | 97.50 ± 0.00 |" in mnist
    assert "FGFF ahead of FF in 1 of 2." in mnist  # seed 0: 98.4 > 98.0; seed 1: 97.8 < 98.2
    assert "| 0.03 | not run yet | — | — |" in fashion and "**Verdict:** not yet" in fashion
    answer = next(line for line in md.splitlines() if line.startswith("**With its own tuned significance lr"))
    assert "FGFF's mean is above FF's on 1 of 1 recipe, and FGFF is ahead of FF in 1 of 2 seed pairs" in answer
    assert f"`{MNIST}` (significance lr 0.01): FGFF {tuned_cell} % against FF {ff_cell} %, ahead in 1 of 2 seeds" \
        in answer
    assert "The sweep chose the authors'" not in answer  # it chose 0.01
    assert "2 of the 13 runs of this part are not run yet." in answer  # Fashion's 0.03, MNIST's seed 2
    assert "- Not swept: `ff-best-mnist`" in md and "`ff-best-fashion`" in md
    assert "FGFF's significance factors train at lr 0, 0.003, 0.01, 0.03, 0.15." in md
    assert "CPUs of the 11 runs trained here: Test CPU 11 runs." in md  # no row of this log is a shared one
    assert "the 1-minute load average when each run finished: 3.0-3.0." in md
    assert f"twice that, up to {budget.siglr.widenings} more" in md


def test_a_sig_lr_sweep_widens_past_its_largest_lr_and_never_below_zero():
    assert widen(SIG_LRS, 0.15) == (*SIG_LRS, 0.3)
    assert widen(SIG_LRS, 0.0) == SIG_LRS  # 0 cannot be halved: the grid is bracketed there
    assert widen(SIG_LRS, 0.01) == SIG_LRS


def test_a_report_without_test_runs_says_not_yet_and_invents_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("fgff_core.reproduce.execution.train", _no_training)
    budget = get_budget("full")
    log = rp.RunLog(tmp_path / "runs-full.jsonl")
    runs = run_siglr(budget, 3, "cpu", None, log, rp.DataCache(), say=lambda _m: None, train_missing=False)
    md = siglr_markdown(budget, 3, runs, log)
    assert md.count("Waits for part \"best\"'s FGFF lr sweep") == 2
    assert "Not yet: no recipe has test runs of both." in md
    assert "%" not in md.split("What this does not show")[0].replace("validation accuracy, %", "")


@pytest.mark.parametrize("recipe", [MNIST, FASHION])
def test_significance_lr_zero_trains_exactly_ff_under_a_strong_recipe(digits, recipe):
    """Hard negatives, simultaneous layers, a linear lr schedule, minibatches: FGFF at sig lr 0 is FF bit for bit."""
    small = dict(dataset="digits", layers=(32, 16), epochs=3, eval_every=0, device="cpu", train_subset=0, lr=0.04)
    ff, ff_end = train(PRESETS[recipe].config("ff", **small), digits)
    fgff, fgff_end = train(PRESETS[recipe].config("fgff", sig_lr=0.0, **small), digits)
    for (name, a), (_, b) in zip(ff.model.state_dict().items(), fgff.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert fgff_end.test_acc == ff_end.test_acc == fgff_end.test_acc_no_significance


@pytest.mark.slow
def test_the_smoke_part_sweeps_fgffs_sig_lr_and_shares_the_authors_lr_with_part_best(tmp_path: Path):
    md = rp.reproduce(["siglr"], "smoke", 1, None, tmp_path, "cpu", say=lambda _msg: None)["siglr"]
    rows = [r for r in rp.RunLog(tmp_path / "runs-smoke.jsonl").rows.values() if r["part"] == "siglr"]
    sweep = [r for r in rows if r["test_on"] == "validation"]
    assert sorted(r["config"]["sig_lr"] for r in sweep) == [0.0, 0.15]
    authors = next(r for r in sweep if r["config"]["sig_lr"] == 0.15)
    assert authors["same_run_as"].startswith("best|")  # part "best"'s training, not trained again
    assert len([r for r in rows if r["test_on"] == "test"]) == 1
    assert (tmp_path / "siglr-smoke.md").read_text().endswith(md)


def test_the_ablation_leaves_out_fgff_runs_at_significance_lr_zero(tmp_path):
    from fgff_core.reproduce.study_report import ablation_markdown, ablation_rows

    log = rp.RunLog(tmp_path / "runs-full.jsonl")
    budget = get_budget("full")
    weight_lr = {MNIST: 0.04}
    for spec in siglr_specs(budget, 3, "cpu", None, weight_lr):
        log.add(_row(spec, 0.97, no_sig=0.96))
    kept = ablation_rows(log, "full")
    assert sorted(r["config"]["sig_lr"] for r in kept) == [0.003, 0.01, 0.03, 0.15]
    md = ablation_markdown(log, budget)
    assert "; one FGFF run at significance lr 0 (factors fixed at 1) is left out." in md
    assert "sig_lr=0 " not in md and "sig_lr=0.003" in md
