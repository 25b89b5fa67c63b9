"""The computations behind steps 1 to 5 of the lesson, each on the engine's own code paths."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..analysis.inspect import neuron_activity
from ..config.schema import RunConfig
from ..data.loading import Dataset
from ..engine.driver import Driver
from ..engine.events import EpochMetrics, EvalMetrics, Event, RunFinished
from ..engine.model import FFNet, goodness, hinge_loss, softplus_loss
from ..engine.training import Trainer, draw_negative_labels
from ..vocabulary import RunStatus

ROLE_TOLERANCE = 0.05  # |s - 1| below this: the factor has not moved ("neutral")
ROLES = ("feature detector", "damped", "constraint-violation detector", "neutral")


# -- step 1: positive and negative data -----------------------------------------------------------
def default_wrong_label(true_label: int, seed: int, n_classes: int = 10) -> int:
    """A wrong label drawn like training draws its negatives (uniform over the other classes)."""
    gen = torch.Generator().manual_seed(seed)
    return int(draw_negative_labels(torch.tensor([true_label]), n_classes, gen)[0])


def check_wrong_label(true_label: int, wrong_label: int, n_classes: int = 10) -> None:
    if not 0 <= wrong_label < n_classes or wrong_label == true_label:
        raise ValueError(f"wrong_label: must be a class in [0, {n_classes - 1}] other than the true label "
                         f"{true_label}, got {wrong_label}")


# -- step 2: one layer's activations for one sample ------------------------------------------------
@dataclass(frozen=True)
class LayerView:
    """One layer's response to one image with its true label (positive) and a wrong one (negative)."""

    layer: int  # 0-based
    h_pos: np.ndarray  # (neurons,) activations with the true label
    h_neg: np.ndarray  # with the wrong label
    significance: np.ndarray  # the layer's factors s (all 1 for FF)
    g_pos: float  # eq. (3): mean of s * h^2 (= eq. 2 while s == 1)
    g_neg: float
    g_pos_no_significance: float  # eq. (2): mean of h^2
    g_neg_no_significance: float
    threshold: float
    softplus: float  # the authors' loss on this one pair
    hinge: float  # eq. (1) with margin delta, on this one pair
    delta: float


@torch.no_grad()
def layer_view(model: FFNet, x: Tensor, true_label: int, wrong_label: int, layer: int, threshold: float,
               delta: float) -> LayerView:
    """Activations, goodness (eq. 2 and 3) and both losses of ``layer`` for one input ``x`` (1, D)."""
    if not 0 <= layer < len(model.layers):
        raise ValueError(f"layer: expected 0..{len(model.layers) - 1}, got {layer}")
    check_wrong_label(true_label, wrong_label, model.n_classes)
    x = x.reshape(1, -1).float()
    h_pos = model.layer_outputs(x, torch.tensor([true_label]), upto=layer + 1)[layer]
    h_neg = model.layer_outputs(x, torch.tensor([wrong_label]), upto=layer + 1)[layer]
    s = model.layers[layer].s().detach()
    g_pos, g_neg = goodness(h_pos, s), goodness(h_neg, s)
    return LayerView(
        layer=layer, h_pos=h_pos[0].numpy(), h_neg=h_neg[0].numpy(), significance=s.numpy().copy(),
        g_pos=float(g_pos), g_neg=float(g_neg),
        g_pos_no_significance=float(goodness(h_pos)), g_neg_no_significance=float(goodness(h_neg)),
        threshold=float(threshold),
        softplus=float(softplus_loss(g_pos, g_neg, threshold)),
        hinge=float(hinge_loss(g_pos, g_neg, threshold, delta)), delta=float(delta))


# -- step 3: training step by step ----------------------------------------------------------------
class SteppedTraining:
    """A ``Trainer`` whose ``run()`` generator is advanced a few epochs at a time.

    One "epoch" here is one layer-epoch (one ``EpochMetrics`` event): with the greedy schedule
    layer 1 takes its ``epochs`` steps, then layer 2, ... Keep the object between reruns; its
    ``history`` and ``evals`` hold every event seen so far.

    Two threads may hold one object: a click makes Streamlit start a new script thread without waiting
    for the running one (its fast reruns). ``advance`` holds ``lock``; hold it too while reading the model
    or the history, so a reader sees whole advances and never weights half-way through a step.
    """

    def __init__(self, config: RunConfig, data: Dataset) -> None:
        self.config = config
        self.trainer = Trainer(config, data)
        self._driver = Driver(self.trainer)  # the one training driver: a NaN loss ends the run failed
        self._events: Iterator[Event] = iter(self._driver)
        self.history: list[EpochMetrics] = []
        self.evals: list[EvalMetrics] = []
        self.finished: RunFinished | None = None
        self.lock = threading.RLock()

    @property
    def model(self) -> FFNet:
        return self.trainer.model

    @property
    def total(self) -> int:
        """Layer-epochs in the whole run."""
        return self.config.epochs * len(self.config.layers)

    @property
    def done(self) -> int:
        return len(self.history)

    @property
    def is_finished(self) -> bool:
        return self.finished is not None

    @property
    def is_failed(self) -> bool:
        """Ended by the training driver at a NaN or infinite loss (``finished.reason`` says where)."""
        return self.finished is not None and self.finished.status == RunStatus.FAILED

    def position(self) -> tuple[int, int]:
        """(layer being trained, epochs it has had), 0-based layer; after the run: the last layer."""
        if not self.history:
            return 0, 0
        last = self.history[-1]
        if last.epoch == self.config.epochs and last.layer + 1 < len(self.config.layers):
            return last.layer + 1, 0
        return last.layer, last.epoch

    def status_text(self) -> str:
        """Where the training stands, in words: untrained, part-way (layer, epochs) or fully trained."""
        if self.done == 0:
            return "untrained (random weights)"
        if self.is_failed:
            return f"failed: {self.finished.reason}"
        if self.is_finished:
            return f"fully trained ({self.total} layer-epochs)"
        layer, epoch = self.position()
        return (f"layer {layer + 1} after {epoch} of {self.config.epochs} epochs "
                f"({self.done}/{self.total} layer-epochs)")

    def layer_titles(self) -> list[str]:
        """One title per layer: trained and frozen, training (with its epoch), failed there, or waiting."""
        layer_now, epoch_now = self.position()
        failed = self.is_failed
        titles = []
        for i in range(len(self.config.layers)):
            if (self.is_finished and not failed) or i < layer_now:
                titles.append(f"layer {i + 1}: trained, frozen")
            elif i == layer_now and self.done:
                doing = "failed at" if failed else "training,"
                titles.append(f"layer {i + 1}: {doing} epoch {epoch_now}/{self.config.epochs}")
            else:
                titles.append(f"layer {i + 1}: waiting (untrained)")
        return titles

    def advance(self, epochs: int = 1) -> int:
        """Run up to ``epochs`` more layer-epochs (fewer at the end); returns how many ran."""
        if epochs < 1:
            raise ValueError(f"epochs: expected at least 1, got {epochs}")
        with self.lock:
            before, target = self.done, self.done + epochs
            while self.done < target and self.finished is None:
                try:
                    event = next(self._events)
                except StopIteration:
                    break
                self._record(event)
            # The final accuracy comes right after the last epoch, and a failed run's end right after its NaN
            # epoch (the driver has decided it already): collect it in the same call.
            if (self.done >= self.total or self._driver.result is not None) and self.finished is None:
                for event in self._events:
                    self._record(event)
            return self.done - before

    def _record(self, event: Event) -> None:
        if isinstance(event, EpochMetrics):
            self.history.append(event)
        elif isinstance(event, EvalMetrics):
            self.evals.append(event)
        elif isinstance(event, RunFinished):
            self.finished = event

    def history_frame(self) -> pd.DataFrame:
        """One row per layer-epoch so far: step, layer, epoch, loss, g_pos, g_neg."""
        rows = [dict(step=e.step, layer=e.layer, epoch=e.epoch, loss=e.loss, g_pos=e.g_pos, g_neg=e.g_neg)
                for e in self.history]
        return pd.DataFrame(rows, columns=["step", "layer", "epoch", "loss", "g_pos", "g_neg"])


@dataclass(frozen=True)
class GoodnessDistribution:
    layer: int
    g_pos: np.ndarray  # (N,) goodness of each positive sample (eq. 3)
    g_neg: np.ndarray  # (N,) goodness of each negative sample

    def separation(self, threshold: float) -> float:
        """Fraction of samples on the right side of the threshold (positive above, negative below)."""
        right = (self.g_pos > threshold).sum() + (self.g_neg < threshold).sum()
        return float(right) / (len(self.g_pos) + len(self.g_neg))


@torch.no_grad()
def goodness_distributions(model: FFNet, x: Tensor, y: Tensor, seed: int) -> list[GoodnessDistribution]:
    """Per layer, the goodness of every positive (true label) and negative (wrong label) sample.

    The wrong labels are drawn with ``draw_negative_labels`` from a generator seeded with
    ``seed`` on the whole of ``y``, the same draw the trainer makes for its fixed negatives.
    """
    y_neg = draw_negative_labels(y.cpu(), model.n_classes, torch.Generator().manual_seed(seed)).to(y.device)
    pos = model.layer_outputs(x, y)
    neg = model.layer_outputs(x, y_neg)
    return [GoodnessDistribution(i, goodness(hp.float(), s).cpu().numpy(), goodness(hn.float(), s).cpu().numpy())
            for i, (hp, hn, s) in enumerate(zip(pos, neg, model.significance()))]


# -- step 4: what the significance factors do -------------------------------------------------------
def neuron_roles(activity: pd.DataFrame, tolerance: float = ROLE_TOLERANCE) -> pd.DataFrame:
    """``inspect.neuron_activity`` with a ``role`` column read from each neuron's factor (section III.E).

    - feature detector: factor above 1 + tolerance; its squared activity counts more in the goodness,
      so the layer is pushed to make it fire on positive data;
    - constraint-violation detector: factor below 0; its squared activity *lowers* the goodness,
      so the layer is pushed to keep it quiet on positive data (it signals a violated constraint);
    - damped: factor in [0, 1 - tolerance): still counted, but less;
    - neutral: within tolerance of 1 (always the case for FF, whose factors stay at 1).
    """
    s = activity["significance"].to_numpy()
    role = np.where(s > 1 + tolerance, ROLES[0], np.where(s < 0, ROLES[2],
                    np.where(s < 1 - tolerance, ROLES[1], ROLES[3])))
    return activity.assign(role=role)


def role_counts(roles: pd.DataFrame) -> pd.DataFrame:
    """Neurons per layer and role, with the mean pos - neg activity of each group."""
    out = (roles.groupby(["layer", "role"]).agg(neurons=("neuron", "size"),
                                                mean_activity_diff=("activity_diff", "mean"))
           .reset_index())
    out["role"] = pd.Categorical(out["role"], categories=ROLES, ordered=True)
    return out.sort_values(["layer", "role"]).reset_index(drop=True)


def role_table(counts: pd.DataFrame) -> pd.DataFrame:
    """``role_counts`` as a table: one row per role, one column per layer ("layer 1", ...), neuron counts."""
    table = counts.pivot(index="role", columns="layer", values="neurons").fillna(0).astype(int)
    table.columns = [f"layer {c + 1}" for c in table.columns]
    return table


def model_activity(model: FFNet, data: Dataset, seed: int = 0) -> pd.DataFrame:
    """Per-neuron factor and mean squared activity on positive vs negative test data, with roles."""
    return neuron_roles(neuron_activity(model, data, n_samples=len(data.y_test), seed=seed))


# -- step 5: prediction -------------------------------------------------------------------------------
@torch.no_grad()
def label_scores(model: FFNet, x: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The 10 goodness scores (summed over layers) of one input (1, D): (with factors, without)."""
    with_s, without_s = model.label_goodness(x.reshape(1, -1).float())
    return with_s[0].numpy(), without_s[0].numpy()


@torch.no_grad()
def first_correct_sample(model: FFNet, x: Tensor, y: Tensor, use_significance: bool = True) -> int:
    """The index of the first input of ``x`` the prediction rule labels correctly (``y``), so that step 5 opens on
    an answer the network gets right; 0 when it gets none right (an untrained net)."""
    pred = model.predict(x.float(), use_significance=use_significance).cpu()
    hits = torch.nonzero(pred == y.cpu()).flatten()
    return int(hits[0]) if len(hits) else 0


@torch.no_grad()
def confusion(model: FFNet, x: Tensor, y: Tensor, use_significance: bool = True) -> np.ndarray:
    """Confusion matrix (true label x predicted label) of the prediction rule on ``x``."""
    from sklearn.metrics import confusion_matrix

    pred = model.predict(x.float(), use_significance=use_significance)
    return confusion_matrix(y.cpu().numpy(), pred.cpu().numpy(), labels=list(range(model.n_classes)))


