import json
import re
import subprocess
import sys

import pytest
from diverging import NAN_ARGV, NAN_REASON

from fgff_core.cli import build_parser, config_from_args, main


def test_flags_are_the_config_fields_and_presets_are_a_starting_point():
    args = build_parser().parse_args(["train", "--preset", "paper-mnist-2x500", "--epochs", "3", "--train-subset",
                                      "100", "--no-factorize", "--label-value", "max"])
    cfg = config_from_args(args)
    assert (cfg.dataset, cfg.layers, cfg.epochs, cfg.train_subset) == ("mnist", (500, 500), 3, 100)
    assert cfg.factorize is False and cfg.label_value == "max"
    bp = config_from_args(build_parser().parse_args(["train", "--algo", "bp"]))
    assert bp.lr == 1e-3  # algorithm default, not FF's


def test_train_json_line(capsys):
    code = main(["train", "--algo", "fgff", "--layers", "16", "--epochs", "5", "--eval-every", "0", "--json",
                 "--device", "cpu"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("algo", "dataset", "test_acc", "test_acc_no_significance", "train_acc", "train_seconds",
                "epoch_seconds_median", "config"):
        assert key in out
    assert out["config"]["layers"] == [16] and out["algo"] == "fgff"


def test_a_nan_run_fails_with_one_line_on_stderr_and_its_json_says_why(capsys):
    assert main(["train", *NAN_ARGV, "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"error: the run failed: {NAN_REASON}"]
    out = json.loads(captured.out)
    assert (out["status"], out["reason"], out["test_acc"]) == ("failed", NAN_REASON, None)
    assert main(["train", *NAN_ARGV]) == 1  # without --json: the one line only
    captured = capsys.readouterr()
    assert (captured.out, captured.err.splitlines()) == ("", [f"error: the run failed: {NAN_REASON}"])


def test_a_run_that_ends_at_chance_says_it_diverged(capsys):
    argv = ["train", "--algo", "bp", "--layers", "8", "--epochs", "2", "--eval-every", "0", "--lr", "10", "--device",
            "cpu"]
    assert main(argv) == 0
    assert "at chance: the run diverged; lower lr (now 10.0)" in capsys.readouterr().out.splitlines()[-1]
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reason"] == "at chance: the run diverged; lower lr (now 10.0)"


def test_the_summary_writes_accuracies_and_times_for_people(capsys):
    """Issue 35 item 6: accuracies as "91.23 %" (was 0.9123), times as "3.2 s" or "107 ms" (fgff_core.format)."""
    assert main(["train", "--algo", "fgff", "--layers", "8", "--epochs", "2", "--eval-every", "0", "--quiet",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for label in ("test accuracy:  ", "test accuracy without significance: ", "train accuracy: "):
        assert re.search(rf"^  {label}\d+\.\d\d %$", out, re.M), out
    assert re.search(r"^  training time:  [\d.]+ m?s \([\d.]+ m?s per layer-epoch, median\)$", out, re.M), out


@pytest.mark.parametrize("algo, label, shows_without_s", [("ff", "FF", False), ("fgff", "FGFF", True)])
def test_the_summary_gives_an_accuracy_without_s_only_where_s_is_trained(capsys, algo, label, shows_without_s):
    # FF keeps s at 1: its accuracy without s would only repeat its accuracy.
    assert main(["train", "--algo", algo, "--layers", "16", "--epochs", "2", "--eval-every", "0", "--quiet",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{label} on digits")
    assert ("without significance" in out) is shows_without_s


def test_bad_values_give_a_clear_error_and_exit_code_2(capsys):
    assert main(["train", "--epochs", "0"]) == 2
    assert "epochs: 0 is out of range; allowed [1, 1000000]" in capsys.readouterr().err
    assert main(["train", "--dataset", "mnist", "--data-dir", "/nonexistent-fgff", "--no-download"]) == 2
    assert "Dataset 'mnist' not found" in capsys.readouterr().err


def test_save_writes_a_loadable_checkpoint(tmp_path):
    from fgff_core.engine.checkpoint import load_checkpoint

    path = tmp_path / "m.safetensors"
    assert main(["train", "--layers", "8", "--epochs", "2", "--eval-every", "0", "--save", str(path), "--quiet"]) == 0
    model, cfg = load_checkpoint(path)
    assert cfg.layers == (8,)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["presets"], ["datasets"]])
def test_help_and_listings_run_as_a_module(argv):
    proc = subprocess.run([sys.executable, "-m", "fgff_core", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


# -- reliability (issue 16) -------------------------------------------------------------------------

def _run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fgff_core", *argv], capture_output=True, text=True, timeout=120)


def test_lr_from_the_command_line_is_accepted_and_errors_exit_non_zero():
    ok = _run_cli("train", "--layers", "8", "--epochs", "1", "--eval-every", "0", "--lr", "0.1", "--json", "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.splitlines()[-1])["config"]["lr"] == 0.1
    bad = _run_cli("train", "--lr", "abc")
    assert bad.returncode == 2 and bad.stderr.strip() == \
        "error: lr: expected a number in (0.0, 10.0], got 'abc'"


@pytest.mark.parametrize("argv, sentence", [
    (["train", "--layers", "-5,10"], "layers: each size must be an integer in [1, 65536], got -5"),
    (["train", "--lr", "-inf"], "lr: expected a number in (0.0, 10.0], got '-inf'"),
    (["train", "--lr", "nan"], "lr: expected a number in (0.0, 10.0], got 'nan'"),
    (["train", "--epochs", "1" * 5000], "epochs: expected an integer in [1, 1000000], got '111"),
    (["train", "--epochs", "٥"], "epochs: expected an integer"),  # other scripts' digits are not numbers here
    (["train", "--layers", ""], "layers: expected comma-separated integers like 500,500, got ''"),
    (["train", "--algo", ""], "algo: '' is not allowed; choose one of ff, fgff, mf, bp"),
    (["train", "--download", "--label-value", "-1"], "label_value: -1 is out of range"),
    (["train", "--batch-size", "half"], "batch_size: expected an integer in [0, 10000000] or 'full'"),
    (["train", "--data-dir", "a\x01" * 3000], "data_dir: expected a folder path (at most 4096 characters"),
    (["train", "--epochs"], "argument --epochs: expected one argument"),
    (["train", "--bogus", "3"], "unrecognized arguments: '--bogus 3'"),
    (["train", "--preset", "nope"], "argument --preset: invalid choice"),
    ([], "the following arguments are required: COMMAND"),
])
def test_bad_command_lines_give_one_line_and_exit_2(capsys, argv, sentence):
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err  # one line, not the usage block
    assert sentence in err


HUGE_LAYERS = ",".join(["1000"] * 20_000)  # 100 kB


@pytest.mark.parametrize("argv, sentence", [
    (["train", "--layers", HUGE_LAYERS], "layers: expected 1 to 16 hidden layer sizes"),
    (["train", "--layers", *HUGE_LAYERS.split(",")], "unrecognized arguments: '1000 1000"),
    (["train", "--layers=" + HUGE_LAYERS.replace(",", "x")], "layers: expected 1 to 16"),
    (["train", "--l=" + HUGE_LAYERS], "ambiguous option: '--l=1000,1000"),
    (["train", "--preset", HUGE_LAYERS], "argument --preset: invalid choice: '1000,1000"),
    (["train", "--executor", HUGE_LAYERS], "argument --executor: invalid choice: '1000,1000"),
    ([HUGE_LAYERS], "argument COMMAND: invalid choice: '1000,1000"),
    (["train", "--save", HUGE_LAYERS], "argument --save: expected a path of at most 4096 characters"),
    (["train", "--config", HUGE_LAYERS], "argument --config: expected a path of at most 4096 characters"),
    (["reproduce", "--seeds", HUGE_LAYERS], "argument --seeds: expected an integer in [1, 100], got '1000,"),
])
def test_a_100_kb_value_is_cut_in_the_one_line_error(capsys, argv, sentence):
    """Issue 38: a 100 kB --layers value came back whole in the error."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert sentence in err
    assert len(err) < 600 and "1000," * 20 not in err  # the value is cut to its first few dozen characters


def test_unknown_keys_of_a_config_file_are_cut_too(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({HUGE_LAYERS: 1, **{f"x{i}": 1 for i in range(10)}}))
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown config field(s) ['1000,1000" in err and "...]" in err
    assert len(err) < 1000 and "1000," * 20 not in err


@pytest.mark.parametrize("content, sentence", [
    ("[1, 2]", "holds JSON list, expected an object"),
    ('{"lr": ', "is not a JSON object"),
    ("[" * 100_000, "is not a JSON object"),
    (b"\xff\xfe\x00", "is not a JSON object"),
    ('{"epoch": 3}', "unknown config field(s) ['epoch']"),
    ('{"lr": NaN}', "lr: expected a number in (0.0, 10.0], got nan"),
    ('{"layers": "500,500", "epochs": "2.5"}', "epochs: expected an integer"),
])
def test_bad_config_files_are_one_sentence(tmp_path, capsys, content, sentence):
    path = tmp_path / "c.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["train", "--config", str(path)]) == 2
    assert sentence in capsys.readouterr().err


def test_config_that_is_a_folder_missing_or_huge(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "none.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    big = tmp_path / "big.json"
    big.write_text('{"seed": 1' + " " * (2 << 20) + "}")
    assert main(["train", "--config", str(big)]) == 2
    assert "larger than 1 MiB;" in capsys.readouterr().err


def _trained_no_epochs(monkeypatch) -> list:
    """Make training observable: record whether the Trainer was built."""
    import fgff_core.engine.training as training

    built = []
    real = training.Trainer.__init__

    def spy(self, *a, **kw):
        built.append(True)
        real(self, *a, **kw)

    monkeypatch.setattr(training.Trainer, "__init__", spy)
    return built


@pytest.mark.parametrize("target, sentence", [
    ("missing/m.safetensors", "does not exist (create it first)"),
    ("folder", "it is a folder"),
])
def test_a_bad_save_target_is_refused_before_training(tmp_path, capsys, monkeypatch, target, sentence):
    (tmp_path / "folder").mkdir()
    built = _trained_no_epochs(monkeypatch)
    code = main(["train", "--layers", "8", "--epochs", "1", "--save", str(tmp_path / target), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and sentence in err and len(err.strip().splitlines()) == 1
    assert built == []  # refused before any training
    assert not (tmp_path / "missing").exists()  # parents are not created silently
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"] and not any((tmp_path / "folder").iterdir())


def test_train_subset_larger_than_the_dataset_is_said_to_be_clamped(capsys):
    assert main(["train", "--layers", "8", "--epochs", "1", "--eval-every", "0", "--train-subset", "5000",
                 "--quiet"]) == 0
    assert "warning: train_subset 5000 is larger than the digits training set: using all 1347 samples" in \
        capsys.readouterr().err


@pytest.mark.parametrize("argv, sentence", [
    (["reproduce", "--seeds", "0"], "argument --seeds: expected an integer in [1, 100], got '0'"),
    (["reproduce", "--device", "tpu"], "device: 'tpu' is not allowed"),
    (["reproduce", "--data-dir", "a\x00b"], "data_dir: expected a folder path"),
])
def test_reproduce_flags_are_checked_before_anything_runs(capsys, argv, sentence):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and sentence in err and len(err.strip().splitlines()) == 1


def test_reproduce_with_a_data_dir_that_is_not_a_folder_fails_before_any_table(tmp_path, capsys):
    not_a_folder = tmp_path / "passwd"
    not_a_folder.write_text("root:x:0:0\n")
    out = tmp_path / "out"
    assert main(["reproduce", "--table", "1", "--data-dir", str(not_a_folder), "--out", str(out)]) == 2
    assert "data_dir" in capsys.readouterr().err and not out.exists()


def test_reproduce_out_that_is_a_file_is_one_sentence(tmp_path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("")
    assert main(["reproduce", "--table", "1", "--out", str(blocker / "tables")]) == 2
    err = capsys.readouterr().err
    assert "out:" in err and "Errno" not in err
