"""Hinton's linear classifier: a softmax readout on the frozen, normalised hidden activities of an FF net.

Trained after FF, with backpropagation through the readout only (the FF layers stay frozen), and
reported under its own name (``readout_test_acc``): it never enters the goodness accuracy.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .goodness import normalise
from .model import FFNet
from .optim import make_adam

READOUT_BATCH = 1000
READOUT_LR = 0.01
FEATURE_CHUNK = 4096  # samples per pass through the frozen net: bounds memory for wide nets


class ReadoutAccuracy(NamedTuple):
    train_acc: float
    test_acc: float


@torch.no_grad()
def readout_features(model: FFNet, x: Tensor, first: int = 0) -> Tensor:
    """The normalised activities of layers ``first``.. for ``x`` with the neutral label, concatenated."""
    parts = []
    for start in range(0, len(x), FEATURE_CHUNK):
        outs = model.layer_outputs(x[start:start + FEATURE_CHUNK], None)
        parts.append(torch.cat([normalise(h) for h in outs[first:]], dim=1))
    return torch.cat(parts)


def train_readout(model: FFNet, x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, epochs: int,
                  first: int = 0, generator: torch.Generator | None = None) -> ReadoutAccuracy:
    """Train a linear softmax readout for ``epochs`` (Adam, minibatches of 1000) and return its accuracies.

    With a ``generator`` the whole readout is reproducible: its batch order comes from it, and the head's
    initial weights from a torch seed equal to the generator's seed (the caller's global RNG is left as it was)."""
    feats_train = readout_features(model, x_train, first)
    feats_test = readout_features(model, x_test, first)
    with torch.random.fork_rng(devices=[]):
        if generator is not None:
            torch.manual_seed(generator.initial_seed())
        head = nn.Linear(feats_train.shape[1], model.n_classes).to(feats_train.device)
    optimizer = make_adam(head.parameters(), READOUT_LR)
    n = len(y_train)
    for _ in range(epochs):
        for rows in torch.randperm(n, generator=generator).to(feats_train.device).split(READOUT_BATCH):
            loss = F.cross_entropy(head(feats_train[rows]), y_train[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        train_acc = (head(feats_train).argmax(1) == y_train).float().mean().item()
        test_acc = (head(feats_test).argmax(1) == y_test).float().mean().item()
    return ReadoutAccuracy(train_acc, test_acc)
