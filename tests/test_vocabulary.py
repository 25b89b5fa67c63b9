"""The algorithm vocabulary: which algorithms have goodness and significance factors s, which train s, and
how people see their names; one definition, importable without torch or the rest of fgff_core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fgff_core.config as config
from fgff_core import vocabulary
from fgff_core.config import RunConfig
from fgff_core.vocabulary import (
    ALGORITHM_LABELS,
    ALGORITHMS,
    CANCEL_NONE,
    CANCEL_SHUTDOWN,
    CANCEL_USER,
    KILLED,
    RunStatus,
    algo_label,
    has_factors,
    has_goodness,
    stopped,
    trains_factors,
    trains_locally,
)


@pytest.mark.parametrize("algo, local, goodness, factors, trained", [
    ("ff", True, True, True, False),  # FF has s, kept at 1
    ("fgff", True, True, True, True),
    ("mf", True, False, False, False),  # Mono-Forward: a local cross-entropy per layer, no goodness, no s
    ("bp", False, False, False, False),  # trained end to end: no goodness, no s
])
def test_each_algorithm_has_goodness_and_factors_as_the_paper_defines(algo, local, goodness, factors, trained):
    assert (trains_locally(algo), has_goodness(algo), has_factors(algo), trains_factors(algo)) == \
        (local, goodness, factors, trained)
    assert RunConfig(algo=algo).trains_factors is trained


def test_an_unknown_name_has_neither_goodness_nor_factors():
    assert not has_goodness("xx") and not has_factors("xx") and not trains_factors("xx")
    assert not trains_locally("xx")


def test_every_algorithm_has_one_label_and_an_unknown_name_shows_as_given():
    assert [algo_label(a) for a in ALGORITHMS] == ["FF", "FGFF", "MF", "BP"]
    assert set(ALGORITHM_LABELS) == set(ALGORITHMS)
    assert algo_label("xx") == "xx"


def test_the_names_are_still_importable_from_config_and_are_the_same_objects():
    assert config.ALGORITHMS is vocabulary.ALGORITHMS
    assert config.ALGORITHM_LABELS is vocabulary.ALGORITHM_LABELS


def test_the_config_schema_offers_exactly_the_vocabulary_s_algorithms():
    assert config.field_choices("algo") == ALGORITHMS


def test_a_bp_run_counts_one_epoch_event_per_epoch_and_ff_one_per_layer_and_epoch():
    assert RunConfig(algo="bp", layers=(8, 8), epochs=3).epoch_events == 3
    assert RunConfig(algo="ff", layers=(8, 8), epochs=3).epoch_events == 6
    assert RunConfig(algo="mf", layers=(8, 8), epochs=3).epoch_events == 6  # MF too: a local loss per layer


def test_the_vocabulary_imports_nothing_from_fgff_core():
    tree = ast.parse(Path(vocabulary.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("fgff_core")] and not any(
        n.level for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))


def test_a_users_cancel_ends_cancelled_without_a_reason_and_the_server_stopping_ends_interrupted_with_one():
    assert stopped(CANCEL_USER) == stopped(CANCEL_NONE) == (RunStatus.CANCELLED, None)
    assert stopped(CANCEL_USER, started=False, how="ignored") == (RunStatus.CANCELLED, None)
    assert stopped(CANCEL_SHUTDOWN, started=False) == (
        RunStatus.INTERRUPTED, "the server stopped before this run started; resubmit it")
    assert stopped(CANCEL_SHUTDOWN) == (
        RunStatus.INTERRUPTED, "the server stopped while this run was running; resubmit it to train again")
    assert stopped(CANCEL_SHUTDOWN, how="found on restart").reason == (
        "the server stopped while this run was running (found on restart); resubmit it to train again")
    assert KILLED.status == RunStatus.CANCELLED and "killed" in KILLED.reason
