"""``python -m fgff_core.reproduce.gpu``: Tables III and IV at the paper's budget on a GPU, inside a time limit.

No GPU here: the plan, the dry run and the refusal of a missing CUDA device are checked as they are; the training
path runs end to end on the CPU with the ``smoke`` budget (digits, a few epochs), through the same function.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fgff_core.data import loading
from fgff_core.reproduce import BUDGETS, execution, gpu

PAPER = BUDGETS["paper"]


@pytest.fixture
def no_cache(tmp_path, monkeypatch) -> Path:
    """An empty default data cache, so that only the given data folder can hold the datasets."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(loading, "DEFAULT_DATA_DIR", cache)
    monkeypatch.delenv(loading.DATA_DIR_ENV, raising=False)
    return cache


@pytest.fixture
def nothing_read_or_trained(monkeypatch) -> None:
    def refuse(*_args, **_kwargs):
        raise AssertionError("a dry run read data or trained")

    monkeypatch.setattr(loading, "_load_normalised", refuse)
    monkeypatch.setattr(execution, "train", refuse)


def _dry_run(data: Path, out: Path, capsys) -> tuple[int, list[str]]:
    rc = gpu.main(["--dry-run", "--data-dir", str(data), "--out", str(out), "--time-limit", "30"])
    return rc, capsys.readouterr().out.splitlines()


def test_the_dry_run_lists_every_planned_run_and_names_each_missing_dataset(tmp_path, no_cache,
                                                                           nothing_read_or_trained, capsys):
    data = tmp_path / "data"
    data.mkdir()
    rc, lines = _dry_run(data, tmp_path / "out", capsys)
    runs = [line.split() for line in lines if line[:3].strip().isdigit()]
    assert rc == 1
    assert len(runs) == 18  # Tables III and IV, BP, FF and FGFF, 3 seeds
    assert [r[:7] for r in runs[:2]] == [["1", "3", "3x800", "fgff", "0", "1200", "cifar10"],
                                         ["2", "3", "3x800", "ff", "0", "1200", "cifar10"]]
    assert {tuple(r[1:7]) for r in runs if r[1] == "4"} == {
        ("4", "seconds", algo, str(seed), str(epochs), "fashion_mnist")
        for algo, epochs in (("bp", 3), ("ff", 10), ("fgff", 10)) for seed in range(3)}
    plan_lines = [line for line in lines if line[:3].strip().isdigit()]
    assert all("assumed GPU speed" in line for line in plan_lines)
    # in 30 s at the assumed speed: every Table IV run (seconds each), no Table III run (minutes each)
    assert [line.endswith("a later call") for line in plan_lines] == [r[1] == "3" for r in runs]
    assert f"data cifar10: missing, looked in {data}" in lines[-2]
    assert f"data fashion_mnist: missing, looked in {data}" in lines[-1]
    assert not (tmp_path / "out").exists()


def test_the_dry_run_finds_the_datasets_by_their_file_names_without_reading_them(tmp_path, no_cache,
                                                                                 nothing_read_or_trained, capsys):
    data = tmp_path / "data"
    (data / "cifar10").mkdir(parents=True)
    (data / "cifar10" / "cifar-10-binary.tar.gz").touch()  # empty: a read would fail
    (data / "fashion-mnist").mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (data / "fashion-mnist" / f"{name}.gz").touch()
    rc, lines = _dry_run(data, tmp_path / "out", capsys)
    assert rc == 0
    assert lines[-2] == f"data cifar10: found in {data / 'cifar10'} (by name, not read)"
    assert lines[-1] == f"data fashion_mnist: found in {data / 'fashion-mnist'} (by name, not read)"


def test_cuda_on_a_machine_without_it_is_refused_in_one_line_naming_the_device(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^device: 'cuda' .* CUDA is not available"):
        gpu.run_tables(PAPER, 3, "cuda", None, tmp_path / "out", 540)
    assert gpu.main(["--device", "cuda", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: device: 'cuda'") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_missing_data_folder_is_refused_before_anything_trains(tmp_path, no_cache, nothing_read_or_trained):
    with pytest.raises(ValueError, match=r"^data_dir: .*nope.* is not a folder"):
        gpu.run_tables(PAPER, 1, "cpu", str(tmp_path / "nope"), tmp_path / "out", 540)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"^data_dir: cifar10 not found.*; fashion_mnist not found"):
        gpu.run_tables(PAPER, 1, "cpu", str(tmp_path / "empty"), tmp_path / "out", 540)


def test_the_plan_puts_table_iii_seed_0_first_then_table_iv_then_the_other_seeds_then_bp():
    order = [(s.part, s.algo, s.seed) for s in gpu.plan(PAPER, 3, "cuda", None)]
    assert order[:2] == [("3", "fgff", 0), ("3", "ff", 0)]
    assert {o[0] for o in order[2:11]} == {"4"}
    assert order[11:15] == [("3", "fgff", 1), ("3", "ff", 1), ("3", "fgff", 2), ("3", "ff", 2)]
    assert order[15:] == [("3", "bp", 0), ("3", "bp", 1), ("3", "bp", 2)]


def test_the_estimate_is_the_assumed_gpu_speed_until_the_log_has_gpu_runs_of_that_network():
    ff0, fgff0 = (next(s for s in gpu.plan(PAPER, 1, "cuda", None) if (s.part, s.algo) == ("3", a)) for a in
                  ("ff", "fgff"))
    assumed = gpu.estimate(fgff0, [], "cuda")
    assert assumed.basis == "assumed GPU speed"
    row = {"device": "cuda", "wall_seconds": 2 * assumed.seconds, "dataset": "cifar10", "layers": [800, 800, 800],
           "config": ff0.config.to_dict()}
    cpu_row = {**row, "device": "cpu", "wall_seconds": 100 * assumed.seconds}
    measured = gpu.estimate(fgff0, [row, cpu_row], "cuda")  # FF and FGFF do the same work: twice the assumption
    assert measured.basis == "measured: 1 run on cuda"
    assert measured.seconds == pytest.approx(2 * assumed.seconds)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_runs_train_end_to_end_on_the_cpu_and_a_second_call_continues_the_log(tmp_path):
    out, said = tmp_path / "out", []
    none = gpu.run_tables(BUDGETS["smoke"], 1, "cpu", None, out, 1e-9, say=said.append)
    assert (none.finished, len(none.left), none.in_log) == ([], 6, 0)  # nothing fits in a nanosecond
    assert "not run yet" in (out / "table3-smoke.md").read_text()
    said.clear()
    done = gpu.run_tables(BUDGETS["smoke"], 1, "cpu", None, out, 600, say=said.append)
    rows = _rows(out / "runs-smoke.jsonl")
    assert (len(done.finished), done.left, done.failed, done.in_log) == (6, [], {}, 6)
    assert [line.split("]")[0] for line in said[1:7]] == [f"[{i}/6" for i in range(1, 7)]
    assert said[1].startswith("[1/6] Table III 3x800 FGFF seed 0 (digits, 10 epochs per layer): train ")
    assert all(r["device"] == "cpu" and r["gpu"] is None and r["cpu"] and r["load_avg"] >= 0 for r in rows)
    assert "| 3x800 (test) | FGFF |" in (out / "table3-smoke.md").read_text()
    assert "| FF |" in (out / "table4-smoke.md").read_text()
    again = gpu.run_tables(BUDGETS["smoke"], 1, "cpu", None, out, 600, say=said.append)
    assert (again.finished, again.in_log, len(_rows(out / "runs-smoke.jsonl"))) == ([], 6, 6)


def test_a_run_still_training_at_the_time_limit_is_stopped_and_left_for_the_next_call(tmp_path, monkeypatch):
    now = [0.0]
    real_execute = gpu.execute

    def execute_then_time_runs_out(*args, **kwargs):
        now[0] = 1e9  # the run starts in time; at its first poll the limit has passed
        return real_execute(*args, **kwargs)

    monkeypatch.setattr(gpu, "execute", execute_then_time_runs_out)
    said: list[str] = []
    outcome = gpu.run_tables(BUDGETS["smoke"], 1, "cpu", None, tmp_path, 600, say=said.append,
                             clock=lambda: now[0])
    assert (outcome.finished, len(outcome.left), outcome.in_log) == ([], 6, 0)
    assert "stopped at the time limit" in said[1] and "not logged" in said[1]
    assert all("not started" in line for line in said[2:7])
    assert not (tmp_path / "runs-smoke.jsonl").exists()


@pytest.mark.parametrize("argv, field", [(["--seeds", "0"], "seeds"), (["--time-limit", "0"], "time_limit"),
                                         (["--time-limit", "nan"], "time_limit")])
@pytest.mark.parametrize("dry", [True, False])
def test_a_bad_seed_count_or_time_limit_is_one_line_naming_the_field(argv, field, dry, tmp_path, capsys):
    rc = gpu.main([*argv, "--device", "cpu", "--out", str(tmp_path / "out"), *(["--dry-run"] if dry else [])])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"error: {field}: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
