"""Random image shifts (``augment_shift``): the shift itself, its validation, and a training run with it."""

from __future__ import annotations

import pytest
import torch

from fgff_core.config import RunConfig
from fgff_core.engine.augment import background_value, random_shift
from fgff_core.engine.training import train


def _one_pixel_images(n: int, h: int = 9, w: int = 9) -> torch.Tensor:
    x = torch.zeros(n, 1, h, w)
    x[:, 0, h // 2, w // 2] = 1.0  # a single bright pixel in the centre
    return x.reshape(n, -1)


def test_each_image_moves_by_at_most_max_shift_and_keeps_its_content():
    x = _one_pixel_images(500)
    out = random_shift(x, (1, 9, 9), 2, torch.zeros(1), torch.Generator().manual_seed(0)).reshape(500, 9, 9)
    assert torch.equal(out.sum((1, 2)), torch.ones(500))  # the pixel is moved, never lost or doubled
    where = out.reshape(500, -1).argmax(1)
    dy, dx = where // 9 - 4, where % 9 - 4
    assert dy.abs().max() == 2 and dx.abs().max() == 2  # every offset in range, and the extremes occur
    assert len({(a, b) for a, b in zip(dy.tolist(), dx.tolist())}) == 25  # all 5 x 5 offsets are drawn


def test_the_uncovered_border_is_background_and_seeded_shifts_repeat():
    x = torch.full((64, 2 * 6 * 6), 3.0)
    bg = torch.tensor([-1.0, -2.0])
    out = random_shift(x, (2, 6, 6), 1, bg, torch.Generator().manual_seed(1)).reshape(64, 2, 6, 6)
    values = set(out[:, 0].unique().tolist()) | set(out[:, 1].unique().tolist())
    assert values <= {3.0, -1.0, -2.0} and (out[:, 0] != -2.0).all() and (out[:, 1] != -1.0).all()
    assert (out == 3.0).float().mean() < 1.0  # some borders were uncovered
    again = random_shift(x, (2, 6, 6), 1, bg, torch.Generator().manual_seed(1)).reshape(64, 2, 6, 6)
    assert torch.equal(out, again)
    assert torch.equal(random_shift(x, (2, 6, 6), 0, bg, torch.Generator()), x)


def test_background_is_the_normalised_zero_pixel():
    assert torch.allclose(background_value((0.5, 0.1), (0.25, 0.2)), torch.tensor([-2.0, -0.5]))


def test_augment_shift_is_validated_at_the_boundary():
    with pytest.raises(ValueError, match="augment_shift"):
        RunConfig(algo="ff", schedule="simultaneous", augment_shift=9)
    assert RunConfig(algo="bp", augment_shift=2).augment_shift == 2 and RunConfig(augment_shift=8).augment_shift == 8
    assert RunConfig.from_dict({"algo": "fgff", "schedule": "simultaneous", "augment_shift": "1"}).augment_shift == 1


@pytest.mark.parametrize("algo, schedule", [("ff", "simultaneous"), ("fgff", "greedy"), ("bp", "simultaneous")])
def test_a_run_with_shifts_trains_and_differs_from_one_without(algo, schedule):
    base = dict(algo=algo, dataset="digits", layers=(32, 32), epochs=4, batch_size=100, schedule=schedule,
                lr=1e-3 if algo == "bp" else 0.03, eval_every=0, seed=0, hard_negatives=0.5)
    plain, _ = train(base)
    again, _ = train(base)
    shifted, result = train({**base, "augment_shift": 1})
    assert result.status == "done" and 0.0 <= result.test_acc <= 1.0
    weights = [(p.model.state_dict()) for p in (plain, again, shifted)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # deterministic without shifts
    # the shifts have their own random stream: same batches and negatives, so only the images differ
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
