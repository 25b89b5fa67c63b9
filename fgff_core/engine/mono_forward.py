"""Mono-Forward (MF): Gong, Li and Abdulla, "Mono-Forward: Backpropagation-Free Algorithm for Efficient Neural
Network Training Harnessing Local Errors", arXiv:2501.09238 (the FGFF authors' next algorithm).

MF keeps FF's locality (each layer learns from its own loss; no gradient crosses layers) but drops FF's
goodness: no label is written into the input and there is no negative data. Each hidden layer i has a
trainable projection matrix M_i (classes x neurons) that turns its activations into one score per class,
and the layer's loss is the cross-entropy of those scores with the true label. Prediction is one forward
pass: the class with the highest score of the last layer (the paper's default rule).

The formulas, for a minibatch of inputs a_0 = x (N x d) with labels y:

- (MF-1) layer i's activations: ``a_i = ReLU(a_{i-1} W_i^T + b_i)``, with ``a_{i-1}`` detached (``MFLayer.forward``)
- (MF-2) its goodness scores: ``G_i = a_i M_i^T`` (N x classes) (``MFLayer.scores``)
- (MF-3) its local loss: ``L_i = -(1/N) sum_n log softmax(G_i)[n, y_n]`` (cross-entropy; ``layer_loss``)
- (MF-4) its update: W_i, b_i and M_i step on the gradient of L_i alone (``layer_step``)
- (MF-5) prediction: ``argmax_c G_L[n, c]`` of the last layer L (``MFNet.predict``)

Equation numbers: the paper's own numbering is still unchecked. Of arXiv:2501.09238 (v1 of January 2025; v2 of
7 May 2026, retitled "Mono-Forward: Revisiting Forward-Forward through Objective-Locality Decomposition") only the
abstract and summaries could be read offline (arxiv.org/html/2501.09238, sciencestack.ai/paper/2501.09238,
alphaxiv.org/overview/2501.09238v1), so the formulas carry our labels MF-1 .. MF-5. The authors' code
(github.com/HaoxuanGong/FF-Decomposition, ``FF-Decomposition-release/VanillaMonoForward.py``) agrees with them:
linear + ReLU layers, a bias-free M_i (classes x neurons) initialised as ``nn.Linear``'s weight is (Kaiming-uniform,
a = sqrt 5), the cross-entropy of a_i M_i^T, every layer stepped on every minibatch on the detached output of the
layer below, with its own optimizer. Its prediction is the last layer's scores (as MF-5) or, reported beside it, the
sum of every layer's scores. Our other choices: no FF input normalisation, and the optimizer, learning rate and
schedule are the run config's (``optimizer``, ``lr``, ``lr_schedule``).

Schedules (the config's ``schedule``): ``simultaneous`` steps every layer on every minibatch, each on the
detached activations of the layer below (computed before that layer's step), as the paper trains;
``greedy`` trains layer 1 for all its epochs, then layer 2 on frozen layer 1, and so on, as FF's greedy schedule.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MF_PREDICT_CHUNK = 4096  # samples per chunk of MFNet.predict by default


class MFLayer(nn.Module):
    """One Mono-Forward layer: linear + ReLU (MF-1) and its projection to class scores M_i (MF-2)."""

    def __init__(self, in_features: int, out_features: int, n_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.projection = nn.Linear(out_features, n_classes, bias=False)  # M_i: weight is (classes, neurons)

    def forward(self, a: Tensor) -> Tensor:
        """(MF-1) a_i = ReLU(a_{i-1} W_i^T + b_i)."""
        return F.relu(self.linear(a))

    def scores(self, a: Tensor) -> Tensor:
        """(MF-2) the goodness scores G_i = a_i M_i^T, one per class."""
        return self.projection(a)


def layer_loss(scores: Tensor, y: Tensor) -> Tensor:
    """(MF-3) the local loss: cross-entropy of softmax(G_i) with the true labels, averaged over the batch."""
    return F.cross_entropy(scores.float(), y)


def layer_step(layer: MFLayer, optimizer: torch.optim.Optimizer, a_below: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """(MF-4) one local update of layer i on a minibatch: forward the detached input, score, loss, step W_i,
    b_i and M_i. Returns the layer's activations (detached, from before the step: the next layer's input)
    and the loss (detached)."""
    a = layer(a_below.detach())  # no gradient reaches the layers below
    loss = layer_loss(layer.scores(a), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return a.detach(), loss.detach()


def epoch(model: MFNet, optimizers: Sequence[torch.optim.Optimizer], x: Tensor, y: Tensor, train: Sequence[int],
          batches: Sequence[Tensor | None]) -> Tensor:
    """One epoch over ``batches`` (row indices, or None for the full batch) stepping the layers ``train``
    (one for greedy, all for simultaneous); layers below the highest one that are not trained only forward.
    Returns each trained layer's batch-mean loss, a device vector in the order of ``train`` (no host sync)."""
    top = max(train)
    position = {i: k for k, i in enumerate(train)}
    sums = torch.zeros(len(train), device=x.device)
    for rows in batches:
        a, yb = (x, y) if rows is None else (x[rows], y[rows])
        for i, layer in enumerate(model.layers[:top + 1]):
            if i in position:
                a, loss = layer_step(layer, optimizers[i], a, yb)
                sums[position[i]] += loss
            else:
                with torch.no_grad():
                    a = layer(a)
    return sums / len(batches)


class MFNet(nn.Module):
    """A stack of ``MFLayer``s; predicts from the last layer's goodness scores in one forward pass (MF-5)."""

    def __init__(self, input_dim: int, layers: Sequence[int], n_classes: int = 10) -> None:
        super().__init__()
        sizes = [input_dim, *layers]
        self.layers = nn.ModuleList(MFLayer(a, b, n_classes) for a, b in zip(sizes[:-1], sizes[1:]))
        self.input_dim = input_dim
        self.n_classes = n_classes

    @staticmethod
    def state_shapes(input_dim: int, layers: Sequence[int], n_classes: int) -> dict[str, tuple[int, ...]]:
        """The state-dict shapes of a net of these sizes, without building it (checkpoints check against them)."""
        sizes = (input_dim, *layers)
        out: dict[str, tuple[int, ...]] = {}
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            out[f"layers.{i}.linear.weight"], out[f"layers.{i}.linear.bias"] = (b, a), (b,)
            out[f"layers.{i}.projection.weight"] = (n_classes, b)
        return out

    def layer_outputs(self, x: Tensor, labels: Tensor | None = None, upto: int | None = None) -> list[Tensor]:
        """Every layer's activations a_1 .. a_upto for ``x`` (MF-1); ``labels`` are ignored (no label in the input)."""
        outs, a = [], x
        for layer in self.layers[:upto]:
            a = layer(a)
            outs.append(a)
        return outs

    @torch.no_grad()
    def layer_scores(self, x: Tensor, upto: int | None = None) -> list[Tensor]:
        """Each layer's goodness scores G_i for ``x`` (MF-2), (N, classes) each, of the first ``upto`` layers."""
        return [layer.scores(a) for layer, a in zip(self.layers, self.layer_outputs(x, upto=upto))]

    @torch.no_grad()
    def predict(self, x: Tensor, upto: int | None = None, chunk: int = 0, **_: object) -> Tensor:
        """(MF-5) the class with the highest score of the last layer (of the first ``upto``), in chunks."""
        chunk = chunk or MF_PREDICT_CHUNK
        return torch.cat([self.layer_scores(x[s:s + chunk], upto)[-1].argmax(dim=1) for s in range(0, len(x), chunk)]
                         ) if len(x) else torch.zeros(0, dtype=torch.long, device=x.device)
