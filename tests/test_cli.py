import json
import subprocess
import sys

import pytest

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


def test_bad_values_give_a_clear_error_and_exit_code_2(capsys):
    assert main(["train", "--epochs", "0"]) == 2
    assert "epochs: 0 is out of range; allowed [1, 1000000]" in capsys.readouterr().err
    assert main(["train", "--dataset", "mnist", "--data-dir", "/nonexistent-fgff", "--no-download"]) == 2
    assert "Dataset 'mnist' not found" in capsys.readouterr().err


def test_save_writes_a_loadable_checkpoint(tmp_path):
    from fgff_core.checkpoint import load_checkpoint

    path = tmp_path / "m.safetensors"
    assert main(["train", "--layers", "8", "--epochs", "2", "--eval-every", "0", "--save", str(path), "--quiet"]) == 0
    model, cfg = load_checkpoint(path)
    assert cfg.layers == (8,)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["presets"], ["datasets"]])
def test_help_and_listings_run_as_a_module(argv):
    proc = subprocess.run([sys.executable, "-m", "fgff_core", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
