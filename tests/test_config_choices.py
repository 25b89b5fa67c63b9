"""Issue 35 item 6: one ``check_choice`` says "value not allowed; choose one of ..." for every choice check, with
the list that config (or the module that owns the concept) already holds: no hand-written copies."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from fgff_core.analysis.compare import CURVE_METRICS, aggregate_curves, comparison_configs
from fgff_core.config import RunConfig
from fgff_core.config.choices import LOSSES, LR_SCHEDULES, OPTIMIZERS, SIGNIFICANCE_PARAMS
from fgff_core.config.form import choice_param, preset_param
from fgff_core.config.presets import PRESETS, preset_config
from fgff_core.config.values import check_choice
from fgff_core.data import load_dataset
from fgff_core.engine.goodness import layer_loss
from fgff_core.engine.model import FFLayer
from fgff_core.engine.optim import lr_factor, make_optimizer
from fgff_core.engine.reference import SUPPORTED, check_supported
from fgff_core.jobs.executors import EXECUTOR_ENV, EXECUTORS, check_executor
from fgff_core.lesson import lesson_config, parse_lesson_params
from fgff_core.lesson.settings import LESSON_ALGOS
from fgff_core.reproduce.paper import BUDGETS, get_budget
from fgff_core.store import RunStore
from fgff_core.viz.compare import curves_figure
from fgff_core.viz.significance import colour_values
from fgff_core.vocabulary import ALGORITHMS


def refusal(field: str, value, choices, also: str = "") -> str:
    with pytest.raises(ValueError) as err:
        check_choice(field, value, choices, also)
    return str(err.value)


def test_check_choice_passes_an_allowed_value_and_names_the_field_and_the_choices_otherwise():
    assert check_choice("optimizer", "sgd", OPTIMIZERS) == "sgd"
    assert refusal("optimizer", "lbfgs", OPTIMIZERS) == \
        "optimizer: 'lbfgs' is not allowed; choose one of adam, adamw, sgd"
    assert refusal("device", "tpu", ("auto", "cpu"), also="cuda:N") == \
        "device: 'tpu' is not allowed; choose one of auto, cpu or cuda:N"
    assert refusal("samples", 7, (250, 500)) == "samples: 7 is not allowed; choose one of 250, 500"
    long = refusal("algo", "x" * 100_000, ALGORITHMS)  # a hostile value is cut, not echoed
    assert len(long) < 150 and long.endswith("choose one of ff, fgff, mf, bp")


# place: (the call that must refuse, field, value, the list it must name)
PLACES = {
    "loss": (lambda _: layer_loss(torch.zeros(2), torch.zeros(2), "mse", 2.0, 0.5), "loss", "mse", LOSSES),
    "lr_schedule": (lambda _: lr_factor("step", 1, 10), "lr_schedule", "step", LR_SCHEDULES),
    "optimizer": (lambda _: make_optimizer([], SimpleNamespace(optimizer="lbfgs")), "optimizer", "lbfgs", OPTIMIZERS),
    "significance_param": (lambda _: FFLayer(4, 3, significance_param="square"), "significance_param", "square",
                           SIGNIFICANCE_PARAMS),
    "preset": (lambda _: preset_config("nope"), "preset", "nope", PRESETS),
    "budget": (lambda _: get_budget("nope"), "budget", "nope", BUDGETS),
    "spread": (lambda _: curves_figure(pd.DataFrame(), "test_acc", spread="band"), "spread", "band",
               ("std", "min-max", "none")),
    "scale": (lambda _: colour_values(np.ones((2, 2)), scale="log"), "scale", "log", ("global", "per-layer")),
    "algos": (lambda _: comparison_configs(RunConfig(), algos=("ff", "sgd")), "algos", "sgd", ALGORITHMS),
    "metric": (lambda _: aggregate_curves(None, {}, "nothing"), "metric", "nothing", CURVE_METRICS),
    "dataset": (lambda _: load_dataset("svhn"), "dataset", "svhn", ("digits", "mnist", "fashion_mnist", "cifar10")),
    "train_subset_order": (lambda _: load_dataset(train_subset_order="random"), "train_subset_order", "random",
                           ("shuffled", "first")),
    "normalize": (lambda _: load_dataset(normalize="none"), "normalize", "none", ("data", "authors")),
    "status": (lambda tmp: RunStore(tmp / "runs").create_run(RunConfig(), status="finished"), "status", "finished",
               ("queued", "running", "done", "failed", "cancelled", "interrupted")),
    "executor": (lambda _: check_executor("slurm"), "executor", "slurm", EXECUTORS),
    "lesson algo": (lambda _: lesson_config("bp"), "algo", "bp", LESSON_ALGOS),
}


@pytest.mark.parametrize("place", list(PLACES))
def test_each_choice_check_refuses_in_check_choices_words_with_the_owners_list(place, tmp_path):
    call, field, value, choices = PLACES[place]
    with pytest.raises(ValueError) as err:
        call(tmp_path)
    assert str(err.value) == refusal(field, value, choices)


def test_the_reference_says_what_it_does_not_implement_in_the_same_words():
    with pytest.raises(ValueError) as err:
        check_supported(RunConfig(algo="bp"))
    assert str(err.value) == refusal("algo", "bp", SUPPORTED["algo"]) + " (the reference implements Algorithm 1 only)"


def test_the_executor_named_by_the_environment_is_refused_under_the_variables_name(monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, "slurm")
    with pytest.raises(ValueError, match=re.escape(refusal(f"${EXECUTOR_ENV}", "slurm", EXECUTORS))):
        check_executor(None)


def test_a_refused_link_choice_falls_back_and_says_why_in_the_same_words():
    errors: list[str] = []
    assert choice_param({"samples": ["250", " 500 "]}, "samples", "250", ("250", "500"), errors) == "500"
    assert choice_param({}, "samples", "250", ("250", "500"), errors) == "250" and errors == []
    assert preset_param({"preset": "nope"}, "quick-digits", errors) == "quick-digits"
    assert errors == ["preset=nope: " + refusal("preset", "nope", PRESETS) + "; using quick-digits"]
    settings, errors = parse_lesson_params({"algo": "bp"}, 10)
    assert settings.config.algo == "fgff"
    assert errors == ["algo=bp: " + refusal("algo", "bp", LESSON_ALGOS) + "; using fgff"]
