"""Form labels (fgff_core.config.labels): every config field has a human label; the help keeps the name."""

from __future__ import annotations

from fgff_core.config import config_fields
from fgff_core.config.labels import FIELD_LABELS, field_help, field_label


def test_every_config_field_has_a_human_label():
    names = [f.name for f in config_fields()]
    assert sorted(set(names) - set(FIELD_LABELS)) == []
    assert field_label("lr") == "Learning rate (weights)" and field_label("batch_size") == "Batch size (0 = full batch)"
    assert field_label("not_a_field") == "not a field"


def test_help_keeps_the_technical_name():
    text = field_help("sig_lr", "Learning rate of the significance factors.")
    assert text.startswith("Learning rate of the significance factors.") and "`sig_lr`" in text and "--sig-lr" in text


def test_every_algorithm_is_named_in_full_for_a_legend():
    """Issue 39 item 6: "bp" was never explained; the key under a legend or picker names each algorithm."""
    from fgff_core.config.labels import algorithms_key
    from fgff_core.vocabulary import ALGORITHMS

    assert algorithms_key(["bp", "ff"]) == "BP: backpropagation, the end-to-end baseline; FF: Forward-Forward."
    assert all(f"{a.upper()}: " in algorithms_key(ALGORITHMS) for a in ALGORITHMS)
    assert algorithms_key([]) == "" and algorithms_key(["sgd"]) == ""
