"""reproduce: tables, resume, skipped datasets and the study, on the embedded digits with a tiny budget.

The ``smoke`` budget swaps every preset's dataset for digits (2x16, a few epochs), so these tests
exercise the whole machinery in seconds without the real datasets; the numbers are not a reproduction.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import threading
import time
from argparse import Namespace
from pathlib import Path

import pytest
import torch
from diverging import NAN_REASON, NAN_RUN

import fgff_core.data as data_module
from fgff_core import reproduce as rp
from fgff_core.config import RunConfig
from fgff_core.config.presets import PRESETS
from fgff_core.reproduce import execution
from fgff_core.reproduce.cells import grid_edge
from fgff_core.reproduce.provenance import row_cpu


def _no_training(*_args, **_kwargs):
    raise AssertionError("train() was called although no run should have been needed")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def smoke_table1(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("repro")
    md = rp.reproduce(["1"], "smoke", 2, None, out, "cpu", say=lambda _msg: None)["1"]
    return out, md


def test_table_markdown_has_paper_ours_and_difference_columns(smoke_table1):
    out, md = smoke_table1
    header = next(line for line in md.splitlines() if line.startswith("| Model"))
    for column in ("Paper (%)", "mean ± std", "Ours − paper (pp)", "without significance"):
        assert column in header
    body = [line for line in md.splitlines() if line.startswith("| 2x")]
    assert len(body) == 9  # 3 widths x BP/FF/FGFF
    fgff_500 = next(line for line in body if line.startswith("| 2x500 | FGFF"))
    cells = [c.strip() for c in fgff_500.strip("|").split("|")]
    assert cells[2] == "90.88"  # the paper's value for that cell
    mean, std = (float(v) for v in cells[3].split(" ± "))
    # The cell is the mean and the sample standard deviation of that row's two logged runs, in percent.
    accs = [100 * r["test_acc"] for r in _rows(out / "runs-smoke.jsonl") if (r["row"], r["algo"]) == ("2x500", "fgff")]
    assert len(accs) == 2
    assert mean == pytest.approx(statistics.fmean(accs), abs=0.005)
    assert std == pytest.approx(statistics.stdev(accs), abs=0.005)
    assert cells[4] == "2"  # seeds
    assert float(cells[5]) == pytest.approx(mean - 90.88, abs=0.011)
    assert (out / "table1-smoke.md").read_text().endswith(md)


def test_every_run_is_a_row_in_jsonl_and_csv(smoke_table1):
    out, _ = smoke_table1
    rows = _rows(out / "runs-smoke.jsonl")
    assert len(rows) == 18  # 9 cells x 2 seeds
    assert {(r["algo"], r["seed"]) for r in rows} == {(a, s) for a in ("bp", "ff", "fgff") for s in (0, 1)}
    assert all(0.0 <= r["test_acc"] <= 1.0 and r["dataset"] == "digits" for r in rows)
    csv_lines = (out / "runs-smoke.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 18 and csv_lines[0].startswith("key,part,row,algo,seed")


def test_a_new_row_records_where_it_ran_and_the_table_shows_its_cpu(smoke_table1):
    out, md = smoke_table1
    rows = _rows(out / "runs-smoke.jsonl")
    assert all(r["cpu"] and r["threads"] >= 1 and r["load_avg"] >= 0 for r in rows)
    # the CPU as the tables name it: the set-up's name for a known kind (provenance.RECORDED_KINDS), else its words
    assert row_cpu(rows[0]) in next(line for line in md.splitlines() if line.startswith("| 2x500 | FGFF"))
    assert "the paper's hinge loss, eq. (1), was never trained" in md and "load average" in md


def test_resume_skips_runs_already_in_the_log(smoke_table1, monkeypatch):
    out, md = smoke_table1
    monkeypatch.setattr(execution, "train", _no_training)
    messages: list[str] = []
    again = rp.reproduce(["1"], "smoke", 2, None, out, "cpu", say=messages.append)["1"]
    assert "18 of 18 runs already done; 0 to run" in messages
    assert again == md
    assert len(_rows(out / "runs-smoke.jsonl")) == 18


def test_resume_runs_only_the_missing_seed(smoke_table1, tmp_path, monkeypatch):
    out, _ = smoke_table1
    log = tmp_path / "runs-smoke.jsonl"
    rows = (out / "runs-smoke.jsonl").read_text().splitlines()
    dropped = json.loads(rows[-1])
    # smoke trains every row of Table I on the same digits 2x16 net: drop every row of that training
    kept = [r for r in rows if json.loads(r)["training"] != dropped["training"]]
    assert len(kept) == 15
    log.write_text("\n".join(kept) + "\n{\"key\": \"cut short by a cra")  # and a torn last line
    calls = []
    real_train = execution.train
    monkeypatch.setattr(execution, "train", lambda cfg, data, **kw: calls.append(cfg) or real_train(cfg, data, **kw))
    rp.reproduce(["1"], "smoke", 2, None, tmp_path, "cpu", say=lambda _msg: None)
    assert [(c.algo, c.seed, c.layers) for c in calls] == [(dropped["algo"], dropped["seed"],
                                                             tuple(dropped["layers"]))]
    rows = rp.RunLog(log).rows.values()
    assert len(rows) == 18 and sum("same_run_as" in r for r in rows if r["training"] == dropped["training"]) == 2


def test_missing_dataset_gives_a_skipped_row_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "DEFAULT_DATA_DIR", tmp_path / "no-cache")
    monkeypatch.setattr(execution, "train", _no_training)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    written = rp.main(Namespace(table="3", budget="quick", seeds=1, data_dir=str(empty), out=out, device="cpu"))
    assert written == 0
    md = (out / "table3-quick.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| 3x800")]
    assert len(rows) == 6  # BP/FF/FGFF x train/test
    assert all("skipped: cifar10 not found" in line for line in rows)
    md1 = rp.reproduce(["1"], "quick", 1, str(empty), out, "cpu", say=lambda _msg: None)["1"]
    rows1 = [line for line in md1.splitlines() if line.startswith("| 2x")]
    assert len(rows1) == 9 and all("| skipped: mnist not found" in line for line in rows1)
    assert not (out / "runs-quick.jsonl").exists()  # nothing ran, nothing recorded as done


def test_a_nan_run_is_skipped_as_failed_not_written_into_the_tables_as_a_number(tmp_path):
    spec = rp.RunSpec("1", "2x4", "bp", 0, RunConfig(**NAN_RUN))
    log = rp.RunLog(tmp_path / "runs-smoke.jsonl")
    messages: list[str] = []
    skipped = rp.execute([spec], log, "smoke", execution.DataCache(), messages.append)
    assert skipped == {spec.key: f"failed: {NAN_REASON}"}
    assert spec.key not in log and f"{spec.label}: failed: {NAN_REASON}" in messages
    cell = rp.collect([spec], log, skipped, "test_acc")[("2x4", "bp")]
    assert cell.values == [] and cell.fmt() == f"skipped: failed: {NAN_REASON}"


def test_timing_table_reports_ratios_next_to_the_paper(tmp_path):
    md = rp.reproduce(["4"], "smoke", 1, None, tmp_path, "cpu", say=lambda _msg: None)["4"]
    assert "RTX 4060" in md and "different machine" in md
    ff = next(line for line in md.splitlines() if line.startswith("| FF "))
    assert "0.1066" in ff and "1.000x (1.000x)" in ff  # FF relative to itself


def test_study_sweeps_lr_on_validation_then_runs_the_budget_curve(tmp_path):
    md = rp.reproduce(["study"], "smoke", 1, None, tmp_path, "cpu", say=lambda _msg: None)["study"]
    rows = _rows(tmp_path / "runs-smoke.jsonl")
    sweep = [r for r in rows if r["row"].startswith("sweep ")]
    long_sweep = [r for r in rows if r["row"].startswith("sweep5 ")]
    curve = [r for r in rows if r["row"].startswith("curve")]
    assert len(sweep) == 4 and len(long_sweep) == 4
    assert all(r["test_on"] == "validation" for r in sweep + long_sweep)
    assert all(r["test_on"] == "test" for r in curve)
    for algo in ("ff", "fgff"):  # the curve uses the lr with the best validation accuracy
        best = max((r for r in sweep if r["algo"] == algo), key=lambda r: (r["test_acc"], r["lr"]))
        curve_lrs = {r["epochs"]: r["lr"] for r in curve if r["algo"] == algo and r["lr"] == best["lr"]}
        assert sorted(curve_lrs) == [5, 10]
        assert f"{algo.upper()} {best['lr']:g}" in md
        long_best = max((r for r in long_sweep if r["algo"] == algo), key=lambda r: (r["test_acc"], r["lr"]))
        assert any(r["epochs"] == 5 and r["lr"] == long_best["lr"] for r in curve if r["algo"] == algo)
    assert "FGFF − FF (pp)" in md and "with − without significance" in md and "Best lr at 5 epochs" in md
    assert md.count("lr tried: a ") == 4  # two lrs per sweep: every choice is at an end of its grid, and says so
    for name in ("lr-sweep", "budget-curve"):
        assert list(tmp_path.glob(f"study-{name}-smoke.*")), name


def test_grid_edge_flags_only_a_choice_at_an_end_of_its_grid():
    lrs = (0.01, 0.03, 0.1)
    assert grid_edge(0.03, lrs) == ""
    assert "largest" in grid_edge(0.1, lrs) and "smallest" in grid_edge(0.01, lrs)
    assert grid_edge(0.1, (0.1,)) == ""  # one lr is no sweep


def test_widen_adds_the_next_lr_past_the_end_the_choice_sits_on():
    assert rp.widen((0.01, 0.03, 0.1), 0.1) == (0.01, 0.03, 0.1, 0.2)
    assert rp.widen((0.01, 0.03, 0.1), 0.01) == (0.005, 0.01, 0.03, 0.1)
    assert rp.widen((0.01, 0.03, 0.1), 0.03) == (0.01, 0.03, 0.1)


def _grid_runs(lrs):
    """Stand-ins for a sweep's specs (``bracketed_sweep`` reads only their keys): one per (grid, lr)."""
    return [Namespace(key=f"{k}|{lr}") for k, grid in lrs.items() for lr in grid]


def _choose_from(done: set[str], score):
    """``choose`` as a sweep has it: a best lr (by ``score(k, lr)``) for each grid whose every run is done."""
    return lambda _specs, lrs: {k: max(g, key=lambda lr: score(k, lr)) for k, g in lrs.items()
                                if all(f"{k}|{lr}" in done for lr in g)}


@pytest.mark.parametrize("best_at, widenings, grid", [
    (lambda lr: lr, 2, (1.0, 2.0, 4.0, 8.0)),  # better and better: widened twice (the cap), still open at the top
    (lambda lr: -lr, 1, (0.5, 1.0, 2.0)),  # smaller is better: one lr below, and the cap stops it there
    (lambda lr: -abs(lr - 2.0), 3, (1.0, 2.0, 4.0)),  # best at 2: one lr above brackets it, and no more are tried
])
def test_bracketed_sweep_widens_each_grid_until_its_best_lr_is_inside_or_the_cap(best_at, widenings, grid):
    done: set[str] = set()
    swept: list[list[str]] = []

    def run(specs, more):
        swept.append([s.key for s in specs if s.key not in done])
        done.update(s.key for s in specs)

    sweep = rp.bracketed_sweep({"ff": (1.0, 2.0)}, _grid_runs, _choose_from(done, lambda _k, lr: best_at(lr)),
                               run, widenings)
    assert sweep.lrs == {"ff": grid} and sweep.best == sweep.settled == {"ff": max(grid, key=best_at)}
    assert [len(new) for new in swept] == [2] + [1] * (len(grid) - 2)  # the grid, then one lr per widening


def test_a_settled_grid_widens_and_tests_while_another_grid_still_runs():
    """Grid "a" lands first: its next lr, and then its test run, are handed to a process that asks for more
    (as ``execute`` asks whenever its own runs are all started) while grid "b" is still running elsewhere."""
    done: set[str] = set()
    asked: list[list[str]] = []

    def run(specs, more):
        done.update(s.key for s in specs if s.key.startswith("a|"))
        for _ in range(3):  # "b" still running: each time, the "a" runs handed over are trained here
            asked.append([s.key for s in more() if s.key not in done])
            done.update(k for k in asked[-1] if not k.startswith("b|"))
        done.update(s.key for s in specs)  # "b" lands

    sweep = rp.bracketed_sweep({"a": (1.0, 2.0), "b": (1.0, 2.0, 4.0)}, _grid_runs,
                               _choose_from(done, lambda k, lr: lr if k == "a" else -abs(lr - 2.0)), run, 1,
                               then=lambda settled: [Namespace(key=f"test {k} {lr}") for k, lr in settled.items()])
    b = ["b|1.0", "b|2.0", "b|4.0"]
    assert asked[:3] == [["a|4.0", *b], [*b, "test a 4.0"], b]  # widened once (the cap), then tested
    assert sweep.lrs == {"a": (1.0, 2.0, 4.0), "b": (1.0, 2.0, 4.0)} and sweep.settled == {"a": 4.0, "b": 2.0}
    assert "test b 2.0" in done  # settled once "b" landed, tested in the next stage


def test_a_study_sweep_whose_best_lr_sits_at_an_end_trains_the_next_lr_and_chooses_over_all(tmp_path):
    smoke = rp.BUDGETS["smoke"]  # two lrs (0.03, 0.1): every choice sits at an end, so each algorithm widens once
    budget = dataclasses.replace(smoke, study=dataclasses.replace(smoke.study, widenings=1))
    log = rp.RunLog(tmp_path / "runs-smoke.jsonl")
    runs = rp.run_study(budget, 1, "cpu", None, log, execution.DataCache(), say=lambda _msg: None)
    rows = _rows(log.path)
    for algo in ("ff", "fgff"):
        sweep = [r for r in rows if r["row"].startswith("sweep ") and r["algo"] == algo]
        first = max((r for r in sweep if r["lr"] in (0.03, 0.1)), key=lambda r: (r["test_acc"], r["lr"]))
        assert sorted(r["lr"] for r in sweep) == sorted([0.03, 0.1, 0.2 if first["lr"] == 0.1 else 0.015])
        best = max(sweep, key=lambda r: (r["test_acc"], r["lr"]))["lr"]
        assert runs.sweep.lrs[algo] == tuple(sorted(r["lr"] for r in sweep)) and runs.sweep.best[algo] == best
        assert {r["lr"] for r in rows if r["row"] == "curve epochs=10" and r["algo"] == algo} == {best}


def test_a_best_sweep_widens_per_recipe_and_algorithm_and_tests_at_the_best_of_the_wider_grid(tmp_path):
    smoke = rp.BUDGETS["smoke"]  # one recipe, its lr times 0.5 and 1: every choice sits at an end
    budget = dataclasses.replace(smoke, best=dataclasses.replace(smoke.best, widenings=1))
    log = rp.RunLog(tmp_path / "runs-smoke.jsonl")
    runs = rp.run_best(budget, 1, "cpu", None, log, execution.DataCache(), say=lambda _msg: None)
    rows = _rows(log.path)
    for algo in ("ff", "fgff"):
        sweep = [r for r in rows if " sweep " in r["row"] and r["algo"] == algo]
        grid = runs.sweep.lrs[("ff-best-mnist-quick", algo)]
        assert len(sweep) == 3 and grid == tuple(sorted(r["lr"] for r in sweep))
        best = max(sweep, key=lambda r: (r["test_acc"], r["lr"]))["lr"]
        [test] = [r for r in rows if r["row"] == "ff-best-mnist-quick" and r["algo"] == algo]
        assert test["lr"] == best == runs.sweep.best[("ff-best-mnist-quick", algo)]


def test_validation_split_is_disjoint_from_the_training_subset():
    cfg = RunConfig(algo="fgff", dataset="digits", train_subset=500)
    split = rp.validation_split(cfg, 300)
    sub = data_module.load_dataset("digits", train_subset=500)
    assert torch.equal(split.x_train, sub.x_train)
    assert len(split.y_test) == 300
    train_rows = {tuple(r) for r in sub.x_train.tolist()}
    assert not any(tuple(r) in train_rows for r in split.x_test.tolist())
    with pytest.raises(ValueError, match="study"):
        rp.validation_split(cfg, 10_000)


def test_cell_format_and_bad_arguments(tmp_path):
    assert rp.Cell([0.5, 0.7]).fmt() == "60.00 ± 14.14"
    assert rp.Cell([0.5]).fmt() == "50.00 ± n/a"
    assert rp.Cell([], skipped="x not found").fmt() == "skipped: x not found"
    with pytest.raises(ValueError, match="budget"):
        rp.reproduce(["1"], "huge", 1, None, tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        rp.reproduce(["1"], "smoke", 0, None, tmp_path)


def test_keys_change_with_the_config_but_not_the_device():
    a = rp.table_specs("1", rp.BUDGETS["quick"], 1, "cpu", "/data")[0]
    b = rp.table_specs("1", rp.BUDGETS["quick"], 1, "auto", None)[0]
    assert a.key == b.key
    c = rp.RunSpec(a.part, a.row, a.algo, a.seed, a.config.replace(lr=0.01))
    assert c.key != a.key


def test_a_run_claimed_by_a_live_process_is_not_repeated(tmp_path):
    import subprocess

    key = "1|2x50|ff|seed0|abc"
    live = subprocess.Popen(["sleep", "30"])
    try:
        first = rp.claim(tmp_path, key)
        first.write_text(str(live.pid))  # as if that process had claimed it
        assert rp.claim(tmp_path, key) is None
    finally:
        live.kill()
        live.wait()
    assert rp.claim(tmp_path, key) == first  # its claimer is gone: a stale claim is taken over



def _claimed_elsewhere(tmp_path):
    """A smoke spec, its log, and a live process that holds its claim (as another ``reproduce`` would)."""
    import subprocess

    spec = rp.table_specs("1", rp.BUDGETS["smoke"], 1, "cpu", None)[0]
    log = rp.RunLog(tmp_path / "runs-smoke.jsonl")
    other = subprocess.Popen(["sleep", "60"])
    rp.claim(tmp_path, spec.key).write_text(str(other.pid))
    return spec, log, other


def _their_row(spec) -> dict:
    """The row another process writes for ``spec`` (only what the log and its CSV read)."""
    return {"key": spec.key, "part": spec.part, "row": spec.row, "algo": spec.algo, "seed": spec.seed,
            "layers": list(spec.config.layers), "test_acc": 0.5}


def _later(seconds: float, action) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()))
    thread.start()
    return thread


def test_a_run_held_by_another_process_is_waited_for_not_repeated(tmp_path, monkeypatch):
    spec, log, other = _claimed_elsewhere(tmp_path)
    monkeypatch.setattr(execution, "train", _no_training)
    theirs = _their_row(spec)

    def other_finishes():
        rp.RunLog(log.path).add(theirs)
        other.kill()

    messages: list[str] = []
    thread = _later(0.3, other_finishes)
    try:
        skipped = rp.execute([spec], log, "smoke", execution.DataCache(), messages.append, poll_seconds=0.05)
    finally:
        thread.join()
        other.kill()
        other.wait()
    assert skipped == {} and log.get(spec.key) == theirs  # the stage ends only once that run has landed
    assert sum("waiting for it" in m for m in messages) == 1


def test_a_process_whose_runs_all_run_elsewhere_trains_the_next_stage_meanwhile(tmp_path):
    spec, log, other = _claimed_elsewhere(tmp_path)
    later = next(s for s in rp.table_specs("1", rp.BUDGETS["smoke"], 2, "cpu", None)
                 if (s.row, s.algo, s.seed) == (spec.row, spec.algo, 1))
    theirs = _their_row(spec)
    messages: list[str] = []
    thread = _later(0.3, lambda: (rp.RunLog(log.path).add(theirs), other.kill()))
    try:
        skipped = rp.execute([spec], log, "smoke", execution.DataCache(), messages.append, poll_seconds=0.05,
                             more=lambda: [later])
    finally:
        thread.join()
        other.kill()
        other.wait()
    assert skipped == {} and log.get(spec.key) == theirs
    assert log.get(later.key)["device"] == "cpu"  # trained here, while the other process held the first run
    waited = next(i for i, m in enumerate(messages) if "waiting for it" in m)
    trained = next(i for i, m in enumerate(messages) if m.startswith(f"[1/2] {later.label}:"))
    assert waited < trained


def test_later_stage_runs_start_after_every_run_of_this_stage(tmp_path, monkeypatch):
    specs = rp.table_specs("1", rp.BUDGETS["smoke"], 2, "cpu", None)
    first, later = [s for s in specs if s.seed == 1], [s for s in specs if s.seed == 0]
    trained_seeds: list[int] = []

    def record(cfg, dataset, **_kwargs):
        trained_seeds.append(cfg.seed)
        raise RuntimeError("stop at the first run")

    monkeypatch.setattr(execution, "train", record)
    log = rp.RunLog(tmp_path / "runs-smoke.jsonl")
    with pytest.raises(RuntimeError):
        rp.execute(first, log, "smoke", execution.DataCache(), lambda _m: None, more=lambda: later)
    assert trained_seeds == [1]  # this stage's seed 1, although seed-major order alone would start on seed 0


def test_a_run_whose_other_process_died_is_taken_over(tmp_path):
    spec, log, other = _claimed_elsewhere(tmp_path)
    messages: list[str] = []
    thread = _later(0.3, lambda: (other.kill(), other.wait()))  # dies (and is reaped) without writing its row
    try:
        rp.execute([spec], log, "smoke", execution.DataCache(), messages.append, poll_seconds=0.05)
    finally:
        thread.join()
    row = log.get(spec.key)
    assert row is not None and row["device"] == "cpu" and 0.0 <= row["test_acc"] <= 1.0
    assert any(m.startswith("[1/1]") for m in messages)


COMMITTED_QUICK_LOG = Path(__file__).resolve().parents[1] / "docs" / "reproduction" / "runs-quick.jsonl"


def test_the_committed_quick_log_keys_are_still_the_keys_of_its_runs():
    rows = _rows(COMMITTED_QUICK_LOG)
    assert len(rows) >= 138
    budget = rp.BUDGETS["quick"]
    for row in rows:
        val_size = budget.best.val_size if row["part"] == "best" else budget.study.val_size
        spec = rp.RunSpec(row["part"], row["row"], row["algo"], row["seed"], RunConfig.from_dict(row["config"]),
                          val_size=val_size if row["test_on"] == "validation" else 0)
        assert spec.key == row["key"], row["key"]


def test_resume_skips_every_run_of_the_committed_quick_log(tmp_path, monkeypatch):
    (tmp_path / "runs-quick.jsonl").write_text(COMMITTED_QUICK_LOG.read_text())
    monkeypatch.setattr(execution, "train", _no_training)
    messages: list[str] = []
    written = rp.reproduce(["1", "2", "4", "study"], "quick", 3, None, tmp_path, "cpu", say=messages.append)
    done = [m for m in messages if "already done" in m]
    assert done[:3] == ["27 of 27 runs already done; 0 to run"] * 2 + ["9 of 9 runs already done; 0 to run"]
    assert len(done) == 3 + 4 and all(m.endswith("; 0 to run") for m in done)  # and the study's 4 stages
    assert "| 2x500 | FGFF | 90.88 | 87.12 ± 1.53 | 3 |" in written["1"]
    assert "Best lr on validation: FF 0.06, FGFF 0.06." in written["study"]  # inside the grid: no flag
    assert ("Best lr at 800 epochs: FF 0.06 (the largest lr tried: a larger one might do better), FGFF 0.01 "
            "(the smallest lr tried: a smaller one might do better)." in written["study"])


def test_learning_invariant_fields_do_not_change_the_key():
    spec = rp.table_specs("1", rp.BUDGETS["quick"], 1, "cpu", None)[1]
    for change in ({"compile": True}, {"log_every": 5}, {"eval_chunk": 256}, {"download": True}):
        assert rp.RunSpec(spec.part, spec.row, spec.algo, spec.seed, spec.config.replace(**change)).key == spec.key


def test_study_figure_uses_the_theme_colours_and_draws_every_seed():
    from fgff_core.viz.reproduction import seed_curves
    from fgff_core.viz.theme import algo_color

    cells = {"ff": ("ff", [rp.Cell([0.5, 0.7]), rp.Cell([])]),
             "fgff_no_significance": ("fgff", [rp.Cell([0.8]), rp.Cell([0.9, 0.95])])}
    fig = seed_curves(cells, (1, 2), "title", "x")
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["FF, mean ± std", "FGFF without significance, mean ± std"]
    assert lines[0].line.color == algo_color("ff") and lines[1].line.color == algo_color("fgff")
    assert lines[1].line.dash == "dash" and list(lines[0].y) == [pytest.approx(60.0)]  # the empty cell is left out
    seeds = [t for t in fig.data if t.mode == "markers"]
    assert sum(len(t.y) for t in seeds) == 5


def test_verdict_is_within_two_points_of_the_paper_or_above_or_below_with_the_seed_spread():
    from fgff_core.reproduce.report import verdict

    assert verdict(rp.Cell([]), 90.0) is None
    within = verdict(rp.Cell([0.89, 0.91]), 91.5)  # -1.5 pp
    assert within.kind == "within" and str(within) == "within 2 pp (-1.50, seed std 1.41)"
    assert verdict(rp.Cell([0.88]), 90.0).kind == "within"  # exactly 2 points: within
    below = verdict(rp.Cell([0.80, 0.84]), 90.0)
    assert below.kind == "below" and str(below) == "below by 8.00 pp (seed std 2.83)"
    assert str(verdict(rp.Cell([0.95]), 90.0)) == "above by 5.00 pp (one seed)"


def test_tables_only_writes_the_markdown_of_a_log_and_trains_nothing(tmp_path, monkeypatch):
    from fgff_core.reproduce.__main__ import main as tables_only

    (tmp_path / "runs-quick.jsonl").write_text("\n".join(COMMITTED_QUICK_LOG.read_text().splitlines()[:4]) + "\n")
    monkeypatch.setattr(execution, "train", _no_training)
    assert tables_only(["--table", "1", "--budget", "quick", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "table1-quick.md").read_text()
    # the log's first rows: seed 0 of 2x50 BP, FF, FGFF and of 2x500 BP; 2 + 2 + 1 + 2 + 2 cells not run
    assert md.count("not run yet") == 9
    assert "| 2x50 | FGFF | 87.13 | 86.08 ± n/a | 1 | -1.05 | within 2 pp (-1.05, one seed) |" in md
    assert "Verdicts: 1 within 2 points of the paper, 0 above, 3 below, of 4 cells with runs." in md
    assert "| Table 1 2x50, random 10000 | 1 |" in (tmp_path / "ablation-quick.md").read_text()


def test_another_table_leaves_an_unchanged_ablation_file_as_it_was(tmp_path, monkeypatch):
    """The ablation file comes from every FGFF run of the log: a part that adds none must not rewrite its header
    to name that part's command (it once claimed to come from `--table mf`)."""
    from fgff_core.reproduce.__main__ import main as tables_only

    (tmp_path / "runs-quick.jsonl").write_text("\n".join(COMMITTED_QUICK_LOG.read_text().splitlines()[:4]) + "\n")
    monkeypatch.setattr(execution, "train", _no_training)
    assert tables_only(["--table", "1", "--budget", "quick", "--out", str(tmp_path)]) == 0
    first = (tmp_path / "ablation-quick.md").read_text()
    assert "--table 1 " in first.splitlines()[0]
    assert tables_only(["--table", "2", "--budget", "quick", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "table2-quick.md").exists()
    assert (tmp_path / "ablation-quick.md").read_text() == first


def test_the_ablation_never_pools_runs_trained_on_different_samples():
    from fgff_core.reproduce.study_report import ablation

    def row(order, n_train=50000, subset=50000, part="1", gap=0.1):
        return {"part": part, "row": "2x500", "algo": "fgff", "n_train": n_train, "epochs": 200, "test_acc": 0.9,
                "test_acc_no_significance": 0.9 - gap, "config": {"train_subset": subset, "train_subset_order": order}}

    md = ablation([row("first"), row("first", gap=0.2), row("shuffled"), row("shuffled", 60000, 0, "2"),
                   row("shuffled", 60000, 70000, "2")])  # a subset larger than the data is the whole set
    assert "| Table 1 2x500, first 50000 | 2 | +15.00 ± 7.07 |" in md
    assert "| Table 1 2x500, random 50000 | 1 | +10.00 ± n/a |" in md
    assert "| Table 2 2x500 | 2 | +10.00 ± 0.00 |" in md


def test_the_ablation_pools_a_network_trained_twice_once_by_its_test_score():
    from fgff_core.reproduce.study_report import POOLED_ROW, ablation

    def row(part, name, test_on, gap, seed=0):  # as logged before trainings were shared: no "training" key
        return {"part": part, "row": name, "algo": "fgff", "n_train": 50000, "epochs": 200, "lr": 0.06,
                "test_on": test_on, "test_acc": 0.9, "test_acc_no_significance": 0.9 - gap,
                "config": {"algo": "fgff", "layers": [500, 500], "epochs": 200, "seed": seed, "train_subset": 50000}}

    md = ablation([row("study", "sweep lr=0.06", "validation", 0.3), row("1", "2x500", "test", 0.2),
                   row("study", "curve epochs=200", "test", 0.2), row("1", "2x500", "test", 0.1, seed=1)])
    assert "| Table 1 2x500, random 50000 | 2 | +15.00 ± 7.07 |" in md  # each cell keeps all its seeds
    assert "| study sweep lr=0.06 (validation) | 1 | +30.00 ± n/a |" in md
    assert f"| {POOLED_ROW} | 2 | +15.00 ± 7.07 |" in md  # the validation score of a tested network is not


def test_the_ablation_splits_a_cell_whose_budget_changed():
    from fgff_core.reproduce.study_report import ablation

    def row(epochs, gap):
        return {"part": "3", "row": "3x800", "algo": "fgff", "n_train": 50000, "epochs": epochs, "test_acc": 0.2,
                "test_acc_no_significance": 0.2 - gap, "config": {"train_subset": 0}}

    md = ablation([row(100, 0.01), row(200, 0.07), row(200, 0.05)])
    assert "| Table 3 3x800, 100 epochs per layer | 1 | +1.00 ± n/a |" in md
    assert "| Table 3 3x800, 200 epochs per layer | 2 | +6.00 ± 1.41 |" in md
    assert "| Table 3 3x800 |" not in md
    assert "epochs per layer" not in ablation([row(200, 0.07), row(200, 0.05)])  # one budget: no split


def test_the_ablation_orders_its_rows_by_number():
    from fgff_core.reproduce.study_report import ablation

    def row(name, part="study"):
        return {"part": part, "row": name, "algo": "fgff", "n_train": 50000, "epochs": 200, "lr": 0.06,
                "test_acc": 0.9, "test_acc_no_significance": 0.8, "config": {"train_subset": 0}}

    names = ["sweep lr=0.2", "sweep lr=0.03", "sweep lr=0.005", "sweep lr=0.06", "curve epochs=400",
             "curve epochs=50"]
    md = ablation([row(n) for n in names] + [row("2x1000", "1"), row("2x500", "1")])
    order = [line.split(" | ")[0][2:] for line in md.splitlines()[2:-1]]
    assert order == ["Table 1 2x500", "Table 1 2x1000", "study curve epochs=50 lr=0.06",
                     "study curve epochs=400 lr=0.06", "study sweep lr=0.005", "study sweep lr=0.03",
                     "study sweep lr=0.06", "study sweep lr=0.2"]


@pytest.mark.parametrize("name", [n for n in PRESETS if n.startswith("paper-")])
def test_paper_presets_hold_the_authors_settings(name):
    cfg = PRESETS[name].config("fgff")
    cifar = cfg.dataset == "cifar10"
    assert (cfg.epochs, cfg.lr) == ((1200, 0.01) if cifar else (200, 0.06))
    assert (cfg.batch_size, cfg.sig_lr, cfg.threshold, cfg.loss, cfg.label_value) == (0, 0.15, 2.0, "softplus", 1.0)
    assert (cfg.schedule, cfg.negatives, cfg.optimizer) == ("greedy", "fixed", "adam")
    assert cfg.delta == 1.0  # the authors' hinge margin, should anyone switch a paper preset to hinge
    bp = PRESETS[name].config("bp")
    assert (bp.batch_size, bp.lr, bp.epochs) == (64, 1e-3, 50 if cifar else 20)
    if cifar:
        assert "weights' lr" in PRESETS[name].description and "0.15" in PRESETS[name].description
    assert cfg.normalize == ("authors" if cifar else "data")  # the authors' fixed CIFAR-10 constants
    if cfg.dataset == "mnist":  # the authors' code trains on the first 50000 MNIST images, BP here too
        assert (cfg.train_subset, cfg.train_subset_order) == (50000, "first")
        assert (bp.train_subset, bp.train_subset_order) == (50000, "first")
        assert "first 50,000" in PRESETS[name].description
    else:
        assert cfg.train_subset == 0


def test_full_budget_trains_on_the_authors_training_sets_and_quick_keeps_its_random_subsets():
    full = {(s.part, s.row, s.algo): s.config for t in ("1", "2", "3") for s in
            rp.table_specs(t, rp.BUDGETS["full"], 1, "cpu", None)}
    assert all((c.train_subset, c.train_subset_order) == (50000, "first") for (t, _, _), c in full.items() if t == "1")
    assert all(c.train_subset == 0 for (t, _, _), c in full.items() if t in ("2", "3"))
    assert full[("1", "2x500", "fgff")].epochs == 200 and full[("3", "3x800", "bp")].epochs == 50
    assert full[("3", "3x800", "fgff")].epochs == rp.paper.CIFAR_FULL_EPOCHS < 1200  # set to fit 90 min
    assert f"{rp.paper.CIFAR_FULL_EPOCHS} epochs per layer" in rp.BUDGETS["full"].description
    quick = rp.table_specs("1", rp.BUDGETS["quick"], 1, "cpu", None)
    assert {(s.config.train_subset, s.config.train_subset_order) for s in quick} == \
        {(10000, "shuffled"), (5000, "shuffled"), (2000, "shuffled")}
    shuffled = quick[0]
    first = rp.RunSpec(shuffled.part, shuffled.row, shuffled.algo, shuffled.seed,
                       shuffled.config.replace(train_subset_order="first"))
    assert first.key != shuffled.key  # a field added after the committed logs is keyed when not at its default


def test_the_hinge_margin_changes_the_key_of_hinge_runs_only():
    spec = rp.table_specs("1", rp.BUDGETS["quick"], 1, "cpu", None)[1]
    assert spec.config.loss == "softplus"
    for loss, same in (("softplus", True), ("hinge", False)):
        cfg = spec.config.replace(loss=loss)
        a = rp.RunSpec(spec.part, spec.row, spec.algo, spec.seed, cfg)
        b = rp.RunSpec(spec.part, spec.row, spec.algo, spec.seed, cfg.replace(delta=0.25))
        assert (a.key == b.key) is same


def test_refresh_includes_copies_generated_tables_into_a_doc(tmp_path):
    from fgff_core.reproduce.report import refresh_includes

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "t.md").write_text("<!-- generated by x -->\n\n### T\n\n![plot](p.png) [web](https://a.b)\n")
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- include out/t.md -->\nold\n<!-- end include -->\n"
                   "<!-- include out/missing.md -->\n<!-- end include -->\nend\n")
    assert refresh_includes(doc) == 2
    assert doc.read_text() == ("intro\n<!-- include out/t.md -->\n### T\n\n![plot](out/p.png) [web](https://a.b)\n"
                               "<!-- end include -->\n<!-- include out/missing.md -->\n*Not written yet: "
                               "`out/missing.md`.*\n<!-- end include -->\nend\n")
    first = doc.read_text()
    refresh_includes(doc)
    assert doc.read_text() == first  # idempotent


def test_best_gives_ff_and_fgff_the_same_sweep_then_tests_each_at_its_best_lr(tmp_path):
    md = rp.reproduce(["best"], "smoke", 1, None, tmp_path, "cpu", say=lambda _msg: None)["best"]
    rows = _rows(tmp_path / "runs-smoke.jsonl")
    sweep = [r for r in rows if " sweep " in r["row"]]
    tests = [r for r in rows if " sweep " not in r["row"]]
    assert all(r["test_on"] == "validation" for r in sweep) and all(r["test_on"] == "test" for r in tests)
    lrs = {algo: sorted(r["lr"] for r in sweep if r["algo"] == algo) for algo in ("ff", "fgff")}
    lr = PRESETS["ff-best-mnist-quick"].config().lr
    assert lrs["ff"] == lrs["fgff"] == [lr * 0.5, lr]  # the recipe's lr times 0.5 and 1 (smoke), for both
    for algo in ("ff", "fgff"):
        best = max((r for r in sweep if r["algo"] == algo), key=lambda r: (r["test_acc"], r["lr"]))
        [test] = [r for r in tests if r["algo"] == algo]
        assert test["lr"] == best["lr"] and test["n_train"] > best["n_train"]  # all training data, not the split
        others = {k: v for k, v in test["config"].items() if k not in ("algo", "lr", "seed")}
        assert others == {k: v for k, v in best["config"].items() if k not in ("algo", "lr", "seed")}
    assert "**Verdict:** FGFF " in md and "one seed cannot tell" in md
    assert "FF: the chosen lr" in md and "FGFF: the chosen lr" in md and md.count(" lr tried: a ") == 2
    assert "Digits" in md or "digits" in md  # the smoke budget says what it trained, not the recipe's MNIST
    assert (tmp_path / "best-smoke.md").read_text().endswith(md)
