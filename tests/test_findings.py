"""Sentences for people (fgff_core.analysis.findings): negative factors, runs at chance level."""

from __future__ import annotations

import numpy as np

from fgff_core.analysis import findings
from fgff_core.config.presets import preset_config


def test_negative_factors_are_counted_and_named_per_layer():
    factors = [np.array([1.2, 0.5, 1.0]), np.array([-0.1, -2.0, 0.3, -0.5, -0.01, -1.0, 2.0])]
    assert findings.negative_factors(factors) == [0, 5]
    assert findings.negative_factor_sentence(factors, "fgff") == (
        "5 neurons of layer 2 have factors below 0: their activity lowers the goodness "
        "(constraint-violation detectors, section III.E).")
    one = findings.negative_factor_sentence([np.array([-1.0, 1.0]), None], "fgff")
    assert one.startswith("1 neuron of layer 1 has a factor below 0: its activity")
    both = findings.negative_factor_sentence([np.array([-1.0, -1.0]), np.array([-3.0])], "fgff")
    assert both.startswith("2 neurons of layer 1 and 1 neuron of layer 2 have factors below 0")
    assert findings.negative_factor_sentence([np.ones(4)], "fgff").startswith("No factor is below 0")
    assert findings.negative_factor_sentence([np.ones(4)], "ff").startswith("Every factor is 1")


def test_chance_hint_for_too_few_full_batch_steps():
    mnist = preset_config("quick-digits", "fgff").replace(dataset="mnist", epochs=30, batch_size=0)
    assert findings.steps_per_layer(mnist) == 30
    hint = findings.chance_hint({"test_acc": 0.1135, "config": mnist.to_dict()})
    assert "chance level (11.35 %" in hint and "only 30 training steps" in hint and "Quick demo" in hint
    assert findings.chance_hint({"test_acc": 0.94, "config": mnist.to_dict()}) is None
    assert findings.chance_hint({"test_acc": float("nan"), "config": mnist.to_dict()}) is None
    assert findings.chance_hint({"test_acc": None, "config": mnist.to_dict()}) is None
    minibatch = mnist.replace(batch_size=100)
    assert findings.steps_per_layer(minibatch) == 30 * 600
    assert "only" not in findings.chance_hint({"test_acc": 0.1, "config": minibatch.to_dict()})


def test_chance_note_is_the_one_line_verdict_of_a_run_at_chance():
    mnist = preset_config("quick-digits", "fgff").replace(dataset="mnist", epochs=30, batch_size=0, lr=0.06)
    assert findings.chance_note(mnist, 0.1135) == (
        "at chance: each layer had only 30 training steps (full-batch FF needs about 100 or more per layer before "
        "the label weights learn); train more epochs or use mini-batches (batch size)")
    minibatch = mnist.replace(batch_size=100)
    assert findings.chance_note(minibatch, 0.1) == "at chance: the run diverged; lower lr (now 0.06)"
    assert findings.chance_note(mnist, 0.94) is None and findings.chance_note(mnist, None) is None
