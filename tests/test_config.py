import json

import pytest

from fgff_core.config import RunConfig, config_fields


def test_defaults_follow_the_authors_code():
    cfg = RunConfig()
    assert (cfg.algo, cfg.dataset, cfg.epochs, cfg.batch_size) == ("fgff", "digits", 200, 0)
    assert (cfg.lr, cfg.sig_lr, cfg.threshold, cfg.loss, cfg.label_value) == (0.06, 0.15, 2.0, "softplus", 1.0)
    assert RunConfig(algo="bp").lr == 1e-3 and RunConfig(algo="bp").batch_size == 128


def test_json_and_dict_round_trip():
    cfg = RunConfig(algo="ff", layers=(50, 20), epochs=3, label_value="max", batch_size="full")
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert RunConfig.coerce(json.loads(cfg.to_json())) == cfg
    assert RunConfig.coerce({"algo": "ff", "layers": "50,20"}).layers == (50, 20)


@pytest.mark.parametrize("field, value, message", [
    ("algo", "sgd", "algo: 'sgd' is not allowed; choose one of ff, fgff, mf, bp"),
    ("dataset", "imagenet", "dataset: 'imagenet' is not allowed; choose one of digits, mnist, fashion_mnist, cifar10"),
    ("layers", (), "layers: expected 1 to 16 hidden layer sizes"),
    ("layers", (10, 0), "layers: each size must be an integer in [1, 65536], got 0"),
    ("layers", "10,x", "layers: expected comma-separated integers"),
    ("epochs", 0, "epochs: 0 is out of range; allowed [1, 1000000]"),
    ("epochs", 2.5, "epochs: expected an integer in [1, 1000000], got 2.5"),
    ("batch_size", -1, "batch_size: -1 is out of range; allowed [0, 10000000]"),
    ("batch_size", "half", "batch_size: expected an integer in [0, 10000000] or 'full', got 'half'"),
    ("optimizer", "lbfgs", "optimizer: 'lbfgs' is not allowed; choose one of adam, adamw, sgd"),
    ("lr", 0.0, "lr: 0.0 is out of range; allowed (0.0, 10.0]"),
    ("lr", float("nan"), "lr: expected a number in (0.0, 10.0], got nan"),
    ("sig_lr", -0.1, "sig_lr: -0.1 is out of range; allowed [0.0, 10.0]"),
    ("threshold", 0, "threshold: 0 is out of range; allowed (0.0, 1000.0]"),
    ("loss", "mse", "loss: 'mse' is not allowed; choose one of softplus, hinge, symba, exp_hinge"),
    ("delta", -1.0, "delta: -1.0 is out of range; allowed [0.0, 1000.0]"),
    ("label_value", "big", "label_value: expected a number in (0.0, 1000.0] or 'max', got 'big'"),
    ("label_value", 0.0, "label_value: 0.0 is out of range; allowed (0.0, 1000.0] or 'max'"),
    ("negatives", "all", "negatives: 'all' is not allowed; choose one of fixed, resample"),
    ("schedule", "random", "schedule: 'random' is not allowed; choose one of greedy, simultaneous"),
    ("seed", -1, "seed: -1 is out of range"),
    ("device", "tpu", "device: 'tpu' is not allowed; choose one of auto, cpu, cuda, mps or cuda:N"),
    ("eval_every", -1, "eval_every: -1 is out of range"),
    ("eval_subset", 0, "eval_subset: 0 is out of range"),
    ("eval_chunk", -1, "eval_chunk: -1 is out of range"),
    ("train_subset", -5, "train_subset: -5 is out of range"),
    ("train_subset_order", "random", "train_subset_order: 'random' is not allowed; choose one of shuffled, first"),
    ("normalize", "none", "normalize: 'none' is not allowed; choose one of data, authors"),
    ("normalize", "authors", "normalize: 'authors' needs dataset to be one of cifar10, not 'digits'"),
    ("download", "yes", "download: expected true or false, got 'yes'"),
    ("factorize", 1, "factorize: expected true or false, got 1"),
    ("precision", "fp16", "precision: 'fp16' is not allowed; choose one of fp32, tf32, bf16"),
    ("compile", None, "compile: expected true or false, got None"),
    ("log_every", 0, "log_every: 0 is out of range"),
    ("data_dir", 5, "data_dir: expected a folder path, got 5"),
    ("hard_negatives", 1.5, "hard_negatives: 1.5 is out of range; allowed [0.0, 1.0]"),
    ("hard_negatives_every", 0, "hard_negatives_every: 0 is out of range"),
    ("lr_schedule", "step", "lr_schedule: 'step' is not allowed; choose one of constant, linear, cosine"),
    ("weight_decay", -1.0, "weight_decay: -1.0 is out of range"),
    ("momentum", 1.0, "momentum: 1.0 is out of range; allowed [0.0, 0.999]"),
    ("peer_norm", -0.1, "peer_norm: -0.1 is out of range"),
    ("symba_alpha", 0.0, "symba_alpha: 0.0 is out of range; allowed (0.0, 100.0]"),
    ("predict_layers", "last", "predict_layers: 'last' is not allowed; choose one of all, skip_first"),
    ("readout_epochs", -1, "readout_epochs: -1 is out of range"),
    ("significance_param", "square", "significance_param: 'square' is not allowed; choose one of unconstrained"),
    ("augment_shift", 9, "augment_shift: 9 is out of range; allowed [0, 8]"),
])
def test_each_bad_value_is_rejected_with_its_field_and_range(field, value, message):
    with pytest.raises(ValueError) as err:
        RunConfig(**{field: value})
    assert message in str(err.value)


def test_every_field_has_a_validation_case_above():
    # Adding a field without a rejection test should fail here.
    tested = {"algo", "dataset", "layers", "epochs", "batch_size", "optimizer", "lr", "sig_lr", "threshold", "loss",
              "delta", "label_value", "negatives", "schedule", "seed", "device", "eval_every", "eval_subset",
              "eval_chunk", "train_subset", "train_subset_order", "normalize", "download", "factorize", "precision",
              "compile", "log_every", "data_dir", "hard_negatives", "hard_negatives_every", "lr_schedule",
              "weight_decay", "momentum", "peer_norm", "symba_alpha", "predict_layers", "readout_epochs",
              "significance_param", "augment_shift"}
    assert {f.name for f in config_fields()} == tested


def test_unknown_keys_and_non_mappings_are_rejected():
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['epoch'\]"):
        RunConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="config must be a mapping"):
        RunConfig.from_dict([1, 2])
    with pytest.raises(ValueError, match="config is not valid JSON"):
        RunConfig.from_json("{")


def test_ff_ignores_significance_lr():
    assert RunConfig(algo="ff", sig_lr=0.5).effective_sig_lr == 0.0
    assert RunConfig(algo="fgff", sig_lr=0.5).effective_sig_lr == 0.5


def test_a_config_from_a_reloaded_module_is_still_accepted():
    """Streamlit re-imports a changed module in a live server; a page may still hold the old class."""
    import importlib.util

    import fgff_core.config.schema as config_module

    spec = importlib.util.spec_from_file_location("fgff_core.config.schema", config_module.__file__)
    second_copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(second_copy)  # a second RunConfig class, sys.modules untouched
    old = second_copy.RunConfig(algo="ff", epochs=3)
    assert not isinstance(old, RunConfig)
    assert RunConfig.coerce(old) == RunConfig(algo="ff", epochs=3)
