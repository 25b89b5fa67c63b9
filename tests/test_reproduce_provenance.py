"""reproduce.provenance: the facts a table's caption states about its runs, each read from the rows."""

from __future__ import annotations

from pathlib import Path

from fgff_core.reproduce import provenance as pv


def _row(algo: str = "ff", seed: int = 0, finished: str = "2026-12-03T10:00:00+00:00", **config) -> dict:
    return {"algo": algo, "seed": seed, "finished_at": finished, "part": "1", "row": "2x500",
            "config": {"loss": "softplus", "lr": 0.06, "sig_lr": 0.15, **config}}


def test_a_row_names_its_own_cpu_else_the_notes_window_for_its_time_else_none():
    assert pv.row_cpu({**_row(), "cpu": "Some CPU"}) == "Some CPU"
    # a recorded CPU of a kind the set-up names is that kind; another keeps its own words
    assert pv.row_cpu({**_row(), "cpu": "AMD EPYC (family 25 model 1, no AVX-512, 2 logical CPUs)"}) == pv.ZEN3
    model17 = "AMD EPYC (family 25 model 17, AVX-512, 2 logical CPUs)"
    assert pv.row_cpu({**_row(), "cpu": model17}) == model17
    assert pv.row_cpu(_row(finished="2026-11-27T10:05:00+00:00")) == pv.AVX512
    assert pv.row_cpu(_row(finished="2026-12-02T19:30:00+00:00")) == pv.ZEN3
    assert pv.row_cpu(_row(finished="2026-12-06T12:00:00+00:00")) == pv.NOT_RECORDED


def test_a_cell_on_two_cpus_names_each_with_its_seeds():
    rows = [_row(seed=0, finished="2026-12-02T03:13:00+00:00"), _row(seed=1), _row(seed=2)]
    assert pv.cpu_cell(rows) == f"{pv.AVX512} (seed 0); {pv.ZEN3} (seeds 1, 2)"
    assert pv.cpu_cell(rows[1:]) == pv.ZEN3
    assert pv.cpu_counts(rows) == f"{pv.AVX512} 1 run, {pv.ZEN3} 2 runs"


def test_the_loss_sentence_says_whether_the_papers_hinge_loss_was_trained():
    assert "hinge loss, eq. (1), was never trained" in pv.loss_sentence([_row(), _row("fgff")])
    assert "never" not in pv.loss_sentence([_row(loss="hinge")])
    assert pv.loss_sentence([_row("bp")]) == ""  # BP has no goodness loss


def test_ff_lr_provenance_names_the_studys_sweep_and_its_choice():
    sweep = [{**_row(finished="2026-12-06T07:00:00+00:00", lr=lr), "part": "study", "row": f"sweep lr={lr:g}",
              "dataset": "mnist", "layers": [500, 500], "n_train": 50000, "epochs": 200, "test_acc": acc}
             for lr, acc in ((0.06, 0.69), (0.1, 0.70), (0.2, 0.09))]
    text = pv.ff_lr_sentence([_row()], sweep)
    assert "0.06, the paper presets'" in text and "MNIST 2x500 (50000 training samples), which chose 0.1" in text
    assert "no FF lr sweep" in pv.ff_lr_sentence([_row()], [])


def test_the_significance_lr_is_called_never_swept_only_when_every_fgff_run_has_the_same():
    assert "never swept" in pv.sig_lr_sentence([_row("fgff"), _row("fgff", seed=1)])
    assert "never swept" not in pv.sig_lr_sentence([_row("fgff"), _row("fgff", sig_lr=0.3)])


def test_a_fixed_significance_lr_names_the_recipes_whose_sig_lr_part_siglr_swept():
    siglr = [{**_row("fgff", sig_lr=lr), "part": "siglr", "row": f"r-quick sweep lr=0.04 sig_lr={lr:g}",
              "test_on": "validation"} for lr in (0.0, 0.15)]
    test = {**_row("fgff", sig_lr=0.0), "part": "siglr", "row": "r-quick lr=0.04 sig_lr=0", "test_on": "test"}
    assert pv.siglr_recipes([_row("fgff"), *siglr, test]) == ["r-quick"]
    text = pv.sig_lr_sentence([_row("fgff")], ["r-quick"])
    assert "never swept" not in text and 'part "siglr" sweeps that lr on `r-quick`' in text


def test_seconds_name_the_load_only_where_every_row_recorded_it():
    assert "does not record the load" in pv.seconds_sentence([_row()])
    assert "1.5-3.0" in pv.seconds_sentence([{**_row(), "load_avg": 1.5}, {**_row(), "load_avg": 3.0}])


def test_seed_pairs_count_the_seeds_where_fgff_is_ahead():
    assert pv.seed_pairs({0: 0.98, 1: 0.97, 2: 0.99}, {0: 0.99, 1: 0.96, 2: 0.99}) == (1, 3)


def test_cpu_model_reads_the_model_and_whether_it_has_avx512(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: AMD EPYC\ncpu family\t: 25\nmodel\t\t: 1\nflags\t\t: fpu avx2\n")
    assert pv.cpu_model(info).startswith("AMD EPYC (family 25 model 1, no AVX-512")
    info.write_text("model name\t: AMD EPYC\nflags\t\t: avx2 avx512f\n")
    assert "AVX-512" in pv.cpu_model(info) and "no AVX-512" not in pv.cpu_model(info)
    assert pv.cpu_model(Path(tmp_path / "missing")) == pv.NOT_RECORDED


def test_a_run_on_a_gpu_records_its_name_and_the_tables_name_the_gpu_not_the_cpu(tmp_path, monkeypatch):
    import torch

    from fgff_core.reproduce import BUDGETS, RunLog, table_specs
    from fgff_core.reproduce.report import accuracy_table, timing_table

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: f"Some GPU {device}")
    assert pv.machine_fields(2, "cuda")["gpu"] == "Some GPU cuda"
    assert pv.machine_fields(2, "cpu")["gpu"] is None
    gpu_rows = [{**_row(seed=s), "cpu": "Some CPU", "gpu": "Some GPU"} for s in range(2)]
    assert pv.row_machine(gpu_rows[0]) == pv.cpu_cell(gpu_rows) == "Some GPU"
    assert (pv.machine_word(gpu_rows), pv.machine_word(gpu_rows, plural=True)) == ("GPU", "GPUs")
    assert (pv.machine_word([_row()]), pv.machine_word([*gpu_rows, _row()], plural=True)) == ("CPU", "CPUs and GPUs")
    budget = BUDGETS["smoke"]
    log = RunLog(tmp_path / "runs-smoke.jsonl")
    specs = {part: table_specs(part, budget, 1, "cuda", None) for part in ("3", "4")}
    for spec in specs["3"] + specs["4"]:
        log.add({**_row(spec.algo, spec.seed), "key": spec.key, "part": spec.part, "row": spec.row, "layers": [16],
                 "n_train": 1000, "epochs": 5, "wall_seconds": 9.0, "train_acc": 0.5, "test_acc": 0.4,
                 "test_acc_no_significance": 0.3, "epoch_seconds_median": 0.01, "device": "cuda",
                 "cpu": "Some CPU", "gpu": "Some GPU", "load_avg": 1.0})
    table3 = accuracy_table("3", specs["3"], log, {}, budget)
    assert "| Seconds per run (median) | GPU |" in table3 and "| 9 | Some GPU |" in table3
    assert "GPUs: Some GPU 3 runs." in table3 and "Some CPU" not in table3
    table4 = timing_table(specs["4"], log, {}, budget)
    assert "Ours: GPU (Some GPU 3 runs), device `cuda`," in table4 and "no GPU" not in table4
