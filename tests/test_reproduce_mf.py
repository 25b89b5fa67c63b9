"""Part "mf": Mono-Forward's lr swept on held-out training images, then seeds, BP beside it, the report from the log.

The choice of lr and the report are checked on synthetic logs of the full budget (no training, no dataset); the
whole part runs once on the smoke budget (embedded digits, seconds).
"""

from __future__ import annotations

import statistics

import pytest

from fgff_core import reproduce as rp
from fgff_core.reproduce.mf import MF_PAPER, mf_specs, network_row, run_mf
from fgff_core.reproduce.mf_report import mf_markdown
from fgff_core.reproduce.paper import get_budget
from fgff_core.reproduce.sharing import scored_on
from fgff_core.reproduce.specs import RunSpec, table_specs

MNIST = "mnist 2x1000"


def _row(spec: RunSpec, acc: float, other: float | None = None, wall: float = 100.0) -> dict:
    """A logged row of ``spec`` scoring ``acc`` on its own set and ``other`` on the other one (a sweep run: the test
    set; a test run: the validation split)."""
    own, second = scored_on(spec.val_size), scored_on(0 if spec.val_size else spec.also_val_size)
    return {"key": spec.key, "part": spec.part, "row": spec.row, "algo": spec.algo, "seed": spec.seed,
            "budget": "full", "test_on": spec.test_on, "lr": spec.config.lr, "epochs": spec.config.epochs,
            "layers": list(spec.config.layers), "batch_size": spec.config.batch_size,
            "n_train": spec.config.train_subset or 50000, "test_acc": acc,
            "test_acc_no_significance": None, "wall_seconds": wall, "finished_at": "2026-12-08T01:00:00+00:00",
            "cpu": "Test CPU", "threads": 2, "load_avg": 4.0, "config": spec.config.to_dict(),
            "scores": {own: {"test_acc": acc}, **({second: {"test_acc": other}} if other is not None else {})}}


def _no_training(*_args, **_kwargs):
    raise AssertionError("train() was called although the part was asked not to train")


# MNIST's sweep: lr 0.001 best on the held-out images, though lr 0.003 scores best on the test set
VALIDATION = {3e-4: 0.960, 1e-3: 0.975, 3e-3: 0.970}
TEST_OF_SWEEP = {3e-4: 0.961, 1e-3: 0.962, 3e-3: 0.990}
MF_TEST = {0: 0.962, 1: 0.970, 2: 0.966}  # seed 0 is the sweep run at 0.001
BP_TEST = {0: 0.968, 1: 0.965, 2: 0.964}
FF_TABLE = {0: 0.80, 1: 0.82, 2: 0.81}


@pytest.fixture
def synthetic(tmp_path, monkeypatch):
    """A full-budget log: MNIST's sweep complete and its test runs in, Fashion-MNIST's sweep lacking lr 0.003,
    nothing of CIFAR-10; Table I's FF runs of 2x1000 beside it."""
    monkeypatch.setattr("fgff_core.reproduce.execution.train", _no_training)
    budget = get_budget("full")
    log = rp.RunLog(tmp_path / "runs-full.jsonl")
    for spec in mf_specs(budget, 3, "cpu", None):
        lr = spec.config.lr
        if spec.row.startswith(MNIST):
            log.add(_row(spec, VALIDATION[lr], TEST_OF_SWEEP[lr], wall=120.0))
        elif spec.row.startswith("fashion_mnist") and lr != 3e-3:
            log.add(_row(spec, 0.85))
    for spec in mf_specs(budget, 3, "cpu", None, best_lr={MNIST: 1e-3}):
        if spec.row != MNIST:
            continue
        if spec.algo == "bp":
            log.add(_row(spec, BP_TEST[spec.seed], 0.971, wall=150.0))
        elif spec.seed:  # seed 0 takes the sweep run's row, as sharing does
            log.add(_row(spec, MF_TEST[spec.seed], 0.97, wall=120.0 + 10 * spec.seed))
        else:
            sweep = log.get(next(s for s in mf_specs(budget, 3, "cpu", None) if s.row == f"{MNIST} sweep lr=0.001").key)
            log.add({**sweep, "key": spec.key, "row": spec.row, "test_on": "test", "test_acc": MF_TEST[0],
                     "same_run_as": sweep["key"]})
    for spec in table_specs("1", budget, 3, "cpu", None):
        if spec.row == "2x1000" and spec.algo == "ff":
            log.add({**_row(spec, FF_TABLE[spec.seed]), "n_train": 50000})
    runs = run_mf(budget, 3, "cpu", None, log, rp.DataCache(), say=lambda _m: None, train_missing=False)
    return budget, runs, log


def test_the_lr_is_chosen_on_the_held_out_training_images_not_on_the_test_set(synthetic):
    budget, runs, _log = synthetic
    assert runs.sweep.best == {MNIST: 1e-3}  # 0.003 scored best on the test set; Fashion's grid is incomplete
    for spec in runs.sweep.specs:
        assert spec.algo == "mf" and spec.seed == 0 and spec.val_size == budget.mf.val_size
        assert spec.test_on == "validation"
    mnist_tests = [s for s in runs.test if s.row == MNIST]
    assert sorted((s.algo, s.seed, s.config.lr) for s in mnist_tests) == [
        ("bp", 0, 1e-3), ("bp", 1, 1e-3), ("bp", 2, 1e-3), ("mf", 0, 1e-3), ("mf", 1, 1e-3), ("mf", 2, 1e-3)]
    assert all(s.test_on == "test" and s.also_val_size == budget.mf.val_size for s in runs.test)
    assert not any(s.algo == "mf" for s in runs.test if s.row != MNIST)  # no lr chosen there yet


def test_every_run_of_the_part_trains_the_same_images_at_the_mf_papers_settings():
    budget = get_budget("full")
    specs = [*mf_specs(budget, 3, "cpu", None), *mf_specs(budget, 3, "cpu", None, best_lr={MNIST: 1e-3})]
    for spec in specs:
        cfg = spec.config
        assert (cfg.batch_size, cfg.optimizer, cfg.lr_schedule, cfg.schedule) == (128, "adam", "cosine", "simultaneous")
        assert cfg.epochs == budget.mf.epochs and cfg.train_subset_order == "shuffled"
        # the sweep holds its images out of exactly the subset the test runs train on
        assert cfg.train_subset + budget.mf.val_size == {"mnist": 60000, "fashion_mnist": 60000,
                                                         "cifar10": 50000}[cfg.dataset]
    assert {network_row(n) for n in budget.mf.networks} == {MNIST, "fashion_mnist 2x1000", "cifar10 3x800"}


def test_the_report_shows_the_logs_numbers_and_the_papers_and_marks_missing_runs(synthetic):
    budget, runs, log = synthetic
    md = mf_markdown(budget, 3, runs, log)
    mnist = md.split("#### MNIST")[1].split("#### ")[0]
    assert "0.0003: 96.00, **0.001: 97.50**, 0.003: 97.00" in mnist
    assert "BP at lr 0.001, seed 0, on the same held-out images: 97.10 (not swept)." in mnist
    mf = f"{statistics.fmean(MF_TEST.values()) * 100:.2f} ± {statistics.stdev(MF_TEST.values()) * 100:.2f}"
    bp = f"{statistics.fmean(BP_TEST.values()) * 100:.2f} ± {statistics.stdev(BP_TEST.values()) * 100:.2f}"
    ff = f"{statistics.fmean(FF_TABLE.values()) * 100:.2f} ± {statistics.stdev(FF_TABLE.values()) * 100:.2f}"
    paper = MF_PAPER["mnist"]
    # seconds: the median of seed 0's training (the sweep run's, 120 s) and seeds 1 and 2's (130, 140)
    assert (f"| **MF** (here) | 0.001 | {budget.mf.epochs} | 128 | 55000 | {mf} | 96.20–97.00 | 3 "
            f"| 96.20, 97.00, 96.60 | 130 | {paper['mf'][0]:.2f} ± {paper['mf'][1]:.2f} (2x1000) |") in mnist
    assert f"| {bp} | 96.40–96.80 | 3 | 96.80, 96.50, 96.40 | 150 | {paper['bp'][0]:.2f} ± " in mnist
    assert f"| FF (Table I's runs, 2x1000) | 0.06 | 200 per layer | full | 50000 | {ff} | 80.00–82.00 | 3 |" in mnist
    assert "| FGFF (Table I's runs, 2x1000) | — | — | — | — | not run yet |" in mnist
    assert "MF ahead of BP in 2 of 3." in mnist  # seed 0: 96.2 < 96.8; seeds 1 and 2 ahead
    gap = abs(statistics.fmean(MF_TEST.values()) * 100 - paper["mf"][0])
    assert f"MF here is {gap:.2f} points below the MF paper's {paper['mf'][0]:.2f} %" in mnist
    fashion = md.split("#### Fashion-MNIST")[1].split("#### ")[0]
    assert "0.003: not run yet" in fashion and "**Verdict:** not yet" in fashion
    assert "| **MF** (here) | — | — | — | — | not run yet |" in fashion
    assert "CIFAR-10 (32x32 colour): 3x800 here, 3x2000 in the MF paper" in md
    assert "MF's mean test accuracy is above BP's on 1 of 1 network" in md and "ahead of BP in 2 of 3 seed pairs" in md
    missing = sum(log.get(s.key) is None for s in [*runs.sweep.specs, *runs.test])
    assert f"{missing} of the {len(runs.sweep.specs) + len(runs.test)} runs of this part are not run yet." in md
    # trained here: MNIST's 3 sweep runs, 2 MF and 3 BP test runs, Fashion's 2 sweep runs (seed 0's MF is shared)
    assert "Runs of this part: 10 trainings" in md and "CPUs: Test CPU 10 runs" in md


def test_the_smoke_part_logs_every_run_and_shares_mfs_seed_0_with_its_sweep(tmp_path):
    md = rp.reproduce(["mf"], "smoke", 2, None, tmp_path, "cpu", say=lambda _msg: None)["mf"]
    budget = get_budget("smoke")
    log = rp.RunLog(tmp_path / "runs-smoke.jsonl")
    rows = [r for r in log.rows.values() if r["part"] == "mf"]
    sweep = {r["config"]["lr"]: r for r in rows if r["test_on"] == "validation"}
    assert sorted(sweep) == sorted(budget.mf.lrs) and all(r["algo"] == "mf" for r in sweep.values())
    chosen = max(sweep, key=lambda lr: (sweep[lr]["test_acc"], lr))
    tests = [r for r in rows if r["test_on"] == "test"]
    assert sorted((r["algo"], r["seed"]) for r in tests) == [("bp", 0), ("bp", 1), ("mf", 0), ("mf", 1)]
    assert {r["lr"] for r in tests if r["algo"] == "mf"} == {chosen}
    assert {r["lr"] for r in tests if r["algo"] == "bp"} == {budget.mf.bp_lr}
    seed0 = next(r for r in tests if r["algo"] == "mf" and r["seed"] == 0)
    assert seed0["same_run_as"] == sweep[chosen]["key"]  # one training, scored on both sets
    assert seed0["test_acc"] == sweep[chosen]["scores"]["test"]["test_acc"]
    mf_line = next(line for line in md.splitlines() if line.startswith("| **MF** (here)"))
    accs = [r["test_acc"] for r in sorted(tests, key=lambda r: r["seed"]) if r["algo"] == "mf"]
    assert f"| {statistics.fmean(accs) * 100:.2f} ± {statistics.stdev(accs) * 100:.2f} |" in mf_line
    assert (tmp_path / "mf-smoke.md").read_text().endswith(md)
