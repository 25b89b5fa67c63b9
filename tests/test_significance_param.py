"""The factor s, not its raw parameter, is what import, the lesson and the Significance page show (issue 35 case 1).

For every ``significance_param`` the config allows, a tiny FGFF digits run is trained through the job
worker's code path, exported as the Runs page exports it, its checkpoint imported as the Runs page
imports an upload, and the imported run's factors compared with the trained model's ``s()``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from fgff_core import lesson
from fgff_core.config import RunConfig, field_choices
from fgff_core.engine.model import FFNet, goodness
from fgff_core.jobs import worker_main
from fgff_core.store import CHECKPOINT_NAME, RunStore, export_run, import_checkpoint
from fgff_core.viz import significance as sv

PARAMS = field_choices("significance_param")


@dataclass(frozen=True)
class RoundTrip:
    """A trained run, its export imported back as a second run, and the trained model's factors."""

    store: RunStore
    trained_id: str
    imported_id: str
    s: list[np.ndarray]  # the trained model's s(), one (neurons,) array per layer


@pytest.fixture(scope="module", params=PARAMS)
def round_trip(request, tmp_path_factory) -> RoundTrip:
    root = tmp_path_factory.mktemp(f"runs-{request.param}")
    store = RunStore(root / "runs")
    cfg = RunConfig(algo="fgff", dataset="digits", layers=(8, 6), epochs=4, eval_every=0, sig_lr=0.5, seed=0,
                    significance_param=request.param)
    trained_id = store.create_run(cfg, name=f"s {request.param}")
    assert store.queue.claim(trained_id)
    worker_main(str(store.root), trained_id)  # the job worker's code path, in this process
    assert store.status(trained_id) == "done"
    model, _ = store.load_model(trained_id)
    s = [layer.s().detach().numpy() for layer in model.layers]
    archive = export_run(store, trained_id, root / "exports")
    with zipfile.ZipFile(archive) as zf:
        upload = Path(zf.extract(CHECKPOINT_NAME, root / "upload"))
    imported_id = import_checkpoint(store, upload, name=f"imported s {request.param}")
    return RoundTrip(store, trained_id, imported_id, s)


def test_the_run_has_moved_its_factors_off_one(round_trip):
    """Otherwise s and its raw parameter could agree by chance (both 1 when unconstrained)."""
    assert all(not np.allclose(s, 1.0, atol=0.05) for s in round_trip.s)
    # the trained model's s() is the factor the training loop recorded after each layer's last epoch
    trained = round_trip.store.significance(round_trip.trained_id)
    for history, s in zip(trained, round_trip.s):
        np.testing.assert_array_equal(history[-1], s)


def test_import_stores_the_models_s(round_trip):
    stored = round_trip.store.significance(round_trip.imported_id)
    assert [a.shape for a in stored] == [(1, len(s)) for s in round_trip.s]
    for got, s in zip(stored, round_trip.s):
        np.testing.assert_array_equal(got[0], s)


def test_significance_page_data_is_s(round_trip):
    """What the Significance page draws: ``RunStore.significance`` through ``significance_at``."""
    for run_id in (round_trip.trained_id, round_trip.imported_id):
        rows = sv.significance_at(round_trip.store.significance(run_id), None)
        for got, s in zip(rows, round_trip.s):
            np.testing.assert_array_equal(got, s)


@pytest.fixture
def imported_model(round_trip) -> tuple[FFNet, RunConfig]:
    """The imported run's model as the lesson's step 4 loads a stored run."""
    model, config = round_trip.store.load_model(round_trip.imported_id)
    assert isinstance(model, FFNet)
    return model, config


def test_lesson_layer_view_shows_s(round_trip, imported_model, digits):
    """Step 2: one layer's factors and its goodness (eq. 3) for one image."""
    model, config = imported_model
    x, true = digits.x_test[:1], int(digits.y_test[0])
    wrong = lesson.default_wrong_label(true, config.seed)
    for i, s in enumerate(round_trip.s):
        view = lesson.layer_view(model, x, true, wrong, i, config.threshold, config.delta)
        np.testing.assert_array_equal(view.significance, s)
        assert view.g_pos == pytest.approx(float(np.mean(s * view.h_pos ** 2)), rel=1e-5)


def test_lesson_goodness_distributions_use_s(round_trip, imported_model, digits):
    """Step 3: each sample's goodness is eq. (3) with the factors s."""
    model, config = imported_model
    x, y = digits.x_test[:50], digits.y_test[:50]
    with torch.no_grad():
        pos = model.layer_outputs(x, y)
    for dist, h, s in zip(lesson.goodness_distributions(model, x, y, config.seed), pos, round_trip.s):
        np.testing.assert_allclose(dist.g_pos, goodness(h, torch.from_numpy(s)).numpy(), rtol=1e-5)


def test_lesson_roles_read_s(round_trip, imported_model, digits):
    """Step 4: the factor column the neuron roles are read from."""
    model, config = imported_model
    activity = lesson.model_activity(model, digits, seed=config.seed)
    for i, s in enumerate(round_trip.s):
        np.testing.assert_array_equal(activity.loc[activity["layer"] == i, "significance"].to_numpy(), s)
