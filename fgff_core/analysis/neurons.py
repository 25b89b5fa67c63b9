"""What a neuron responds to (issue 34): its input weights as images, the test images that excite it,
and its preference among the classes.

- Layer 1 reads the image with the label written over its first ``classes`` inputs (Fig. 2,
  ``label_input.embed_labels``), so a layer-1 neuron's input weights are an image in the dataset's shape
  whose first ``classes`` positions are the label columns: ``weight_images`` shows them apart (the
  image has NaN there) for the neurons with the largest and smallest factors s and the largest and
  smallest ablation cost (``ablation.neuron_costs``).
- A deeper neuron's weights read the layer below, not pixels: ``exciting_images`` lists the test
  images, with their true label embedded (positive data), on which it is most active.
- ``class_preference``: each neuron's mean squared activation h_j^2 (its term in eq. 2, eq. 3 before
  the factor) over the test images of each true class, a selectivity index, and the index's rank
  correlation with s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from ..data.loading import Dataset
from ..engine.model import FFNet
from .inspect import rank_correlation

KINDS = ("largest s", "smallest s", "largest cost", "smallest cost")
MAX_SHOWN = 64  # neurons per kind, images per neuron


class WeightImage(NamedTuple):
    """One layer-1 neuron's input weights: the image part in the dataset's shape, the label part apart."""

    neuron: int
    kind: str  # why it was chosen: one of ``KINDS``
    factor: float  # its s
    cost: float  # its ablation cost (accuracy lost), NaN when not given
    image: np.ndarray  # (H, W) for one channel, (H, W, C) otherwise; NaN where the label is written
    label_weights: np.ndarray  # (classes,): the weights of the label columns


def _check_count(name: str, value: int, hi: int = MAX_SHOWN) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= hi:
        raise ValueError(f"{name}: expected an integer in [1, {hi}], got {value!r}")
    return int(value)


def _check_layer(model: FFNet, layer: int) -> int:
    n = len(model.layers)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < n:
        raise ValueError(f"layer: {layer!r} is out of range; allowed 0 to {n - 1} (0-based)")
    return int(layer)


def weight_image(weights: np.ndarray, image_shape: Sequence[int], n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(image, label weights) of one layer-1 weight vector: the first ``n_classes`` entries (where the label
    is written) apart and NaN in the image; the image (C, H, W) as (H, W) or (H, W, C)."""
    flat = np.asarray(weights, dtype=np.float64).copy()
    if flat.size != int(np.prod(image_shape)):
        raise ValueError(f"weights: {flat.size} inputs do not fill an image of shape {tuple(image_shape)}")
    labels = flat[:n_classes].copy()
    flat[:n_classes] = np.nan
    image = flat.reshape(image_shape)
    return (image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)), labels


def chosen_neurons(values: np.ndarray, k: int) -> tuple[list[int], list[int]]:
    """The ``k`` neurons with the largest and the ``k`` with the smallest ``values`` (ties by position)."""
    order = np.argsort(values, kind="stable")
    k = min(k, len(values))
    return [int(j) for j in order[::-1][:k]], [int(j) for j in order[:k]]


def weight_images(model: FFNet, image_shape: Sequence[int], k: int = 4,
                  costs: np.ndarray | None = None) -> list[WeightImage]:
    """Layer 1's input weights as images for the ``k`` neurons with the largest and smallest factor s and,
    with ``costs`` (layer 1's ``ablation.neuron_costs``), the largest and smallest ablation cost."""
    k = _check_count("k", k)
    layer = model.layers[0]
    w = layer.linear.weight.detach().float().cpu().numpy()
    s = layer.s().detach().float().cpu().numpy()
    cost = np.full(len(s), np.nan) if costs is None else np.asarray(costs, dtype=np.float64)
    if len(cost) != len(s):
        raise ValueError(f"costs: expected one per layer-1 neuron ({len(s)}), got {len(cost)}")
    picks = dict(zip(KINDS[:2], chosen_neurons(s, k)))
    if costs is not None:
        picks.update(zip(KINDS[2:], chosen_neurons(cost, k)))
    out = []
    for kind, neurons in picks.items():
        for j in neurons:
            image, labels = weight_image(w[j], image_shape, model.n_classes)
            out.append(WeightImage(j, kind, float(s[j]), float(cost[j]), image, labels))
    return out


@torch.no_grad()
def positive_activations(model: FFNet, data: Dataset, layer: int) -> np.ndarray:
    """Layer ``layer``'s output on every test image with its true label embedded, (N, n)."""
    layer = _check_layer(model, layer)
    model.eval()
    device = next(model.parameters()).device
    outs = []
    for start in range(0, len(data.y_test), 4096):
        x, y = data.x_test[start:start + 4096].to(device), data.y_test[start:start + 4096].to(device)
        outs.append(model.layer_outputs(x, y, upto=layer + 1)[layer].float().cpu())
    return torch.cat(outs).numpy() if outs else np.zeros((0, model.layers[layer].linear.out_features))


def exciting_images(model: FFNet, data: Dataset, layer: int, neurons: Sequence[int], k: int = 8) -> np.ndarray:
    """For each neuron, the test images (indices) on which it is most active, most first: (neurons, k)."""
    k = _check_count("k", k)
    h = positive_activations(model, data, layer)
    bad = [j for j in neurons if not 0 <= j < h.shape[1]]
    if bad:
        raise ValueError(f"neurons: {bad[0]!r} is out of range; allowed 0 to {h.shape[1] - 1}")
    return np.stack([np.argsort(-h[:, j], kind="stable")[:k] for j in neurons]) if len(neurons) \
        else np.zeros((0, k), dtype=np.int64)


class ClassPreference(NamedTuple):
    """A layer's neurons by class, sorted by factor s (smallest first), for a neurons x classes heatmap."""

    layer: int
    neurons: np.ndarray  # (n,) the neuron at each row
    factors: np.ndarray  # (n,) its s
    mean_square: np.ndarray  # (n, classes): mean of h_j^2 over the test images of each true class
    selectivity: np.ndarray  # (n,) in [0, 1]
    spearman: float  # rank correlation of selectivity with s; NaN when either is constant


def selectivity_index(mean_square: np.ndarray) -> np.ndarray:
    """(max - mean of the others) / (max + mean of the others) over classes, per row: 0 for a neuron
    equally active on every class, 1 for one active on a single class; 0 for a silent neuron."""
    m = np.asarray(mean_square, dtype=np.float64)
    top = m.max(axis=1)
    others = (m.sum(axis=1) - top) / max(m.shape[1] - 1, 1)
    total = top + others
    return np.divide(top - others, total, out=np.zeros_like(total), where=total > 0)


def class_preference(model: FFNet, data: Dataset, layer: int) -> ClassPreference:
    """Each neuron's mean squared activation per true class on positive test data, its selectivity
    index (``selectivity_index``), and the index's Spearman correlation with the factors s."""
    h2 = positive_activations(model, data, layer).astype(np.float64) ** 2
    y = data.y_test.numpy()
    mean_square = np.stack([h2[y == c].mean(axis=0) if (y == c).any() else np.zeros(h2.shape[1])
                            for c in range(data.n_classes)], axis=1)
    s = model.layers[layer].s().detach().double().cpu().numpy()
    selectivity = selectivity_index(mean_square)
    order = np.argsort(s, kind="stable")
    return ClassPreference(layer, order, s[order], mean_square[order], selectivity[order],
                           rank_correlation(s, selectivity))
