"""Scoring a network while it trains and after: the prediction rule (each label's goodness summed over
the ``predict_layers``) with the significance factors ``s`` (eq. 3) and without them (eq. 2), and the
in-training evaluations on fixed subsets of the data (``EvalMetrics``). Mono-Forward and BP nets have no
goodness: their rule is their own ``predict`` (MF: the last trained layer's class scores), one value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from ..data.loading import Dataset
from .events import EvalMetrics
from .model import BPNet, FFNet, LabelGoodness, sum_layers
from .mono_forward import MFNet

EVAL_SUBSET_SEED = 0  # the in-training evaluation subsets are the same for every run


class Accuracy(NamedTuple):
    with_significance: float  # the prediction rule with the factors s (for FF they are 1); MF's, BP's accuracy
    no_significance: float | None  # without them (eq. 2); None for MF and BP


class EvalSubsets(NamedTuple):
    """Rows of the training and test sets that the in-training evaluations score (``eval_subset`` each)."""

    train: Tensor
    test: Tensor

    @staticmethod
    def draw(data: Dataset, k: int, device: torch.device) -> EvalSubsets:
        """``k`` rows of each set, the same for every run (``EVAL_SUBSET_SEED``), on ``device``."""
        gen = torch.Generator().manual_seed(EVAL_SUBSET_SEED)
        train = torch.randperm(len(data.y_train), generator=gen)[:k].to(device)
        return EvalSubsets(train, torch.randperm(len(data.y_test), generator=gen)[:k].to(device))


def first_predicting_layer(predict_layers: str, upto: int) -> int:
    """The first layer whose goodness counts at prediction: 1 for ``predict_layers=skip_first`` (0-based),
    unless only layer 1 is trained yet (``upto`` is 1: the greedy schedule's first layer), then 0."""
    return 1 if predict_layers == "skip_first" and upto > 1 else 0


def summed(per_layer: LabelGoodness, predict_layers: str) -> LabelGoodness:
    """Each label's goodness summed over the predicting layers among ``per_layer``'s."""
    first = first_predicting_layer(predict_layers, len(per_layer.with_significance))
    return LabelGoodness(*(sum_layers(g, first) for g in per_layer))


@torch.no_grad()
def accuracy(model: FFNet | MFNet | BPNet, x: Tensor, y: Tensor, predict_layers: str, chunk: int,
             upto: int | None = None) -> Accuracy:
    """Accuracy of the prediction rule on the first ``upto`` layers with and without ``s`` (MF, BP: one value)."""
    if not isinstance(model, FFNet):
        return Accuracy(fraction(model.predict(x, chunk=chunk, upto=upto) == y), None)
    return accuracy_of(summed(model.layer_label_goodness(x, upto=upto, chunk=chunk), predict_layers), y)


@torch.no_grad()
def evaluations(model: FFNet | MFNet | BPNet, data: Dataset, rows: EvalSubsets, predict_layers: str, chunk: int,
                layers: list[int], epoch: int, steps: list[int], upto: int | None) -> Iterator[EvalMetrics]:
    """One ``EvalMetrics`` per layer in ``layers`` (those that stepped this epoch), at the matching
    ``steps``: the accuracies on the ``rows`` of ``data`` with the first ``upto`` layers."""
    x_train, y_train, x_test, y_test = data.x_train[rows.train], data.y_train[rows.train], \
        data.x_test[rows.test], data.y_test[rows.test]
    if isinstance(model, BPNet):
        train = accuracy(model, x_train, y_train, predict_layers, chunk)
        test = accuracy(model, x_test, y_test, predict_layers, chunk)
        yield EvalMetrics(layer=0, epoch=epoch, step=steps[0], train_acc=train.with_significance,
                          test_acc=test.with_significance, train_acc_no_significance=None,
                          test_acc_no_significance=None)
        return
    if isinstance(model, MFNet):
        yield from _mf_evaluations(model, x_train, y_train, x_test, y_test, layers, epoch, steps, upto)
        return
    per_train = model.layer_label_goodness(x_train, upto=upto, chunk=chunk)
    per_test = model.layer_label_goodness(x_test, upto=upto, chunk=chunk)
    train = accuracy_of(summed(per_train, predict_layers), y_train)
    test = accuracy_of(summed(per_test, predict_layers), y_test)
    for layer, step in zip(layers, steps):
        yield EvalMetrics(layer=layer, epoch=epoch, step=step, train_acc=train.with_significance,
                          test_acc=test.with_significance, train_acc_no_significance=train.no_significance,
                          test_acc_no_significance=test.no_significance,
                          layer_train_acc=fraction(per_train.with_significance[layer].argmax(1) == y_train),
                          layer_test_acc=fraction(per_test.with_significance[layer].argmax(1) == y_test))


def _mf_evaluations(model: MFNet, x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor,
                    layers: list[int], epoch: int, steps: list[int], upto: int | None) -> Iterator[EvalMetrics]:
    """``evaluations`` of a Mono-Forward net: the network's accuracy is its last trained layer's (MF-5), and each
    layer's own accuracy is that of its own class scores G_i."""
    per_train, per_test = model.layer_scores(x_train, upto), model.layer_scores(x_test, upto)
    train, test = fraction(per_train[-1].argmax(1) == y_train), fraction(per_test[-1].argmax(1) == y_test)
    for layer, step in zip(layers, steps):
        yield EvalMetrics(layer=layer, epoch=epoch, step=step, train_acc=train, test_acc=test,
                          train_acc_no_significance=None, test_acc_no_significance=None,
                          layer_train_acc=fraction(per_train[layer].argmax(1) == y_train),
                          layer_test_acc=fraction(per_test[layer].argmax(1) == y_test))


def accuracy_of(scores: LabelGoodness, y: Tensor) -> Accuracy:
    """The fraction of rows whose best-scored label is ``y``, with and without ``s``."""
    return Accuracy(fraction(scores.with_significance.argmax(1) == y),
                    fraction(scores.no_significance.argmax(1) == y))


def fraction(correct: Tensor) -> float:
    return float(correct.float().mean().item()) if len(correct) else float("nan")
