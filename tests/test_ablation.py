"""Ablation curves (issue 34): the unpruned point, silencing against a hand-pruned network, goodness-only
removal down to one neuron against that neuron's own rule, the seeded random order, the settings."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from fgff_core.analysis.ablation import ablation_curves, kept_count, neuron_costs, removal_orders
from fgff_core.analysis.ablation_result import AblationResult, Curve
from fgff_core.analysis.ablation_settings import AblationSettings
from fgff_core.config.presets import PRESETS
from fgff_core.engine.training import train

WIDTHS = (16, 12)


@pytest.fixture(scope="module")
def model():
    """A small trained FGFF network whose factors differ (a trained one, so accuracy is far from chance)."""
    torch.set_num_threads(1)
    trainer, _ = train(PRESETS["tiny-digits"].config("fgff", layers=WIDTHS, epochs=300, eval_every=0))
    return trainer.model


def _accuracy(net, data, use_significance: bool) -> float:
    return (net.predict(data.x_test, use_significance=use_significance) == data.y_test).double().mean().item()


def test_removing_no_neuron_gives_the_unpruned_accuracy_exactly(model, digits):
    result = ablation_curves(model, digits, AblationSettings(fractions=(1.0, 0.5)))
    want = {"with_factors": _accuracy(model, digits, True), "without_factors": _accuracy(model, digits, False)}
    assert want["with_factors"] > 0.5  # a trained network: the equality below is not chance against chance
    assert len(result.curves) == 5 * 2 * 2 * (1 + len(WIDTHS))
    for curve in result.curves:
        assert curve.kept[0] == curve.n_neurons
        assert curve.accuracy[0] == want[curve.rule], curve[:4]
        assert curve.spread[0] == 0.0


def _zeroed(model, layer: int, neurons):
    """The network with these neurons' input weights and biases at zero, built by hand: their output is 0."""
    net = copy.deepcopy(model)
    with torch.no_grad():
        net.layers[layer].linear.weight[neurons] = 0.0
        net.layers[layer].linear.bias[neurons] = 0.0
    return net


@pytest.mark.parametrize("layer", [0, 1])
def test_a_silenced_neuron_equals_the_network_with_its_weights_zeroed(model, digits, layer):
    """Silence the first neuron(s) of the s order in one layer; the hand-zeroed network predicts the same."""
    width = WIDTHS[layer]
    fractions = ((width - 1) / width, 0.5)
    result = ablation_curves(model, digits, AblationSettings(orders=("s",), removals=("silenced",),
                                                             scopes=("layer",), fractions=fractions))
    order = torch.argsort(model.layers[layer].s().detach(), stable=True)
    for t, fraction in enumerate(fractions, start=1):
        net = _zeroed(model, layer, order[:width - kept_count(fraction, width)])
        for rule, use_s in (("with_factors", True), ("without_factors", False)):
            curve = result.curve(layer, "s", "silenced", rule)
            assert curve.accuracy[t] == _accuracy(net, digits, use_s), (t, rule)


def test_silencing_across_the_network_equals_the_hand_pruned_network(model, digits):
    """The network scope removes from both layers at once: layer 2 reads layer 1's silenced outputs and
    loses its own neurons too."""
    total = sum(WIDTHS)
    fractions = (0.75, 0.4)
    result = ablation_curves(model, digits, AblationSettings(orders=("weight_norm",), removals=("silenced",),
                                                             scopes=("network",), fractions=fractions))
    norms = torch.cat([layer.linear.weight.detach().norm(dim=1) for layer in model.layers])
    order = torch.argsort(norms, stable=True)
    for t, fraction in enumerate(fractions, start=1):
        removed = order[:total - kept_count(fraction, total)]
        first, second = removed[removed < WIDTHS[0]], removed[removed >= WIDTHS[0]] - WIDTHS[0]
        assert len(first) and len(second)  # both layers lose neurons
        net = _zeroed(_zeroed(model, 0, first), 1, second)
        for rule, use_s in (("with_factors", True), ("without_factors", False)):
            assert result.curve(None, "weight_norm", "silenced", rule).accuracy[t] == _accuracy(net, digits, use_s)


def test_goodness_only_removal_of_every_neuron_but_one_is_that_neurons_own_rule(model, digits):
    """Keep one neuron of the whole network (the largest s): predict argmax over labels of h_j^2 s_j."""
    total = sum(WIDTHS)
    result = ablation_curves(model, digits, AblationSettings(orders=("s",), removals=("goodness_only",),
                                                             scopes=("network",), fractions=(1.0 / total,)))
    s = torch.cat([layer.s().detach() for layer in model.layers])
    keep = int(torch.argsort(s, stable=True)[-1])
    layer, j = (0, keep) if keep < WIDTHS[0] else (1, keep - WIDTHS[0])
    h = torch.stack([model.layer_outputs(digits.x_test, torch.full_like(digits.y_test, c))[layer][:, j]
                     for c in range(10)], dim=1)  # (N, labels)
    for rule, term in (("with_factors", h.square() * s[keep]), ("without_factors", h.square())):
        own = (term.argmax(dim=1) == digits.y_test).double().mean().item()
        curve = result.curve(None, "s", "goodness_only", rule)
        assert curve.kept == (total, 1)
        assert curve.accuracy[1] == own, rule


def test_the_random_order_is_seeded(model, digits):
    draws = [removal_orders(model, digits, AblationSettings(orders=("random",), seed=seed)) for seed in (3, 3, 4)]
    assert len(draws[0]) == 5 and all(o.name == "random" for o in draws[0])
    assert all(torch.equal(a.sequence, b.sequence) for a, b in zip(draws[0], draws[1]))
    assert not torch.equal(draws[0][0].sequence, draws[2][0].sequence)
    assert not torch.equal(draws[0][0].sequence, draws[0][1].sequence)  # the draws differ from one another
    settings = AblationSettings(orders=("random",), scopes=("network",), fractions=(1.0, 0.5, 0.2), seed=3)
    a, b = ablation_curves(model, digits, settings), ablation_curves(model, digits, settings)
    assert a.curves == b.curves
    assert any(v > 0 for c in a.curves for v in c.spread)  # a mean over draws that differ


def test_goodness_only_and_silenced_agree_in_the_last_layer(model, digits):
    """Nothing reads the last layer's output: silencing its neurons only takes their terms out."""
    result = ablation_curves(model, digits, AblationSettings(orders=("abs_s", "weight_norm"), scopes=("layer",),
                                                             fractions=(0.75, 0.25)))
    for order in ("abs_s", "weight_norm"):
        for rule in ("with_factors", "without_factors"):
            assert result.curve(1, order, "silenced", rule).accuracy == \
                result.curve(1, order, "goodness_only", rule).accuracy


def test_the_result_round_trips_through_json_and_summarises(model, digits):
    result = ablation_curves(model, digits, AblationSettings(orders=("s", "random"), fractions=(0.5, 0.1)))
    again = AblationResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    lines = result.summary()
    assert len(lines) == 2 * 2 * (1 + len(WIDTHS))
    assert lines[0].startswith("Network, goodness only, with factors (unpruned ")
    assert "for at most 1 point of accuracy one can remove by s " in lines[0]
    assert "at random (mean of 5 draws)" in lines[0]


def test_area_and_removable_count():
    curve = Curve(None, "s", "silenced", "with_factors", 10, (1.0, 0.5, 0.1), (10, 5, 1), (0.9, 0.895, 0.5),
                  (0, 0, 0))
    assert curve.removable() == 5  # 0.895 is within 1 point of 0.9; 0.5 is not
    assert curve.area == pytest.approx(((0.5 * (0.9 + 0.895) / 2) + (0.4 * (0.895 + 0.5) / 2)) / 0.9)
    dip = curve._replace(accuracy=(0.9, 0.85, 0.9))
    assert dip.removable() == 0  # the first point beyond the tolerance ends the count


def test_the_verdict_says_what_the_same_number_of_removed_neurons_costs_in_each_order():
    settings = AblationSettings(orders=("s", "random"), removals=("goodness_only",), rules=("with_factors",),
                                scopes=("network",), fractions=(1.0, 0.5, 0.1))
    by_s = Curve(None, "s", "goodness_only", "with_factors", 12, (1.0, 0.5, 0.1), (12, 6, 1), (0.9, 0.896, 0.5),
                 (0, 0, 0))
    rand = by_s._replace(order="random", accuracy=(0.9, 0.869, 0.2), spread=(0.0, 0.006, 0.05))
    result = AblationResult(settings, (by_s, rand), 100, (8, 4))
    assert result.verdict(None, "goodness_only", "with_factors") == (
        "Removing the 6 of 12 neurons with the smallest factors costs 0.40 points; 6 chosen at random cost "
        "3.10 ± 0.60 points (mean ± standard deviation of 5 draws).")
    assert result.verdict(None, "goodness_only", "with_factors", fraction=0.1).startswith("Removing the 11 of 12")
    better = AblationResult(settings, (by_s._replace(accuracy=(0.9, 0.91, 0.5)), rand), 100, (8, 4))
    assert better.verdict(None, "goodness_only", "with_factors").startswith(
        "Removing the 6 of 12 neurons with the smallest factors gains 1.00 points; 6 chosen at random cost 3.10")
    with pytest.raises(ValueError, match="verdict: no curve for scope 0"):
        result.verdict(0, "goodness_only", "with_factors")


def test_neuron_costs_are_accuracy_lost_by_removing_one_term(model, digits):
    costs = neuron_costs(model, digits)
    assert [len(c) for c in costs] == list(WIDTHS)
    settings = AblationSettings(orders=("s",), removals=("goodness_only",), scopes=("layer",),
                                fractions=((WIDTHS[0] - 1) / WIDTHS[0],), draws=5)
    curve = ablation_curves(model, digits, settings).curve(0, "s", "goodness_only", "with_factors")
    first = int(torch.argsort(model.layers[0].s().detach(), stable=True)[0])
    assert curve.accuracy[0] - curve.accuracy[1] == pytest.approx(costs[0][first], abs=1e-12)


@pytest.mark.parametrize("values, message", [
    ({"orders": "s,size"}, "orders: 'size' is not allowed; choose one of s, abs_s, activity, weight_norm, random"),
    ({"removals": []}, "removals: expected one or more of goodness_only, silenced"),
    ({"fractions": "1,0"}, "fractions: each fraction kept must be in (0, 1], got '0'"),
    ({"fractions": "1.5"}, "fractions: each fraction kept must be in (0, 1], got '1.5'"),
    ({"draws": "4"}, "draws: expected an integer in [5, 100], got '4'"),
    ({"seed": -1}, "seed: expected an integer in [0, 2147483647], got -1"),
    ({"scopes": "layers"}, "scopes: 'layers' is not allowed; choose one of network, layer"),
])
def test_bad_settings_name_the_field_and_its_range(values, message):
    with pytest.raises(ValueError) as err:
        AblationSettings.from_dict(values)
    assert str(err.value).startswith(message)


def test_settings_read_the_same_from_json_url_and_cli_text():
    settings = AblationSettings(orders=("random", "s"), fractions=(0.1, 0.5), draws=7, seed=3)
    assert settings.orders == ("s", "random") and settings.fractions == (1.0, 0.5, 0.1)
    assert AblationSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    params = settings.to_params()
    assert params == {"orders": "s,random", "fractions": "1,0.5,0.1", "draws": "7", "seed": "3"}
    assert AblationSettings.from_dict(params) == settings
    assert AblationSettings.from_dict({k: [v] for k, v in params.items()} | {"run": "x"}) == settings
    assert AblationSettings.from_dict({}) == AblationSettings()
    assert np.isclose(AblationSettings().fractions[-1], 0.05) and len(AblationSettings().fractions) == 20


def test_the_cli_reads_json_config_then_flags_and_caches_beside_the_run(model, tmp_path, capsys):
    from fgff_core.analysis.ablation_runs import cache_name
    from fgff_core.cli import main
    from fgff_core.engine.checkpoint import save_checkpoint
    from fgff_core.store import RunStore, import_checkpoint

    store = RunStore(tmp_path / "runs")
    config = PRESETS["tiny-digits"].config("fgff", layers=WIDTHS)
    run_id = import_checkpoint(store, save_checkpoint(tmp_path / "m.safetensors", model, config))
    (tmp_path / "a.json").write_text(json.dumps({"orders": ["weight_norm"], "fractions": [0.5], "draws": 9}))
    argv = ["ablate", run_id, "--runs-dir", str(tmp_path / "runs"), "--config", str(tmp_path / "a.json"),
            "--scopes", "network", "--removals", "silenced", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    want = AblationSettings(orders=("weight_norm",), fractions=(0.5,), draws=9, scopes=("network",),
                            removals=("silenced",))
    assert out["settings"] == want.to_dict() and out["run_id"] == run_id
    assert [(c["order"], c["removal"], c["kept"]) for c in out["curves"]] == [("weight_norm", "silenced", [28, 14])] * 2
    assert store.artifact_path(run_id, cache_name(want)).is_file()
    assert main(argv[:-1]) == 0  # from the cache, as sentences
    assert capsys.readouterr().out.startswith("Network, silenced, with factors (unpruned ")
    assert main([*argv, "--draws", "3"]) == 2
    assert capsys.readouterr().err == "error: draws: expected an integer in [5, 100], got '3'\n"


def test_the_curve_figure_has_one_line_per_order_and_a_band_for_random(model, digits):
    from fgff_core.viz.ablation import ablation_figure

    result = ablation_curves(model, digits, AblationSettings(orders=("s", "random"), fractions=(0.5, 0.1),
                                                             scopes=("network",), removals=("goodness_only",)))
    fig = ablation_figure(result, None, "goodness_only", "with_factors")
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert names == ["by s", "at random"]
    assert list(fig.data[0].x) == [100.0 * k / 28 for k in (28, 14, 3)]
    assert sum(1 for t in fig.data if t.fill == "toself") == 1


def test_a_link_with_a_bad_value_keeps_the_others_and_says_why():
    settings, errors = AblationSettings.from_params({"orders": "s,bogus", "draws": "6", "seed": ["1", "2"]})
    assert (settings.orders, settings.draws, settings.seed) == (AblationSettings().orders, 6, 2)
    assert errors == ["orders: 'bogus' is not allowed; choose one of s, abs_s, activity, weight_norm, random; "
                      "using s,abs_s,activity,weight_norm,random"]


def test_orders_that_coincide_give_the_same_curves(model, digits):
    """With every s > 0, s and |s| are one order: computed once, reported under both names."""
    assert all((layer.s() > 0).all() for layer in model.layers)
    result = ablation_curves(model, digits, AblationSettings(orders=("s", "abs_s"), fractions=(0.5, 0.2)))
    for c in result.curves:
        if c.order == "s":
            assert result.curve(c.layer, "abs_s", c.removal, c.rule).accuracy == c.accuracy


def test_silencing_in_a_three_layer_network_equals_the_hand_pruned_one(digits):
    """Deeper nets take the one-forward-per-point path after the first recomputed layer."""
    from fgff_core.engine.model import FFNet

    torch.manual_seed(1)
    net = FFNet(64, (10, 8, 6))
    with torch.no_grad():
        for layer in net.layers:
            layer.s_raw.uniform_(0.2, 2.0)
    result = ablation_curves(net, digits, AblationSettings(orders=("s",), removals=("silenced",),
                                                           scopes=("network",), fractions=(0.5,)))
    s = torch.cat([layer.s().detach() for layer in net.layers])
    removed = torch.argsort(s, stable=True)[:24 - kept_count(0.5, 24)]
    pruned = net
    for i, (lo, hi) in enumerate(((0, 10), (10, 18), (18, 24))):
        pruned = _zeroed(pruned, i, removed[(removed >= lo) & (removed < hi)] - lo)
    for rule, use_s in (("with_factors", True), ("without_factors", False)):
        assert result.curve(None, "s", "silenced", rule).accuracy[1] == _accuracy(pruned, digits, use_s)
