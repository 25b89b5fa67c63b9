"""The networks: the Forward-Forward MLP (FF and FGFF share it) and the backprop baseline; Mono-Forward's is
``mono_forward.MFNet``. ``build_network`` is the one place that picks a run's network from its algorithm.

Where to find the paper in the code:
- label embedding (Fig. 2) ............ ``label_input.embed_labels``
- Forward (Algorithm 1, l. 26-30) ..... ``FFLayer.forward``
- goodness, eq. (2) and eq. (3) ....... ``goodness.goodness_from_squares`` (``goodness`` for activations)
- losses, eq. (1) and softplus ........ ``goodness.layer_loss``
- a layer's training step up to its goodness, with the gradients of W, b and ``s``:
  ``goodness.layer_goodness``
- prediction rule (section II) ........ ``FFNet.label_goodness`` / ``FFNet.predict``
The significance update lives in ``optim.py`` (its own optimizer, Algorithm 1 l. 15-17).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.choices import SIGNIFICANCE_PARAMS
from ..config.schema import RunConfig
from ..config.values import check_choice
from ..vocabulary import has_goodness, trains_locally
from .goodness import Goodness, goodness, hinge_loss, normalise, relu_goodness_, softplus_loss
from .label_input import FirstLayerInput, embed_labels, embed_neutral_label, first_layer_input
from .mono_forward import MFNet

__all__ = ["BPNet", "FFLayer", "FFNet", "LabelGoodness", "MFNet", "build_network", "embed_labels", "goodness",
           "hinge_loss", "softplus_loss"]


_SOFTPLUS_OF_ONE = math.log(math.e - 1.0)  # softplus(p) = 1
BP_PREDICT_CHUNK = 4096  # samples per chunk of BPNet.predict by default


class FFLayer(nn.Module):
    """One Forward-Forward layer: L2-normalise the input, linear, ReLU; plus its significance factors ``s``.

    ``significance_param``: ``unconstrained`` (the paper: the parameter is s), or non-negative,
    s = softplus(p) or s = exp(p), with p the parameter ``s_raw``. Every s starts at 1.

    ``s()`` is the only way to the factors outside this class: ``s_raw`` is what the optimizer trains
    and the checkpoint stores, and it is s only when unconstrained (with ``exp`` it is log s).
    Checkpoints written before the rename name it ``significance`` (``checkpoint.py`` maps it).
    """

    def __init__(self, in_features: int, out_features: int, significance_param: str = "unconstrained") -> None:
        super().__init__()
        check_choice("significance_param", significance_param, SIGNIFICANCE_PARAMS)
        self.linear = nn.Linear(in_features, out_features)
        self.significance_param = significance_param
        # The layer's row of the significance matrix (section III.A), s initialised to 1 (footnote 1).
        start = {"unconstrained": 1.0, "softplus": _SOFTPLUS_OF_ONE, "exp": 0.0}[significance_param]
        self.s_raw = nn.Parameter(torch.full((out_features,), start))

    def s(self) -> Tensor:
        """The significance factors s of eq. (3), from the parameter (itself when unconstrained)."""
        if self.significance_param == "softplus":
            return F.softplus(self.s_raw)
        if self.significance_param == "exp":
            return self.s_raw.exp()
        return self.s_raw

    def forward(self, x: Tensor) -> Tensor:
        """Algorithm 1, Forward: x_n = x / ||x||; relu(x_n W^T + b)."""
        return F.relu(self.pre_activation(x))

    def pre_activation(self, x: Tensor) -> Tensor:
        """x_n W^T + b with x_n = x / ||x||: ``forward`` before the ReLU."""
        return self.linear(normalise(x))


class LabelGoodness(NamedTuple):
    """Goodness summed over layers for each sample and candidate label, (N, classes) each."""

    with_significance: Tensor  # with the significance factors s (eq. 3)
    no_significance: Tensor  # without them (eq. 2)


class LabelActivity(NamedTuple):
    """One chunk of n samples with every candidate label embedded: per layer, its outputs h,
    (classes * n, out), label-major (row k * n + i is sample i with label k), and their goodness."""

    outputs: list[Tensor]
    goodness: list[Goodness]


class FFNet(nn.Module):
    """A stack of ``FFLayer``s with the label embedding and the goodness-based prediction rule.

    ``first_input`` is how layer 1 sees labelled data (``label_input``): factorised (default) or plain,
    the same numbers up to float rounding.
    """

    def __init__(self, input_dim: int, layers: Sequence[int], n_classes: int = 10, label_value: float = 1.0,
                 factorize: bool = True, significance_param: str = "unconstrained") -> None:
        super().__init__()
        if input_dim <= n_classes:
            raise ValueError(f"input_dim must exceed n_classes={n_classes} to hold the label, got {input_dim}")
        sizes = [input_dim, *layers]
        self.layers = nn.ModuleList(FFLayer(a, b, significance_param) for a, b in zip(sizes[:-1], sizes[1:]))
        self.input_dim = input_dim
        self.n_classes = n_classes
        self.label_value = float(label_value)
        self.first_input: FirstLayerInput = first_layer_input(factorize, self.label_value, n_classes)

    @property
    def factorize(self) -> bool:
        return self.first_input.factorised

    def layer_outputs(self, x: Tensor, labels: Tensor | None, upto: int | None = None) -> list[Tensor]:
        """Every layer's output for ``x`` with ``labels`` embedded (e.g. positive data for t-SNE);
        ``labels=None``: the neutral label (every label slot at label_value / classes), for readouts."""
        upto = len(self.layers) if upto is None else upto
        if labels is None:
            h = self.layers[0](embed_neutral_label(x, self.label_value, self.n_classes))
        else:
            h = F.relu(self.first_input.pre_activation(self.layers[0], x, labels))
        outs = [h]
        for layer in self.layers[1:upto]:
            h = layer(h)
            outs.append(h)
        return outs

    # -- prediction ----------------------------------------------------------------------------
    @torch.no_grad()
    def label_activity(self, x: Tensor, upto: int | None = None, chunk: int = 0) -> Iterator[LabelActivity]:
        """Chunk by chunk, every layer's output and goodness for each candidate label (section II).

        Embed each of the 10 labels, run the net, take every layer's goodness (eq. 3 with the factors
        ``s``, eq. 2 without). In chunks of ``chunk`` samples so memory stays bounded (0: the first-layer
        path's fastest measured chunk for the device). The prediction rule and the ablation curves
        (``analysis.ablation``) both read the network through here, so they see the same numbers.
        """
        chunk = chunk or self.first_input.prediction_chunk(x.device)
        upto = len(self.layers) if upto is None else upto
        c = self.n_classes
        for start in range(0, len(x), chunk):
            xc = x[start:start + chunk]
            z = self.first_input.all_labels_pre_activation(self.layers[0], xc).reshape(c * len(xc), -1)
            outputs, goodness_per_layer = [], []
            for i, layer in enumerate(self.layers[:upto]):
                h, g = relu_goodness_(z, layer.s())  # z is ours: the ReLU runs in place
                outputs.append(h)
                goodness_per_layer.append(g)
                if i + 1 < upto:
                    z = self.layers[i + 1].pre_activation(h)
            yield LabelActivity(outputs, goodness_per_layer)

    @torch.no_grad()
    def layer_label_goodness(self, x: Tensor, upto: int | None = None, chunk: int = 0) -> LabelGoodness:
        """Each layer's goodness for each candidate label: (layers, N, classes) per field (``label_activity``)."""
        upto = len(self.layers) if upto is None else upto
        c = self.n_classes
        with_s, without_s = [], []
        for part in self.label_activity(x, upto=upto, chunk=chunk):
            with_s.append(torch.stack([g.with_significance.float().view(c, -1).T for g in part.goodness]))
            without_s.append(torch.stack([g.no_significance.float().view(c, -1).T for g in part.goodness]))
        if not with_s:  # no samples
            return LabelGoodness(x.new_zeros(upto, 0, c), x.new_zeros(upto, 0, c))
        return LabelGoodness(torch.cat(with_s, dim=1), torch.cat(without_s, dim=1))

    @torch.no_grad()
    def label_goodness(self, x: Tensor, upto: int | None = None, chunk: int = 0, first: int = 0) -> LabelGoodness:
        """The prediction rule's scores (section II): the goodness of layers ``first``..``upto - 1``
        summed, for each sample and candidate label, (N, classes) per field; the predicted label has
        the highest sum (``predict``). ``first=1`` leaves layer 1 out (Hinton's rule)."""
        per_layer = self.layer_label_goodness(x, upto=upto, chunk=chunk)
        return LabelGoodness(*(sum_layers(g, first) for g in per_layer))

    @torch.no_grad()
    def predict(self, x: Tensor, use_significance: bool = True, upto: int | None = None,
                chunk: int = 0, first: int = 0) -> Tensor:
        """The label with the highest goodness summed over layers (section II; III.C without ``s``)."""
        g = self.label_goodness(x, upto=upto, chunk=chunk, first=first)
        return (g.with_significance if use_significance else g.no_significance).argmax(dim=1)

    def significance(self) -> list[Tensor]:
        """The significance matrix, one row of factors ``s`` per layer (layers may differ in width)."""
        return [layer.s().detach() for layer in self.layers]


def sum_layers(per_layer: Tensor, first: int = 0) -> Tensor:
    """The sum over layers ``first``.. of per-layer goodness (layers, N, classes), layer by layer in
    float32 (the order the prediction rule always used)."""
    total = torch.zeros_like(per_layer[0])
    for g in per_layer[first:]:
        total += g
    return total


class BPNet(nn.Module):
    """The backprop baseline: the same hidden layers (linear + ReLU) and a linear softmax head."""

    def __init__(self, input_dim: int, layers: Sequence[int], n_classes: int = 10) -> None:
        super().__init__()
        sizes = [input_dim, *layers]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = nn.Linear(sizes[-1], n_classes)
        self.input_dim = input_dim
        self.n_classes = n_classes

    def layer_outputs(self, x: Tensor, labels: Tensor | None = None, upto: int | None = None) -> list[Tensor]:
        outs, h = [], x
        for layer in self.hidden[:upto]:
            h = F.relu(layer(h))
            outs.append(h)
        return outs

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layer_outputs(x)[-1])

    @torch.no_grad()
    def predict(self, x: Tensor, chunk: int = 0, **_: object) -> Tensor:
        chunk = chunk or BP_PREDICT_CHUNK
        return torch.cat([self(x[s:s + chunk]).argmax(dim=1) for s in range(0, len(x), chunk)])


def build_network(config: RunConfig, input_dim: int, n_classes: int, label_value: float = 1.0) -> FFNet | MFNet | BPNet:
    """The untrained network of ``config``'s algorithm: FF and FGFF an ``FFNet`` (the label written into the input
    at ``label_value``), MF an ``MFNet`` (a projection to class scores per layer), BP a ``BPNet`` (one head).
    Its weights come from torch's global generator: seed it first for a reproducible start."""
    if has_goodness(config.algo):
        return FFNet(input_dim, config.layers, n_classes, label_value, config.factorize, config.significance_param)
    if trains_locally(config.algo):
        return MFNet(input_dim, config.layers, n_classes)
    return BPNet(input_dim, config.layers, n_classes)
