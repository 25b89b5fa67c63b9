"""Teach mode: the computations behind the Learn page's five steps (no Streamlit here).

The lesson is a tiny Forward-Forward net on the embedded 8x8 digits (preset ``tiny-digits``,
64 -> 2x20) and every number it shows comes from the engine's own code paths:

1. positive vs negative data ............ ``embed_labels`` (via ``viz.samples.SamplePairs``)
2. one layer, one sample ................ ``FFNet.layer_outputs``, ``goodness`` (eq. 2/3),
                                          ``softplus_loss`` and ``hinge_loss`` (eq. 1)
3. training step by step ................ ``Trainer.run()``, a generator advanced N epochs at a time
                                          (``SteppedTraining``); goodness distributions per layer
4. FF vs FGFF, the significance factors . ``inspect.neuron_activity`` and ``neuron_roles``
5. prediction ........................... ``FFNet.label_goodness``, ``confusion``; a drawn or
                                          uploaded image becomes an input with ``image_to_input``

``LessonSettings`` is the lesson's state in the URL: the step, the knobs (validated through
``RunConfig``) and the controls a teacher chose to hide.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .config import RunConfig
from .config_form import first_value, int_param, parse_param
from .data import Dataset
from .events import EpochMetrics, EvalMetrics, Event, RunFinished
from .inspect import neuron_activity
from .model import FFNet, goodness, hinge_loss, softplus_loss
from .presets import PRESETS
from .training import Trainer, draw_negative_labels

LESSON_PRESET = "tiny-digits"
LESSON_ALGOS = ("ff", "fgff")
STEP_TITLES = {
    1: "Positive and negative data",
    2: "One layer: goodness and loss",
    3: "Training, layer by layer",
    4: "The significance factors: FF vs FGFF",
    5: "Prediction",
}
N_STEPS = len(STEP_TITLES)
CONFIG_KNOBS = ("algo", "lr", "sig_lr", "threshold", "loss", "delta", "layers", "seed", "epochs")
KNOBS = (*CONFIG_KNOBS, "sample")
# Controls a teacher can hide with ``?hide=a,b``: every knob, the step navigation and the drawing panel.
HIDEABLE = (*KNOBS, "step", "draw")
# A lesson net steps in the app's process, so it stays small (larger nets: the Train page).
LESSON_MAX_LAYERS = 4
LESSON_MAX_UNITS = 256
LESSON_MAX_EPOCHS = 2000
ROLE_TOLERANCE = 0.05  # |w - 1| below this: the factor has not moved ("neutral")
ROLES = ("feature detector", "damped", "constraint-violation detector", "neutral")
DIGITS_MAX_PIXEL = 16.0  # scikit-learn digits: each pixel counts the ink in a 4x4 block, 0..16


# -- the lesson's state: step, knobs, hidden controls -------------------------------------------
@dataclass(frozen=True)
class LessonSettings:
    """Everything a lesson link holds. ``config`` is a validated ``RunConfig`` (digits, greedy)."""

    step: int = 1
    config: RunConfig = field(default_factory=lambda: lesson_config())
    sample: int = 0  # index into the digits test set
    hide: frozenset[str] = frozenset()

    def to_params(self) -> dict[str, str]:
        """Query parameters: the step, every knob, and ``hide`` when something is hidden."""
        out = {"step": str(self.step)}
        for name in CONFIG_KNOBS:
            out[name] = _param_text(getattr(self.config, name))
        out["sample"] = str(self.sample)
        if self.hide:
            out["hide"] = ",".join(h for h in HIDEABLE if h in self.hide)
        return out

    def hidden(self, control: str) -> bool:
        return control in self.hide


def lesson_config(algo: str = "fgff", **changes: Any) -> RunConfig:
    """The lesson's net: the ``tiny-digits`` preset with ``changes``, checked against the lesson's size caps."""
    if algo not in LESSON_ALGOS:
        raise ValueError(f"algo: {algo!r} is not allowed in the lesson; choose one of {', '.join(LESSON_ALGOS)}")
    cfg = PRESETS[LESSON_PRESET].config(algo, **changes)
    check_lesson_size(cfg)
    return cfg


def check_lesson_size(cfg: RunConfig) -> None:
    """``ValueError`` naming the field when a net is too big to step in the app's process."""
    if cfg.dataset != "digits":
        raise ValueError(f"dataset: the lesson uses the embedded digits, got {cfg.dataset!r}")
    if len(cfg.layers) > LESSON_MAX_LAYERS or max(cfg.layers) > LESSON_MAX_UNITS:
        raise ValueError(f"layers: a lesson net has at most {LESSON_MAX_LAYERS} layers of at most "
                         f"{LESSON_MAX_UNITS} neurons, got {','.join(map(str, cfg.layers))}")
    if cfg.epochs > LESSON_MAX_EPOCHS:
        raise ValueError(f"epochs: at most {LESSON_MAX_EPOCHS} epochs per layer in a lesson, got {cfg.epochs}")


def _param_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_lesson_params(params: Mapping[str, Any], n_samples: int) -> tuple[LessonSettings, list[str]]:
    """Settings from URL query parameters, and one message per value that was refused.

    A bad value never fails the whole link: it is reported (the message names the parameter and
    the allowed range, from ``RunConfig``'s validation) and its default is used instead. Unknown
    parameters (``run``, ...) are ignored.
    """
    errors: list[str] = []
    step = int_param(params, "step", 1, 1, N_STEPS, errors)
    algo = first_value(params.get("algo", "fgff")).strip()
    if algo not in LESSON_ALGOS:
        errors.append(f"algo={algo}: choose one of {', '.join(LESSON_ALGOS)}; using fgff")
        algo = "fgff"
    cfg = lesson_config(algo)
    for name in CONFIG_KNOBS:
        if name == "algo" or name not in params:
            continue
        raw = first_value(params[name])
        try:
            candidate = cfg.replace(**{name: parse_param(name, raw)})
            check_lesson_size(candidate)
        except ValueError as exc:
            errors.append(f"{name}={raw}: {exc}; using {_param_text(getattr(cfg, name))}")
            continue
        cfg = candidate
    sample = int_param(params, "sample", 0, 0, n_samples - 1, errors)
    hide: set[str] = set()
    for part in first_value(params.get("hide", "")).split(","):
        part = part.strip()
        if not part:
            continue
        if part in HIDEABLE:
            hide.add(part)
        else:
            errors.append(f"hide={part}: not a lesson control; hideable: {', '.join(HIDEABLE)}")
    return LessonSettings(step=step, config=cfg, sample=sample, hide=frozenset(hide)), errors




def label_value_for(cfg: RunConfig, data: Dataset) -> float:
    """The value written at the label's slot, as the trainer resolves it."""
    return float(data.x_train.max()) if cfg.label_value == "max" else float(cfg.label_value)


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
    significance: np.ndarray  # the layer's factors w (all 1 for FF)
    g_pos: float  # eq. (3): mean of w * h^2 (= eq. 2 while w == 1)
    g_neg: float
    g_pos_raw: float  # eq. (2): mean of h^2
    g_neg_raw: float
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
    sig = model.layers[layer].significance.detach()
    g_pos, g_neg = goodness(h_pos, sig), goodness(h_neg, sig)
    return LayerView(
        layer=layer, h_pos=h_pos[0].numpy(), h_neg=h_neg[0].numpy(), significance=sig.numpy().copy(),
        g_pos=float(g_pos), g_neg=float(g_neg),
        g_pos_raw=float(goodness(h_pos)), g_neg_raw=float(goodness(h_neg)), threshold=float(threshold),
        softplus=float(softplus_loss(g_pos, g_neg, threshold)),
        hinge=float(hinge_loss(g_pos, g_neg, threshold, delta)), delta=float(delta))


# -- step 3: training step by step ----------------------------------------------------------------
class SteppedTraining:
    """A ``Trainer`` whose ``run()`` generator is advanced a few epochs at a time.

    One "epoch" here is one layer-epoch (one ``EpochMetrics`` event): with the greedy schedule
    layer 1 takes its ``epochs`` steps, then layer 2, ... Keep the object between reruns; its
    ``history`` and ``evals`` hold every event seen so far.
    """

    def __init__(self, config: RunConfig, data: Dataset) -> None:
        self.config = config
        self.trainer = Trainer(config, data)
        self._events: Iterator[Event] = self.trainer.run()
        self.history: list[EpochMetrics] = []
        self.evals: list[EvalMetrics] = []
        self.finished: RunFinished | None = None

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

    def position(self) -> tuple[int, int]:
        """(layer being trained, epochs it has had), 0-based layer; after the run: the last layer."""
        if not self.history:
            return 0, 0
        last = self.history[-1]
        if last.epoch == self.config.epochs and last.layer + 1 < len(self.config.layers):
            return last.layer + 1, 0
        return last.layer, last.epoch

    def advance(self, epochs: int = 1) -> int:
        """Run up to ``epochs`` more layer-epochs (fewer at the end); returns how many ran."""
        if epochs < 1:
            raise ValueError(f"epochs: expected at least 1, got {epochs}")
        before, target = self.done, self.done + epochs
        while self.done < target and self.finished is None:
            try:
                event = next(self._events)
            except StopIteration:
                break
            self._record(event)
        # The final accuracy comes right after the last epoch: collect it in the same call.
        if self.done >= self.total and self.finished is None:
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
    return [GoodnessDistribution(i, goodness(hp.float(), layer.significance).cpu().numpy(),
                                 goodness(hn.float(), layer.significance).cpu().numpy())
            for i, (hp, hn, layer) in enumerate(zip(pos, neg, model.layers))]


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
    w = activity["significance"].to_numpy()
    role = np.where(w > 1 + tolerance, ROLES[0], np.where(w < 0, ROLES[2],
                    np.where(w < 1 - tolerance, ROLES[1], ROLES[3])))
    return activity.assign(role=role)


def role_counts(roles: pd.DataFrame) -> pd.DataFrame:
    """Neurons per layer and role, with the mean pos - neg activity of each group."""
    out = (roles.groupby(["layer", "role"]).agg(neurons=("neuron", "size"),
                                                mean_activity_diff=("activity_diff", "mean"))
           .reset_index())
    out["role"] = pd.Categorical(out["role"], categories=ROLES, ordered=True)
    return out.sort_values(["layer", "role"]).reset_index(drop=True)


def model_activity(model: FFNet, data: Dataset, seed: int = 0) -> pd.DataFrame:
    """Per-neuron factor and mean squared activity on positive vs negative test data, with roles."""
    return neuron_roles(neuron_activity(model, data, n_samples=len(data.y_test), seed=seed))


# -- step 5: prediction -------------------------------------------------------------------------------
@torch.no_grad()
def label_scores(model: FFNet, x: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The 10 goodness scores (summed over layers) of one input (1, D): (with factors, without)."""
    g_sig, g_raw = model.label_goodness(x.reshape(1, -1).float())
    return g_sig[0].numpy(), g_raw[0].numpy()


@torch.no_grad()
def confusion(model: FFNet, x: Tensor, y: Tensor, use_significance: bool = True) -> np.ndarray:
    """Confusion matrix (true label x predicted label) of the prediction rule on ``x``."""
    from sklearn.metrics import confusion_matrix

    pred = model.predict(x.float(), use_significance=use_significance)
    return confusion_matrix(y.cpu().numpy(), pred.cpu().numpy(), labels=list(range(model.n_classes)))


def pixels_to_input(pixels: np.ndarray, data: Dataset) -> Tensor:
    """An 8x8 array of digits pixel values (0..16, ink high) as a network input (1, 64), normalised
    with the digits training set's mean and std exactly like ``load_dataset`` does."""
    arr = np.asarray(pixels, dtype=np.float32)
    if arr.shape != tuple(data.image_shape[1:]):
        raise ValueError(f"pixels: expected shape {tuple(data.image_shape[1:])}, got {arr.shape}")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > DIGITS_MAX_PIXEL:
        raise ValueError(f"pixels: values must lie in [0, {DIGITS_MAX_PIXEL:g}]")
    mean, std = data.mean[0], data.std[0]
    return torch.from_numpy(((arr.reshape(1, -1) - mean) / std).astype(np.float32))


def image_to_pixels(image: Any, size: int = 8) -> np.ndarray:
    """A picture (PIL image or array, any size, colour or grey, with or without alpha) as an 8x8
    digits-style array: ink bright on a dark background, cropped to the ink, centred, 0..16.

    Dark ink on a light background (a scanned or photographed digit) is inverted; a transparent
    background (a canvas drawing) counts as no ink. An empty picture gives all zeros.
    """
    from PIL import Image

    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image).astype(np.uint8))
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        # Strokes on a transparent background: the opacity is the ink.
        ink = alpha if alpha.min() < 1.0 else _ink_from_grey(rgba[..., :3].mean(axis=2))
    else:
        ink = _ink_from_grey(np.asarray(img.convert("L"), dtype=np.float32) / 255.0)
    if ink.max() <= 1e-3:
        return np.zeros((size, size), dtype=np.float32)
    rows, cols = np.nonzero(ink > 0.1 * ink.max())
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = ink.shape
    side = int(math.ceil(max(h, w) * 1.25))  # a margin, as the digits have around the stroke
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[top:top + h, left:left + w] = ink
    small = Image.fromarray((square * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BOX)
    out = np.asarray(small, dtype=np.float32) / 255.0
    return (out / out.max() * DIGITS_MAX_PIXEL).astype(np.float32)


def _ink_from_grey(grey: np.ndarray) -> np.ndarray:
    """Ink = the minority brightness: a mostly light picture has dark ink, so it is inverted."""
    return 1.0 - grey if np.median(grey) > 0.5 else grey
