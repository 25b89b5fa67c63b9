import pickle

import pytest
import torch

from fgff_core.checkpoint import CheckpointError, checkpoint_info, load_checkpoint, save_checkpoint
from fgff_core.config import RunConfig
from fgff_core.training import train


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
