"""How the first layer sees labelled data: the label embedding (Fig. 2) and its two equivalent paths.

``FirstLayerInput`` (plain) embeds each label into the image and runs the full product per label.
``FactorisedFirstLayerInput`` gives the same numbers up to float rounding, faster: inputs that
differ only in the embedded label share the image and the norm (||x_emb||^2 = ||x_img||^2 + v^2
whatever the label), so from the pre-activation z_ref of the image with labels y_ref, the one with
labels y is
    z = z_ref + (v / ||x_emb||) (W[:, y] - W[:, y_ref]),
a thin (N, classes) x (classes, out) product instead of a full (N, in) x (in, out) one.

Both answer the same questions, so neither the trainer nor the prediction rule knows which one
they hold: a layer's pre-activation for given labels, for every candidate label at once, and the
positive and negative training inputs of layer 1 (``FirstLayerData.inputs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from .goodness import NORM_EPS, LayerOutputs, LayerParameters, layer_goodness, normalise


class Layer(LayerParameters, Protocol):
    """What the first-layer paths use of a layer (``model.FFLayer`` is one): its parameters, its
    pre-activation x_n W^T + b, and its output relu of that."""

    def pre_activation(self, x: Tensor) -> Tensor: ...

    def __call__(self, x: Tensor) -> Tensor: ...


def embed_labels(x: Tensor, labels: Tensor | int, label_value: float, n_classes: int = 10) -> Tensor:
    """Overwrite the first ``n_classes`` inputs with the one-hot label times ``label_value`` (Fig. 2)."""
    out = x.clone()
    out[:, :n_classes] = 0.0
    if isinstance(labels, int):
        out[:, labels] = label_value
    else:
        out[torch.arange(len(x), device=x.device), labels] = label_value
    return out


def embed_neutral_label(x: Tensor, label_value: float, n_classes: int = 10) -> Tensor:
    """Every label slot at ``label_value / n_classes`` (Hinton's neutral label, for readouts)."""
    out = x.clone()
    out[:, :n_classes] = label_value / n_classes
    return out


def normalised_embedding(x: Tensor, labels: Tensor, label_value: float, n_classes: int) -> tuple[Tensor, Tensor]:
    """``normalise(embed_labels(x, labels))`` and 1 / (||x_emb|| + eps), (N,); the latter is the
    same for every label embedded with the same value."""
    x_emb = embed_labels(x, labels, label_value, n_classes)
    norm = x_emb.norm(dim=1, keepdim=True) + NORM_EPS
    return x_emb / norm, 1.0 / norm[:, 0]


def relabel_coefficients(scale: Tensor, y_ref: Tensor, y: Tensor | int, n_classes: int) -> Tensor:
    """(N, classes): +scale at each sample's new label, -scale at its reference label (0 if equal)."""
    coef = scale.new_zeros(len(scale), n_classes)
    rows = torch.arange(len(scale), device=scale.device)
    coef[rows, y] = scale
    coef[rows, y_ref] -= scale
    return coef


# -- a layer's training inputs -------------------------------------------------------------------

@dataclass(frozen=True)
class PairInputs:
    """Positive and negative inputs of a layer as tensors (before the layer's normalisation)."""

    pos: Tensor
    neg: Tensor

    def select(self, rows: Tensor) -> PairInputs:
        return PairInputs(self.pos[rows], self.neg[rows])

    def layer_goodness(self, layer: Layer, mm_dtype: torch.dtype | None = None,
                       h_pos_grad: bool = False) -> LayerOutputs:
        return layer_goodness(layer, normalise(self.pos), normalise(self.neg), mm_dtype=mm_dtype,
                              h_pos_grad=h_pos_grad)

    def forward(self, layer: Layer) -> PairInputs:
        """The layer's outputs on both: the inputs of the next layer (Algorithm 1, l. 22-23)."""
        return PairInputs(layer(self.pos), layer(self.neg))


@dataclass(frozen=True)
class RelabelledInputs:
    """Layer 1's inputs on the factorised path: the normalised positive input, and the negatives as
    relabellings of it (see the module docstring)."""

    x_pos: Tensor  # normalise(embed_labels(x, y_pos))
    inv_norm: Tensor  # 1 / (||x_emb|| + eps), the same for every label
    y_pos: Tensor
    y_neg: Tensor
    label_value: float
    n_classes: int

    def select(self, rows: Tensor) -> RelabelledInputs:
        return RelabelledInputs(self.x_pos[rows], self.inv_norm[rows], self.y_pos[rows], self.y_neg[rows],
                                self.label_value, self.n_classes)

    def _coefficients(self) -> Tensor:
        return relabel_coefficients(self.inv_norm * self.label_value, self.y_pos, self.y_neg, self.n_classes)

    def layer_goodness(self, layer: Layer, mm_dtype: torch.dtype | None = None,
                       h_pos_grad: bool = False) -> LayerOutputs:
        return layer_goodness(layer, self.x_pos, coef=self._coefficients(), mm_dtype=mm_dtype,
                              h_pos_grad=h_pos_grad)

    def forward(self, layer: Layer) -> PairInputs:
        z_pos = layer.linear(self.x_pos)
        z_neg = torch.addmm(z_pos, self._coefficients(), layer.linear.weight[:, :self.n_classes].T)
        return PairInputs(F.relu(z_pos), F.relu(z_neg))


LayerInputs = PairInputs | RelabelledInputs


class FirstLayerData(Protocol):
    """The training images with their true labels, prepared once per run for layer 1 (the
    parameter-free part every epoch shares): ``inputs(y_neg)`` are layer 1's training inputs."""

    def inputs(self, y_neg: Tensor) -> LayerInputs: ...


@dataclass(frozen=True)
class _EmbeddedData:
    x: Tensor
    positives: Tensor  # embed_labels(x, y_pos)
    label_value: float
    n_classes: int

    def inputs(self, y_neg: Tensor) -> PairInputs:
        return PairInputs(self.positives, embed_labels(self.x, y_neg, self.label_value, self.n_classes))


@dataclass(frozen=True)
class _RelabelledData:
    x_pos: Tensor
    inv_norm: Tensor
    y_pos: Tensor
    label_value: float
    n_classes: int

    def inputs(self, y_neg: Tensor) -> RelabelledInputs:
        return RelabelledInputs(self.x_pos, self.inv_norm, self.y_pos, y_neg, self.label_value, self.n_classes)


# -- the two first-layer paths -------------------------------------------------------------------

class FirstLayerInput:
    """The plain path: embed the label into the image and run the layer on the full input."""

    factorised = False

    def __init__(self, label_value: float, n_classes: int) -> None:
        self.label_value = float(label_value)
        self.n_classes = n_classes

    def pre_activation(self, layer: Layer, x: Tensor, labels: Tensor | int) -> Tensor:
        """Layer 1 before its ReLU on ``x`` with ``labels`` embedded (the same on both paths)."""
        return layer.pre_activation(embed_labels(x, labels, self.label_value, self.n_classes))

    def all_labels_pre_activation(self, layer: Layer, x: Tensor) -> Tensor:
        """``pre_activation`` for every candidate label, shape (classes, N, out)."""
        return torch.stack([self.pre_activation(layer, x, k) for k in range(self.n_classes)])

    def prepare(self, x: Tensor, y_pos: Tensor) -> FirstLayerData:
        """Layer 1's training data: ``prepare(x, y).inputs(y_neg)`` are its positive and negative inputs."""
        v, c = self.label_value, self.n_classes
        return _EmbeddedData(x, embed_labels(x, y_pos, v, c), v, c)

    def prediction_chunk(self, device: torch.device) -> int:
        """Samples per prediction chunk: the fastest measured (benchmarks/RESULTS.md); the plain
        path's 10 full products run best on larger CPU blocks, a GPU wants large kernels."""
        return 512 if device.type == "cpu" else 8192


class FactorisedFirstLayerInput(FirstLayerInput):
    """The label-factorised path (module docstring): one full product per image, thin ones per label."""

    factorised = True

    def all_labels_pre_activation(self, layer: Layer, x: Tensor) -> Tensor:
        """Relabels label 0's product to each label k as one broadcast multiply-add,
        z_k = z_0 + (v / ||x_emb||) (W[:, k] - W[:, 0]), which writes the output once."""
        reference = torch.zeros(len(x), dtype=torch.long, device=x.device)
        x_n, inv_norm = normalised_embedding(x, reference, self.label_value, self.n_classes)
        z_ref = layer.linear(x_n)
        label_columns = layer.linear.weight[:, :self.n_classes].T.contiguous()  # (classes, out): row k is W[:, k];
        change = label_columns - label_columns[0]  # contiguous, or the output would be laid out transposed
        return torch.addcmul(z_ref, (inv_norm * self.label_value)[:, None], change[:, None, :])

    def prepare(self, x: Tensor, y_pos: Tensor) -> FirstLayerData:
        v, c = self.label_value, self.n_classes
        return _RelabelledData(*normalised_embedding(x, y_pos, v, c), y_pos, v, c)

    def prediction_chunk(self, device: torch.device) -> int:
        """128 samples on a CPU keep the activations of all 10 labels in cache (10 x 128 x 500 floats)."""
        return 128 if device.type == "cpu" else 8192


def first_layer_input(factorize: bool, label_value: float, n_classes: int) -> FirstLayerInput:
    """The factorised path (``factorize=True``, the default: faster, same numbers) or the plain one."""
    cls = FactorisedFirstLayerInput if factorize else FirstLayerInput
    return cls(label_value, n_classes)


@torch.no_grad()
def through_frozen(below: Sequence[Layer], inputs: LayerInputs) -> LayerInputs:
    """Layer 1's ``inputs`` passed through the frozen layers ``below`` layer i: layer i's inputs."""
    for layer in below:
        inputs = inputs.forward(layer)
    return inputs


@torch.no_grad()
def with_new_negatives(below: Sequence[Layer], inputs: LayerInputs, first_data: FirstLayerData,
                       y_neg: Tensor) -> LayerInputs:
    """Layer i's ``inputs`` with the negatives of labels ``y_neg``, through the frozen layers ``below`` it."""
    first = first_data.inputs(y_neg)
    if not below:
        return first
    neg = first.forward(below[0]).neg
    for layer in below[1:]:
        neg = layer(neg)
    return PairInputs(inputs.pos, neg)
