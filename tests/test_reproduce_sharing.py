"""reproduce: a sweep run and a test run of the same training are one run, scored on both held-out sets.

On the embedded digits (the ``smoke`` budget): the study's sweep at 10 epochs and its curve point at 10
epochs train the same network, as do the curve at 5 epochs and the sweep at the long budget (5).
"""

from __future__ import annotations

import json

import pytest

from fgff_core import reproduce as rp
from fgff_core.reproduce import execution, study_report


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory) -> tuple[list[dict], list, str]:
    out = tmp_path_factory.mktemp("study")
    trained = []
    real_train = execution.train

    def counting_train(cfg, data, **kwargs):
        trained.append(cfg)
        return real_train(cfg, data, **kwargs)

    execution.train = counting_train
    try:
        md = rp.reproduce(["study"], "smoke", 1, None, out, "cpu", say=lambda _msg: None)["study"]
    finally:
        execution.train = real_train
    rows = [json.loads(line) for line in (out / "runs-smoke.jsonl").read_text().splitlines()]
    return rows, trained, md


def test_a_test_run_takes_its_row_from_the_sweep_run_of_the_same_training(smoke_study):
    rows, _, _ = smoke_study
    by_key = {r["key"]: r for r in rows}
    for algo in ("ff", "fgff"):
        [curve10] = [r for r in rows if r["row"] == "curve epochs=10" and r["algo"] == algo]
        sweep = by_key[curve10["same_run_as"]]
        assert sweep["row"] == f"sweep lr={curve10['lr']:g}" and sweep["test_on"] == "validation"
        assert curve10["test_on"] == "test" and curve10["n_test"] == sweep["scores"]["test"]["n_test"] == 450
        assert curve10["test_acc"] == sweep["scores"]["test"]["test_acc"] != sweep["test_acc"]
        assert curve10["wall_seconds"] == sweep["wall_seconds"] and curve10["training"] == sweep["training"]


def test_a_sweep_run_takes_its_row_from_the_test_run_of_the_same_training(smoke_study):
    rows, _, _ = smoke_study
    for algo in ("ff", "fgff"):
        [curve10] = [r for r in rows if r["row"] == "curve epochs=10" and r["algo"] == algo]
        [curve5] = [r for r in rows if r["row"] == "curve epochs=5" and r["algo"] == algo and r["lr"] == curve10["lr"]]
        [long_sweep] = [r for r in rows if r["row"] == f"sweep5 lr={curve5['lr']:g}" and r["algo"] == algo]
        assert long_sweep["same_run_as"] == curve5["key"] and "same_run_as" not in curve5
        assert long_sweep["test_on"] == "validation" and long_sweep["n_test"] == 300
        assert long_sweep["test_acc"] == curve5["scores"]["validation 300"]["test_acc"]


def test_sharing_trains_each_network_once_and_the_shared_score_is_what_training_it_again_gives(smoke_study, tmp_path):
    rows, trained, md = smoke_study
    shared = sum("same_run_as" in r for r in rows)
    assert shared and len(trained) == len({r["training"] for r in rows}) == len(rows) - shared
    assert f" {shared} of its {len(rows)} runs are another run's training" in md
    assert f"so it trained {len(trained)} networks." in md
    shared = next(r for r in rows if r["row"].startswith("sweep5 ") and "same_run_as" in r)
    spec = next(s for s in rp.study_specs(rp.BUDGETS["smoke"], 1, "cpu", None, long=True) if s.key == shared["key"])
    again = rp.RunLog(tmp_path / "runs-smoke.jsonl")  # a log of its own: nothing to share, so it trains
    rp.execute([spec], again, "smoke", execution.DataCache(), lambda _msg: None)
    assert "same_run_as" not in again.get(spec.key)
    assert again.get(spec.key)["test_acc"] == shared["test_acc"]


def test_a_validation_run_on_part_of_the_training_set_never_stands_in_for_a_run_on_all_of_it(tmp_path):
    rp.reproduce(["best"], "smoke", 1, None, tmp_path, "cpu", say=lambda _msg: None)
    rows = [json.loads(line) for line in (tmp_path / "runs-smoke.jsonl").read_text().splitlines()]
    tests = [r for r in rows if " sweep " not in r["row"]]
    sweeps = [r for r in rows if " sweep " in r["row"]]
    assert tests and all("same_run_as" not in r for r in tests)  # trained on all digits, the sweep on part
    assert {r["training"] for r in tests}.isdisjoint(r["training"] for r in sweeps)
    assert all(set(r["scores"]) == {"validation 300", "test"} for r in sweeps)


def test_the_ablation_counts_each_network_once(smoke_study, tmp_path):
    rows, _, _ = smoke_study
    log = rp.RunLog(tmp_path / "runs-smoke.jsonl")
    for row in rows:
        log.add(row)
    fgff = [r for r in rows if r["algo"] == "fgff"]
    given = study_report.ablation_rows(log, "smoke")
    assert len(given) == len(fgff)  # every cell with all its seeds, a shared row too
    md = study_report.ablation(given)
    networks = {r["training"] for r in fgff}
    assert f"| {study_report.POOLED_ROW} | {len(networks)} |" in md and len(networks) < len(fgff)
    cells = [line.split(" | ") for line in md.splitlines()[2:-1]]
    assert sum(int(cell[1]) for cell in cells) == len(fgff)  # the cells hold every row, shared ones too
