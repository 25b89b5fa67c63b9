"""Ablation and pruning curves (issue 34): test accuracy as neurons are removed, under several orders.

A network predicts the label whose embedding gives the highest goodness summed over layers (section II),
each layer's goodness being g = (1/n) sum_j h_j^2 s_j (eq. 3; eq. 2 without the factors s). Written
with per-neuron weights w_j = s_j / n (``goodness.neuron_weights``), g = sum_j h_j^2 w_j: every neuron
adds one term per sample and candidate label. Removing neurons is read two ways:

- ``goodness_only``: the neuron's term leaves the sum; the layer's other outputs, and so the next
  layer's input, are unchanged. The width n in w_j stays the layer's own: a removal is a term set to 0.
- ``silenced``: the neuron's output is 0. Its term leaves the sum and the next layer sees the change
  through its normalised input x / ||x|| (Algorithm 1, Forward), so every later layer is recomputed.
  In the last layer the two are the same (nothing reads its output).

An order lists the neurons least useful first (``ablation_settings.ORDERS``); removing k of them keeps
the rest. The network scope orders all neurons of all layers at once; the layer scope removes from one
layer, the others whole. Within a layer the layer scope uses the network order restricted to that
layer, so the two scopes share their work (a random draw is one permutation of all neurons, and its
restriction to a layer is a uniform random order of that layer).

Vectorised: each layer's terms h_j^2 w_j (both rules) for every test image and label are computed once
(through ``FFNet.label_activity``, the prediction rule's own path). For one order the kept sets are
nested, so the goodness of a layer with only its last m neurons kept, for every m the curves need, is
one running sum over the neurons from the last removed back, read at each m (``_kept_sums``): each
term is added once per order, whatever the number of points. A layer with nothing removed contributes
the goodness the model itself computes, summed over layers in the model's order, so the point with no
neuron removed is the model's test accuracy exactly. Silencing recomputes the layer after the first
one with removals; its pre-activation for each m is updated in place from the previous m by the
neurons that changed (a product with only those columns), so each order costs one full product in all,
and ||x|| comes from the running sums of h^2. The silenced curves cost that product per order: about
ten times the goodness-only ones (benchmarks/ABLATION.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..config.values import check_choice
from ..data.loading import Dataset
from ..engine.goodness import NORM_EPS, neuron_weights
from ..engine.model import FFNet
from .ablation_result import AblationResult, Curve
from .ablation_settings import RULES, AblationSettings
from .inspect import neuron_activity

__all__ = ["AblationResult", "Curve", "ablation_curves", "kept_count", "neuron_costs", "removal_orders"]

SAMPLES_PER_CHUNK = 256  # test images per step: a step's tensors stay near the cache (2560 x 500 floats is 5 MB)


class Order(NamedTuple):
    """One removal order: a permutation of all neurons, global index = the layer's offset + j."""

    name: str
    draw: int  # 0 except for the random orders
    sequence: Tensor  # (total neurons,) long, removed first to last


def kept_count(fraction: float, n: int) -> int:
    """Neurons kept of ``n`` at ``fraction`` kept: rounded half up, at least 1."""
    return max(1, min(n, math.floor(fraction * n + 0.5)))


def _order_scores(model: FFNet, name: str, data: Dataset, settings: AblationSettings) -> Tensor:
    """The score of every neuron (all layers, in order) by which ``name`` removes the smallest first."""
    if name == "s":
        parts = [layer.s().detach() for layer in model.layers]
    elif name == "abs_s":
        parts = [layer.s().detach().abs() for layer in model.layers]
    elif name == "weight_norm":
        parts = [layer.linear.weight.detach().norm(dim=1) for layer in model.layers]
    else:  # activity: mean squared activation on positive minus on negative test data
        activity = neuron_activity(model, data, n_samples=min(settings.activity_samples, len(data.y_test)),
                                   seed=settings.seed)
        return torch.from_numpy(activity["activity_diff"].to_numpy(dtype=np.float64))
    return torch.cat(parts).double().cpu()


def removal_orders(model: FFNet, data: Dataset, settings: AblationSettings) -> list[Order]:
    """The settings' orders: each named order (smallest score first, ties by position), then
    ``settings.draws`` random permutations from ``settings.seed``."""
    out = []
    for name in settings.orders:
        if name != "random":
            out.append(Order(name, 0, torch.argsort(_order_scores(model, name, data, settings), stable=True)))
    generator = torch.Generator().manual_seed(settings.seed)
    total = sum(layer.linear.out_features for layer in model.layers)
    out += [Order("random", d, torch.randperm(total, generator=generator)) for d in range(settings.random_draws)]
    return out


class _Plan(NamedTuple):
    """For one order: the neurons kept in each layer at every point of every curve."""

    ranks: list[Tensor]  # per layer: each neuron's position in the layer's removal order
    layer_orders: list[Tensor]  # per layer: its neurons, removed first to last
    points: list[tuple[int, ...]]  # per point: neurons kept in each layer (distinct, first the unpruned)


def _plan(order: Order, widths: Sequence[int], fractions: Sequence[float], scopes: Sequence[str]) -> tuple[
        _Plan, dict[tuple[int | None, int], int]]:
    """The points an order's curves need, and for each (scope layer or None, fraction index) its point."""
    offsets = np.cumsum([0, *widths])
    layer_of = torch.from_numpy(np.searchsorted(offsets, order.sequence.numpy(), side="right") - 1)
    layer_orders = [order.sequence[layer_of == i] - int(offsets[i]) for i in range(len(widths))]
    ranks = [torch.empty_like(lo).scatter_(0, lo, torch.arange(len(lo))) for lo in layer_orders]
    points: dict[tuple[int, ...], int] = {tuple(widths): 0}
    where: dict[tuple[int | None, int], int] = {}
    total = int(offsets[-1])
    for t, fraction in enumerate(fractions):
        if "network" in scopes:
            removed = layer_of[:total - kept_count(fraction, total)]
            kept = tuple(w - int((removed == i).sum()) for i, w in enumerate(widths))
            where[(None, t)] = points.setdefault(kept, len(points))
        if "layer" in scopes:
            for i, w in enumerate(widths):
                kept = tuple(kept_count(fraction, w) if j == i else wj for j, wj in enumerate(widths))
                where[(i, t)] = points.setdefault(kept, len(points))
    return _Plan(ranks, layer_orders, list(points)), where


class _Chunk(NamedTuple):
    """Some test images with every label, rows sample-major (row i * classes + c): per layer its outputs h
    (rows, n), its terms h_j^2 w_j per rule and, last, h_j^2 alone (for ||h||), (n, rules + 1, rows), and
    the model's own goodness per rule (rules, rows); the images' labels (N,); for silencing, each layer's
    outputs times the next layer's weights, x W^T (rows, next n), shared by every order."""

    outputs: list[Tensor]
    terms: list[Tensor]
    goodness: list[Tensor]
    labels: Tensor
    products: list[Tensor]


def _chunks(model: FFNet, x: Tensor, y: Tensor, rules: Sequence[str], weights: list[Tensor],
            products: bool = False):
    """``_Chunk``s of ``SAMPLES_PER_CHUNK`` images (a multiple of the model's own prediction chunk, so
    the unpruned goodness is the model's to the bit)."""
    sub = model.first_input.prediction_chunk(x.device)
    step = sub * max(1, SAMPLES_PER_CHUNK // sub)
    c = model.n_classes
    for start in range(0, len(x), step):
        parts = list(model.label_activity(x[start:start + step], chunk=sub))
        outputs, terms, goodness = [], [], []
        for i in range(len(model.layers)):
            h = torch.cat([p.outputs[i].view(c, -1, p.outputs[i].shape[-1]).transpose(0, 1) for p in parts])
            outputs.append(h.reshape(-1, h.shape[-1]))
            terms.append(outputs[-1].T.square()[:, None, :] * weights[i][:, :, None])
            goodness.append(torch.stack([torch.cat([getattr(p.goodness[i], _FIELD[r]).float().view(c, -1).T
                                                    for p in parts]).reshape(-1) for r in rules]))
        nexts = [h @ nxt.linear.weight.T for h, nxt in zip(outputs, model.layers[1:])] if products else []
        yield _Chunk(outputs, terms, goodness, y[start:start + step], nexts)


_FIELD = {"with_factors": "with_significance", "without_factors": "no_significance"}


def _weights(model: FFNet, rules: Sequence[str]) -> list[Tensor]:
    """Per layer (n, rules + 1): each neuron's weight in its layer's goodness (eq. 3 / eq. 2), then 1."""
    return [torch.stack([*(getattr(neuron_weights(layer.s().detach()), _FIELD[r]) for r in rules),
                         torch.ones_like(layer.s())], dim=-1).detach() for layer in model.layers]


def _masks(rank: Tensor, kept: Sequence[int]) -> Tensor:
    """(n, len(kept)) 0/1: the neurons kept when only the last ``m`` of the order stay, per m."""
    n = len(rank)
    return (rank[:, None] >= torch.tensor([n - m for m in kept], device=rank.device)[None, :]).float()


def _kept_sums(terms: Tensor, order: Tensor, kept: Sequence[int]) -> Tensor:
    """Sums of ``terms`` (n, ...) over the neurons kept when only the last m of ``order`` stay, for each
    m in ``kept``: (len(kept), ...). The kept sets are nested: going back from the last neuron removed,
    each segment between two consecutive m is summed once and added to a running sum (m = 0: zeros)."""
    ordered = terms[order.flip(0)]  # the first m rows: the m neurons kept
    running, done, sums = terms.new_zeros(terms.shape[1:]), 0, {}
    for m in sorted(set(kept)):
        if m > done:
            running = running + ordered[done:m].sum(0)
        done, sums[m] = m, running
    return torch.stack([sums[m] for m in kept])


def _correct(scores: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    """Correct predictions per point of ``scores`` (points, rules, rows), as (points, rules)."""
    per = scores.view(*scores.shape[:2], len(labels), n_classes)
    return (per.argmax(dim=-1) == labels).sum(dim=-1)


def _goodness_only(chunk: _Chunk, plan: _Plan, n_rules: int) -> Tensor:
    """Correct predictions (points, rules) with the removed neurons' terms left out of the sum (eq. 3)."""
    total = None
    for i, (terms, g) in enumerate(zip(chunk.terms, chunk.goodness)):
        width = len(terms)
        needed = sorted({p[i] for p in plan.points if p[i] < width})
        bank = torch.cat([g[None], _kept_sums(terms[:, :n_rules], plan.layer_orders[i], needed)]) if needed else g[None]
        part = bank[[0 if p[i] == width else 1 + needed.index(p[i]) for p in plan.points]]
        total = torch.zeros_like(part) + part if total is None else total + part  # sum_layers' order
    return _correct(total, chunk.labels, len(chunk.outputs[0]) // len(chunk.labels))


def _next_pre_activations(model: FFNet, chunk: _Chunk, plan: _Plan, layer: int, kept: Sequence[int],
                          norms: Tensor):
    """Layer ``layer + 1``'s pre-activation with only the last m neurons of layer ``layer``'s order
    kept, for each m in ``kept``: yields (position of m in ``kept``, z). The product x W^T is updated
    in place from one m to the next by the neurons that changed: removed ones subtracted from the full
    product while m >= n/2, kept ones added from zero below, so each neuron's column is multiplied once;
    ``norms`` (len(kept), rows) are ||x|| of the kept outputs (from their squares, ``_kept_sums``)."""
    nxt = model.layers[layer + 1].linear
    order = plan.layer_orders[layer].flip(0)  # the last removed first: the first m columns are the m kept
    h, w = chunk.outputs[layer][:, order], nxt.weight[:, order]  # so that each change is a slice
    n = len(order)
    inv_norms = 1.0 / (norms.sqrt() + NORM_EPS)
    position = {m: j for j, m in enumerate(kept)}
    for start, steps in ((n, sorted((m for m in kept if 2 * m >= n), reverse=True)),
                         (0, sorted(m for m in kept if 2 * m < n))):
        product = chunk.products[layer].clone() if start == n else h.new_zeros(len(h), nxt.out_features)
        done = start
        for m in steps:
            lo, hi = min(done, m), max(done, m)  # the neurons between the last m and this one
            if hi > lo:
                product.addmm_(h[:, lo:hi], w[:, lo:hi].T, alpha=-1.0 if start == n else 1.0)
            done = m
            j = position[m]
            yield j, torch.addcmul(nxt.bias, product, inv_norms[j][:, None])


def _later_terms(model: FFNet, h: Tensor, plan: _Plan, weights: list[Tensor], point: tuple[int, ...],
                 layer: int, n_rules: int) -> Tensor:
    """The goodness terms (rules, rows) of layers ``layer``.. for one point, from layer ``layer``'s
    unmasked output ``h``: each layer's kept outputs feed the next (deeper nets, one forward per point)."""
    terms, mask = None, None
    for later in range(layer, len(model.layers)):
        if mask is not None:
            h = model.layers[later](h * mask[:, 0])
        mask = _masks(plan.ranks[later], [point[later]])
        part = (mask * weights[later][:, :n_rules]).T @ h.square().T
        terms = part if terms is None else terms + part
    return terms


def _silenced(model: FFNet, chunk: _Chunk, plan: _Plan, weights: list[Tensor], goodness_only: Tensor) -> Tensor:
    """Correct predictions (points, rules) with the removed neurons' outputs at zero: the later layers
    recomputed from the first layer with removals (``_next_pre_activations``); a point whose first
    removal is in the last layer is the goodness-only one."""
    correct = goodness_only.clone()
    widths = [len(t) for t in chunk.terms]
    n_rules = len(chunk.goodness[0])
    groups: dict[tuple[int, int], list[int]] = {}
    for index, point in enumerate(plan.points):
        first = next((i for i, (m, w) in enumerate(zip(point, widths)) if m < w), len(widths) - 1)
        if first < len(widths) - 1:  # a removal with a later layer to see it
            groups.setdefault((first, point[first]), []).append(index)
    n_classes = len(chunk.outputs[0]) // len(chunk.labels)
    for layer in range(len(widths) - 1):
        kept = sorted({m for (f, m) in groups if f == layer}, reverse=True)
        if not kept:
            continue
        earlier = None  # the unchanged layers' goodness, summed in the model's order
        for g in chunk.goodness[:layer]:
            earlier = torch.zeros_like(g) + g if earlier is None else earlier + g
        own = _kept_sums(chunk.terms[layer], plan.layer_orders[layer], kept)  # (kept, rules + 1, rows)
        last = layer + 2 == len(widths)
        for j, z in _next_pre_activations(model, chunk, plan, layer, kept, own[:, n_rules]):
            members = groups[(layer, kept[j])]
            if last:  # the next layer is the last: every point at once
                square = z.clamp_(min=0).square_()
                masks = _masks(plan.ranks[-1], [plan.points[i][-1] for i in members])
                both = (masks[:, :, None] * weights[-1][:, None, :n_rules]).reshape(len(masks), -1)
                later = (both.T @ square.T).view(len(members), n_rules, -1)
            else:
                later = torch.stack([_later_terms(model, z.clamp_(min=0), plan, weights, plan.points[i], layer + 1,
                                                  n_rules) for i in members])
            terms = own[j:j + 1, :n_rules] + later
            if earlier is not None:
                terms = earlier[None] + terms
            correct[members] = _correct(terms, chunk.labels, n_classes)
    return correct


@torch.no_grad()
def ablation_curves(model: FFNet, data: Dataset, settings: AblationSettings | None = None) -> AblationResult:
    """Every curve the settings ask for on ``data``'s test set: for each scope (the network, each layer),
    order, kind of removal and prediction rule, the test accuracy at each fraction kept (module docstring).
    The random order's points are the mean over its draws, with their standard deviation. The rule sums
    the goodness of every layer (section II), also for a run trained with ``predict_layers=skip_first``."""
    if not isinstance(model, FFNet):
        raise ValueError("model: ablation curves need an FF/FGFF network (goodness per neuron); "
                         f"got {type(model).__name__}")
    settings = settings or AblationSettings()
    model.eval()
    device = next(model.parameters()).device
    x, y = data.x_test.to(device), data.y_test.to(device)
    widths = [layer.linear.out_features for layer in model.layers]
    rules = settings.rules
    weights = _weights(model, rules)
    orders = removal_orders(model, data, settings)
    plans = [_plan(o, widths, settings.fractions, settings.scopes) for o in orders]
    counts = {r: [torch.zeros(len(p.points), len(rules), dtype=torch.long) for p, _ in plans]
              for r in settings.removals}
    alike: dict[tuple[int, ...], int] = {}  # an order equal to an earlier one (s and |s| when every s > 0)
    source = [alike.setdefault(tuple(o.sequence.tolist()), i) for i, o in enumerate(orders)]
    for chunk in _chunks(model, x, y, rules, weights, products="silenced" in settings.removals):
        for o, (plan, _) in enumerate(plans):
            if source[o] != o:
                continue
            gonly = _goodness_only(chunk, plan, len(rules)).cpu()
            if "goodness_only" in counts:
                counts["goodness_only"][o] += gonly
            if "silenced" in counts:
                counts["silenced"][o] += _silenced(model, chunk, plan, weights, gonly.to(device)).cpu()
    for per_order in counts.values():
        for o, s in enumerate(source):
            per_order[o] = per_order[s]
    scopes = ([None] if "network" in settings.scopes else []) + \
        (list(range(len(widths))) if "layer" in settings.scopes else [])
    curves = []
    for layer in scopes:
        n = sum(widths) if layer is None else widths[layer]
        kept = tuple(kept_count(f, n) for f in settings.fractions)
        for name in dict.fromkeys(o.name for o in orders):
            members = [i for i, o in enumerate(orders) if o.name == name]
            for removal in settings.removals:
                for r, rule in enumerate(rules):
                    acc = np.array([[counts[removal][i][plans[i][1][(layer, t)], r].item() / len(y)
                                     for t in range(len(settings.fractions))] for i in members])
                    spread = acc.std(axis=0, ddof=1) if len(members) > 1 else np.zeros(acc.shape[1])
                    curves.append(Curve(layer, name, removal, rule, n, settings.fractions, kept,
                                        tuple(acc.mean(axis=0).tolist()), tuple(spread.tolist())))
    return AblationResult(settings, tuple(curves), len(y), tuple(widths))


@torch.no_grad()
def neuron_costs(model: FFNet, data: Dataset, rule: str = "with_factors") -> list[np.ndarray]:
    """Per layer, each neuron's ablation cost: the test accuracy lost when its term alone leaves the
    goodness sum (goodness-only removal, eq. 3; ``rule`` with or without the factors). One (N, classes,
    n) subtraction per layer: the scores without neuron j are the model's minus h_j^2 w_j."""
    check_choice("rule", rule, RULES)
    model.eval()
    device = next(model.parameters()).device
    weights = _weights(model, (rule,))
    correct = [torch.zeros(w.shape[0], dtype=torch.long) for w in weights]
    base = 0
    for chunk in _chunks(model, data.x_test.to(device), data.y_test.to(device), (rule,), weights):
        total = None
        for g in chunk.goodness:
            total = torch.zeros_like(g) + g if total is None else total + g
        n_images = len(chunk.labels)
        base += int((total[0].view(n_images, -1).argmax(dim=-1) == chunk.labels).sum())
        for i, terms in enumerate(chunk.terms):
            without = (total[0] - terms[:, 0]).view(len(terms), n_images, -1)  # (n, N, classes)
            correct[i] += (without.argmax(dim=-1) == chunk.labels).sum(dim=-1).cpu()
    n = len(data.y_test)
    return [(base - c.numpy()) / n for c in correct]
