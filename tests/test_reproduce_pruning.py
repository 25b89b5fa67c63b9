"""Part "pruning": its runs, its log (resume), its settings from flags and JSON, and its report's words.

The report tests use a small synthetic log whose numbers are chosen so that each verdict word is forced;
the runner test trains one tiny network on the embedded digits (``smoke`` budget).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fgff_core.cli import build_parser
from fgff_core.reproduce.paper import get_budget
from fgff_core.reproduce.pruning import (
    PruningLog,
    pruning_runs,
    pruning_settings,
    pruning_values,
    run_pruning,
    settings_for,
)
from fgff_core.reproduce.pruning_report import compare, pruning_markdown, verdict

SMOKE = get_budget("smoke")


def _runs(tmp_path: Path, seeds: int = 3):
    """The smoke budget's runs with an empty run log: the strong recipe has no chosen lr (missing)."""
    return pruning_runs(SMOKE, seeds, "cpu", None, tmp_path / "runs-smoke.jsonl")


def _row(run, order: str, removal: str, rule: str, area: float, removable: int) -> dict:
    return {"key": f"{run.key}|{order}|{removal}|{rule}", "run_key": run.key, "recipe": run.recipe, "algo": run.algo,
            "seed": run.seed, "dataset": "digits", "layers": [16, 16], "epochs": 10, "lr": 0.06, "sig_lr": 0.15,
            "n_train": 1347, "n_test": 450, "order": order, "removal": removal, "rule": rule,
            "draws": 5 if order == "random" else 1, "n_neurons": 32, "unpruned_acc": 0.9, "area": area,
            "removable": removable, "budget": "smoke", "train_test_acc": 0.9, "reference_test_acc": None,
            "cpu": "test CPU", "threads": 2, "device": "cpu", "load_start": [1.0, 1.0, 1.0],
            "load_end": [2.0, 2.0, 2.0], "train_seconds": 3.0, "ablation_seconds": 1.0,
            "finished_at": "2026-12-07T00:00:00+00:00", "settings": run.settings.to_dict()}


# s: area 0.80 / 0.81 / 0.82; activity far below (s better), weight norm within the spread (level),
# random far above (s worse). Removable: s 20, others 10 (s better than all three).
AREAS = {"s": 0.80, "abs_s": 0.80, "activity": 0.50, "weight_norm": 0.805, "random": 0.95}


def _synthetic(runs, skip_seed: int = 2) -> list[dict]:
    rows = []
    for run in runs:
        if run.recipe != "paper-mnist-2x500" or run.algo != "fgff" or run.seed == skip_seed:
            continue
        for order in run.settings.orders:
            for removal in run.settings.removals:
                for rule in run.settings.rules:
                    area = AREAS[order] + 0.01 * run.seed
                    rows.append(_row(run, order, removal, rule, area, 20 if order in ("s", "abs_s") else 10))
    return rows


def test_compare_words_follow_the_difference_against_the_spread():
    assert compare({0: 0.9, 1: 0.91}, {0: 0.5, 1: 0.52}) == "better"
    assert compare({0: 0.5, 1: 0.52}, {0: 0.9, 1: 0.91}) == "worse"
    assert compare({0: 0.9, 1: 0.8}, {0: 0.86, 1: 0.84}) == "level"  # 0.85 vs 0.85 within a spread of 0.07
    assert compare({0: 0.9}, {0: 0.5}) == "one seed"
    assert compare({0: 0.9, 1: 0.9}, {2: 0.5}) == "no runs"  # only the seeds both have are compared


def test_verdict_names_each_rival_by_the_numbers(tmp_path):
    rows = _synthetic(_runs(tmp_path), skip_seed=-1)
    sentence = verdict(rows, "silenced", "with_factors")
    by_area, by_removable = sentence.split("; by neurons removable")
    assert "s is a better order than activity (pos - neg) (+30.00 points, s ahead in 3 of 3 seeds)" in by_area
    assert "s is level, within the spread over seeds, with input weight norm" in by_area
    assert "s is a worse order than at random (-15.00 points, s ahead in 0 of 3 seeds)" in by_area
    assert "s is a better order than activity (pos - neg) (+10 neurons, s ahead in 3 of 3 seeds), input weight " \
           "norm (+10 neurons, s ahead in 3 of 3 seeds), at random (+10 neurons" in by_removable
    assert "worse" not in by_removable


def test_report_shows_the_numbers_and_the_missing_runs(tmp_path):
    runs = _runs(tmp_path)
    md = pruning_markdown(SMOKE, runs, _synthetic(runs), {})
    section = md.split("#### `paper-mnist-2x500`")[1].split("#### ")[0]
    fgff = section.split("**FGFF**")[1]
    assert fgff.startswith(": 2 of 3 seeds (seeds 0, 1); missing: seed 2 (not run yet).")
    # seeds 0 and 1: s's area 0.80 and 0.81 -> 80.50 ± 0.71; removable 20 ± 0 of 32
    assert "| by s | 80.50 ± 0.71 | 20 ± 0 of 32 | 80.50 ± 0.71 | 20 ± 0 of 32 |" in fgff
    assert "| by \\|s\\| |" in fgff  # the pipe of |s| would split a Markdown table's cell
    assert "| order (without factors) |" in fgff  # FGFF: both prediction rules
    ff = section.split("**FF**")[1].split("**FGFF**")[0]
    assert ff.startswith(": 0 of 3 seeds; missing: seed 0 (not run yet), seed 1 (not run yet), seed 2 (not run yet).")
    assert "| by s |" not in ff  # no rows: no numbers, never invented ones
    # the pruning table up front: s, activity, weight norm, random; area, then removable
    assert ("| `paper-mnist-2x500` | FGFF | silenced | 2 of 3 | 80.50 ± 0.71 | 50.50 ± 0.71 | 81.00 ± 0.71 | "
            "95.50 ± 0.71 | 20 ± 0 | 10 ± 0 | 10 ± 0 | 10 ± 0 |") in md
    assert "| `paper-mnist-2x500` | FF | silenced | 0 of 3 | – | – |" in md
    strong = md.split("#### `ff-best-mnist-quick`")[1].split("#### ")[0]
    assert "part best has chosen no lr for FF on ff-best-mnist-quick in runs-smoke.jsonl yet" in strong
    assert "**What these results do not show.**" in md and "tuned for FF" in md
    assert "load average at the start and the end of the 2 runs was 1.0-2.0" in md


def test_settings_from_flags_and_json_with_the_parts_defaults(tmp_path):
    config = tmp_path / "ablation.json"
    config.write_text(json.dumps({"orders": ["s", "random"], "draws": 7}))
    args = build_parser().parse_args(["reproduce", "--table", "pruning", "--ablation-config", str(config),
                                      "--draws", "9", "--fractions", "1,0.5"])
    settings = pruning_settings(pruning_values(args))
    assert settings.orders == ("s", "random") and settings.draws == 9  # the flag wins over the file
    assert settings.fractions == (1.0, 0.5) and settings.scopes == ("network",)  # the part's default scope
    assert settings_for("ff", settings).rules == ("with_factors",)  # FF has one rule
    assert settings_for("fgff", settings).rules == ("with_factors", "without_factors")
    bad = build_parser().parse_args(["reproduce", "--table", "pruning", "--draws", "2"])
    with pytest.raises(ValueError, match=r"draws: expected an integer in \[5, 100\]"):
        pruning_values(bad)


def test_runs_come_in_priority_order_seed_by_seed(tmp_path):
    runs = _runs(tmp_path, seeds=2)
    assert [(r.recipe, r.seed, r.algo) for r in runs[:4]] == [
        ("ff-best-mnist-quick", 0, "ff"), ("ff-best-mnist-quick", 0, "fgff"),
        ("ff-best-mnist-quick", 1, "ff"), ("ff-best-mnist-quick", 1, "fgff")]
    paper = [r for r in runs if r.recipe == "paper-mnist-2x500"]
    assert [r.spec.key.split("|")[:4] for r in paper] == [  # Table I's own runs
        ["1", "2x500", "ff", "seed0"], ["1", "2x500", "fgff", "seed0"],
        ["1", "2x500", "ff", "seed1"], ["1", "2x500", "fgff", "seed1"]]


def test_runner_logs_every_curve_and_reuses_them(tmp_path, monkeypatch):
    settings = pruning_settings({"orders": "s,random", "fractions": "1,0.5"})
    runs = [r for r in pruning_runs(SMOKE, 1, "cpu", None, tmp_path / "runs-smoke.jsonl", settings)
            if (r.recipe, r.algo) == ("paper-mnist-2x500", "fgff")]
    log = PruningLog(tmp_path / "pruning-smoke.jsonl")
    assert run_pruning(runs, log, "smoke", tmp_path / "runs-smoke.jsonl", say=lambda _m: None) == {}
    rows = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2  # orders x removals x rules
    # the unpruned point is the trained model's own test accuracy (the same count of correct test images)
    assert {round(r["unpruned_acc"] * r["n_test"]) for r in rows} == {round(rows[0]["train_test_acc"] * 450)}
    assert all(r["load_start"] and r["load_end"] and r["cpu"] and r["config"]["seed"] == 0 for r in rows)

    def no_training(*_args, **_kwargs):
        raise AssertionError("a run whose rows are in the log was trained again")

    monkeypatch.setattr("fgff_core.engine.training.train", no_training)
    assert run_pruning(runs, PruningLog(log.path), "smoke", tmp_path / "runs-smoke.jsonl", say=lambda _m: None) == {}
    assert len(log.path.read_text().splitlines()) == len(rows)
