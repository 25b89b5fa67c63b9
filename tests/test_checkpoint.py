import pickle

import pytest
import torch

from fgff_core.config import RunConfig, field_choices
from fgff_core.engine.checkpoint import CheckpointError, checkpoint_info, load_checkpoint, save_checkpoint
from fgff_core.engine.training import train


@pytest.mark.parametrize("algo", ["fgff", "bp"])
def test_round_trip_keeps_weights_significance_config_and_predictions(tmp_path, digits, algo):
    cfg = RunConfig(algo=algo, layers=(16, 8), epochs=5, eval_every=0, device="cpu", label_value="max")
    trainer, _ = train(cfg, digits)
    path = save_checkpoint(tmp_path / "run.safetensors", trainer.model, cfg)
    model, loaded_cfg = load_checkpoint(path)
    assert loaded_cfg == cfg
    for (name, a), (_, b) in zip(trainer.model.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(model.predict(digits.x_test), trainer.model.predict(digits.x_test))
    assert checkpoint_info(path)["config"]["algo"] == algo


def test_a_pickled_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        load_checkpoint(bad)
    torch_file = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2), "evil": Evil()}, torch_file)
    with pytest.raises(CheckpointError):
        load_checkpoint(torch_file)
    assert not marker.exists()


def test_a_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(CheckpointError, match="not an FGFF Explorer checkpoint"):
        load_checkpoint(path)


# -- untrusted metadata (issue 16) ---------------------------------------------------------------

import errno  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tracemalloc  # noqa: E402

from safetensors.torch import save_file  # noqa: E402

from fgff_core.engine.checkpoint import CheckpointSaveError, check_save_target  # noqa: E402
from fgff_core.engine.model import BPNet, FFNet  # noqa: E402

SMALL = RunConfig(layers=(20, 20), epochs=1)


def _crafted(tmp_path, **meta_changes):
    """A real 20x20 FGFF checkpoint whose metadata is then changed as an attacker would."""
    model = FFNet(64, (20, 20), 10)
    meta = {"format": "fgff-checkpoint/1", "config": SMALL.to_json(), "input_dim": "64",
            "n_classes": "10", "label_value": "1.0", **meta_changes}
    path = tmp_path / "crafted.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)
    return path


@pytest.mark.parametrize("changes, sentence", [
    ({"config": RunConfig(layers=(30000, 30000)).to_json()}, "layers [30000, 30000], input_dim 64) implies [30000]"),
    ({"input_dim": str(10**12)}, "input_dim must be an integer in [1, 16777216]"),
    ({"input_dim": "-3"}, "input_dim must be an integer"),
    ({"label_value": "nan"}, "label_value: expected a number in (0.0, 1000.0]"),
    ({"label_value": "abc"}, "label_value: expected a number"),
    ({"label_value": "max"}, "label_value must be a number"),
    ({"n_classes": "0"}, "n_classes must be an integer in [2, 1000]"),
    ({"config": json.dumps({**SMALL.to_dict(), "lr": "inf"})}, "lr: expected a number"),
    ({"config": json.dumps({**SMALL.to_dict(), "layers": [20, 20, 20]})}, "do not match its config"),
    ({"config": "[" * 10_000}, "damaged metadata"),
    ({"config": "not json"}, "config is not valid JSON"),
    ({"config": " " * 100_000}, "more than 65536 characters of metadata"),
])
def test_crafted_metadata_is_refused_from_the_header_before_any_model_is_built(tmp_path, monkeypatch, changes,
                                                                               sentence):
    path = _crafted(tmp_path, **changes)

    def no_model(*_args, **_kwargs):
        raise AssertionError("a model was built from metadata that should have been refused")

    # Building the claimed 30000x30000 model would cost ~4 GB and ~20 s: every check must come first.
    monkeypatch.setattr(FFNet, "__init__", no_model)
    monkeypatch.setattr(BPNet, "__init__", no_model)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sentence in str(err.value)
    assert peak < 100 * 2**20  # little memory on the Python side too (tracemalloc does not see torch)
    with pytest.raises(CheckpointError):
        checkpoint_info(path)  # the listing is checked the same way


def test_a_tensor_with_the_wrong_shape_or_dtype_is_refused(tmp_path):
    model = BPNet(64, (8,), 10)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"format": "fgff-checkpoint/1", "config": RunConfig(algo="bp", layers=(8,)).to_json(),
            "input_dim": "64", "n_classes": "10", "label_value": ""}
    save_file({**tensors, "head.bias": torch.zeros(11)}, str(tmp_path / "a.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match=r"tensor head.bias has shape \[11\] .* implies \[10\]"):
        load_checkpoint(tmp_path / "a.safetensors")
    save_file({**tensors, "head.bias": torch.zeros(10, dtype=torch.int64)}, str(tmp_path / "b.safetensors"),
              metadata=meta)
    with pytest.raises(CheckpointError, match="not floating point"):
        load_checkpoint(tmp_path / "b.safetensors")
    for bad in (float("nan"), float("inf")):  # a diverged or doctored model is not imported as "done"
        save_file({**tensors, "head.bias": torch.full((10,), bad)}, str(tmp_path / "c.safetensors"), metadata=meta)
        with pytest.raises(CheckpointError, match="tensor head.bias holds NaN or infinite values"):
            load_checkpoint(tmp_path / "c.safetensors")


@pytest.mark.parametrize("bias", [torch.zeros(10, dtype=torch.int64), torch.zeros(10, dtype=torch.bool),
                                  torch.full((10,), float("nan")), torch.full((10,), float("inf"))],
                         ids=["int", "bool", "nan", "inf"])
def test_checkpoint_info_refuses_what_loading_refuses_with_the_same_sentence(tmp_path, bias):
    """Issue 38: the listing accepted int, bool and NaN-weight tensors that a load refuses."""
    model = BPNet(64, (8,), 10)
    meta = {"format": "fgff-checkpoint/1", "config": RunConfig(algo="bp", layers=(8,)).to_json(),
            "input_dim": "64", "n_classes": "10", "label_value": ""}
    path = tmp_path / "bad.safetensors"
    save_file({**{k: v.contiguous() for k, v in model.state_dict().items()}, "head.bias": bias}, str(path),
              metadata=meta)
    with pytest.raises(CheckpointError) as loading:
        load_checkpoint(path)
    with pytest.raises(CheckpointError) as listing:
        checkpoint_info(path)
    assert str(listing.value) == str(loading.value)
    assert "tensor head.bias" in str(listing.value)


@pytest.mark.parametrize("where, sentence", [("missing.safetensors", "does not exist"), (".", "is a folder"),
                                             ("/dev/null", "is not a regular file")])
def test_a_path_that_is_no_file_is_a_checkpoint_error(tmp_path, where, sentence):
    with pytest.raises(CheckpointError, match=sentence):
        load_checkpoint(tmp_path / where)


# -- saving ---------------------------------------------------------------------------------------

def _model():
    return FFNet(64, (8,), 10)


def test_save_is_atomic_and_replaces_an_existing_file(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_text("old")
    save_checkpoint(path, _model(), RunConfig(layers=(8,)))
    assert load_checkpoint(path)[1].layers == (8,)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary file left


def test_save_targets_are_checked(tmp_path):
    with pytest.raises(CheckpointSaveError, match="does not exist"):
        save_checkpoint(tmp_path / "no" / "m.safetensors", _model(), RunConfig(layers=(8,)))
    assert not (tmp_path / "no").exists()
    (tmp_path / "m.safetensors").mkdir()
    with pytest.raises(CheckpointSaveError, match="it is a folder"):
        check_save_target(tmp_path / "m.safetensors")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointSaveError, match="is not a folder"):
        check_save_target(tmp_path / "file" / "m.safetensors")


def test_a_full_disk_is_one_sentence_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    import os

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(CheckpointSaveError) as err:
        save_checkpoint(tmp_path / "m.safetensors", _model(), RunConfig(layers=(8,)))
    target = tmp_path / "m.safetensors"
    assert str(err.value) == f"cannot save the model to {target}: no space left on device in {tmp_path}"
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_fs(tmpfs):
    """A real 64 KiB filesystem (needs the right to mount; skipped elsewhere)."""
    return tmpfs("size=64k")


def test_a_really_full_and_a_read_only_filesystem(tiny_fs):
    big = FFNet(64, (200,), 10)  # about 60 KiB of weights: does not fit beside the probe
    (tiny_fs / "filler").write_bytes(b"x" * 40_000)
    with pytest.raises(CheckpointSaveError, match="no space left on device"):
        save_checkpoint(tiny_fs / "m.safetensors", big, RunConfig(layers=(200,)))
    assert sorted(p.name for p in tiny_fs.iterdir()) == ["filler"]
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    with pytest.raises(CheckpointSaveError, match="is not writable"):
        check_save_target(tiny_fs / "m.safetensors")


def test_a_device_or_other_special_file_is_never_replaced(tmp_path):
    with pytest.raises(CheckpointSaveError, match="not a regular file"):
        check_save_target("/dev/null")


def test_a_header_with_too_many_tensors_is_refused_before_their_shapes_are_read(tmp_path):
    meta = {"format": "fgff-checkpoint/1", "config": SMALL.to_json(), "input_dim": "64", "n_classes": "10",
            "label_value": "1.0"}
    save_file({f"t{i}": torch.zeros(1) for i in range(200)}, str(tmp_path / "many.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="holds 200 tensors; a checkpoint of at most 16 layers holds at most 50"):
        load_checkpoint(tmp_path / "many.safetensors")


# -- checkpoints written before FFLayer's parameter was renamed (issue 35 case 1) ----------------

def _old_checkpoint(tmp_path, param: str, keep_new_name: bool = False):
    """(model, path): the model saved as before the rename, its raw parameter named layers.{i}.significance."""
    cfg = RunConfig(layers=(8, 6), epochs=1, significance_param=param)
    model = FFNet(64, cfg.layers, 10, significance_param=param)
    with torch.no_grad():
        for layer in model.layers:
            layer.s_raw.copy_(torch.linspace(-0.5, 1.5, len(layer.s_raw)))
    tensors = {k.replace(".s_raw", ".significance"): v.contiguous() for k, v in model.state_dict().items()}
    if keep_new_name:
        tensors |= {k: v.clone() for k, v in model.state_dict().items() if k.endswith(".s_raw")}
    meta = {"format": "fgff-checkpoint/1", "config": cfg.to_json(), "input_dim": "64", "n_classes": "10",
            "label_value": "1.0"}
    path = tmp_path / f"old-{param}.safetensors"
    save_file(tensors, str(path), metadata=meta)
    return model, path


@pytest.mark.parametrize("param", field_choices("significance_param"))
def test_an_old_checkpoint_loads_with_the_same_factors_s(tmp_path, param):
    model, path = _old_checkpoint(tmp_path, param)
    loaded, cfg = load_checkpoint(path)
    assert cfg.significance_param == param
    for a, b in zip(loaded.significance(), model.significance()):
        assert torch.equal(a, b)
    assert checkpoint_info(path)["config"]["significance_param"] == param


def test_a_checkpoint_with_the_parameter_under_both_names_is_refused(tmp_path):
    _, path = _old_checkpoint(tmp_path, "exp", keep_new_name=True)
    with pytest.raises(CheckpointError, match="under its old name 'significance' and its new name 's_raw'"):
        load_checkpoint(path)
