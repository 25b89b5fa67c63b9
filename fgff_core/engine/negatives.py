"""Negative labels: random wrong labels (the paper) and hard ones (Hinton's supervised recipe)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def draw_negative_labels(labels: Tensor, n_classes: int, generator: torch.Generator) -> Tensor:
    """A wrong label for each sample, uniform over the other ``n_classes - 1`` (never the true one)."""
    offset = torch.randint(1, n_classes, labels.shape, generator=generator)
    return (labels.cpu() + offset).remainder(n_classes).to(labels.device)


def hard_negative_labels(label_goodness: Tensor, labels: Tensor) -> Tensor:
    """The wrong label with the highest goodness for each sample: the argmax of ``label_goodness``
    (N, classes) over every label but the true one (never the true label)."""
    masked = label_goodness.clone()
    masked[torch.arange(len(labels), device=labels.device), labels] = float("-inf")
    return masked.argmax(dim=1)


def mix_negatives(random: Tensor, hard_fraction: float, generator: torch.Generator,
                  hard_of: Callable[[Tensor], Tensor]) -> Tensor:
    """Each sample's negative label: its hard one with probability ``hard_fraction``, else its random one.

    ``hard_of(rows)`` gives the hard labels of the samples ``rows`` (``hard_negative_labels`` of their
    goodness for every label). It is asked only for the samples that take theirs: with 30% hard negatives,
    a third of the forward passes over all labels.
    """
    if hard_fraction <= 0.0:
        return random
    if hard_fraction >= 1.0:
        return hard_of(torch.arange(len(random), device=random.device))
    take_hard = (torch.rand(random.shape, generator=generator) < hard_fraction).to(random.device)
    rows = take_hard.nonzero().squeeze(1)
    mixed = random.clone()
    mixed[rows] = hard_of(rows)
    return mixed
