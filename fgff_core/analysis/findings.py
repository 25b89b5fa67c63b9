"""What a page should say out loud about a run: sentences for people, computed from plain data.

- ``negative_factors`` / ``negative_factor_sentence``: FGFF neurons whose significance factor ``s``
  went below 0 (constraint-violation detectors, section III.E), counted and named per layer.
- ``chance_note`` / ``chance_hint``: a finished run that predicts no better than chance, and the likely
  reason (too few steps, else divergence): the one-line verdict and the page's sentence.
- ``KNN_VS_GOODNESS``: why 5-NN accuracy in a layer can exceed the network's goodness accuracy.
- ``difference_sentence``: one group's accuracy against another's, over seeds, in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..config.schema import RunConfig
from ..data.registry import DATASETS
from ..format import percent, points
from ..vocabulary import has_goodness, trains_factors

# Full-batch FF needs roughly this many optimizer steps per layer before the label inputs' weights
# learn (the quick digits preset: 200; MNIST full batch with 30 epochs ends at chance).
MIN_STEPS_PER_LAYER = 100
CHANCE_MARGIN = 0.05  # accuracy within this of 1 / classes counts as chance
SUGGESTED_PRESET = "Quick demo: digits 2x100"

def _seeds(n_a: int, n_b: int) -> str:
    if n_a == n_b:
        return f"{n_a} seed{'s' if n_a != 1 else ''}"
    return f"{n_a} and {n_b} seeds"


def difference_sentence(first: str, first_values: Sequence[float], second: str,
                        second_values: Sequence[float]) -> str:
    """``second``'s mean accuracy (fractions, one per seed) minus ``first``'s, against the spread over seeds.

    "FGFF beats FF by 6.7 points over 2 seeds, spread ±3.0 to 4.1" when the difference is larger than
    either group's standard deviation, "within the spread" otherwise; with one seed, a reminder that one
    seed cannot tell a difference from noise, and "level" where the difference rounds to 0.0 points. Both
    groups need at least one value.
    """
    a, b = np.asarray(first_values, dtype=float), np.asarray(second_values, dtype=float)
    if not len(a) or not len(b):
        raise ValueError("difference_sentence: each group needs at least one value")
    diff = float(b.mean() - a.mean())
    seeds = _seeds(len(a), len(b))
    word = "beats" if diff > 0 else "trails"
    level = points(abs(diff), 1, sign=False) == points(0.0, 1, sign=False)  # "trails by 0.0 points" says nothing
    if min(len(a), len(b)) < 2:
        said = (f"{second} and {first} are level (to 0.1 points)" if level
                else f"{second} {word} {first} by {points(abs(diff), 1, sign=False)}")
        return f"{said} over {seeds}: one seed cannot tell a difference from seed-to-seed noise; launch more seeds."
    lo, hi = sorted(float(v.std(ddof=1)) for v in (a, b))
    low, high = (points(v, 1, sign=False, unit="") for v in (lo, hi))
    spread = f"±{low}" if low == high else f"±{low} to {high}"
    if abs(diff) <= hi:
        shown = points(diff, 2 if level else 1)  # a difference that rounds to 0.0 is given to 0.01 points
        return (f"{second} and {first} are within the spread: {second} - {first} = {shown} over {seeds}, while the "
                f"seeds alone vary by {spread}.")
    return f"{second} {word} {first} by {points(abs(diff), 1, sign=False)} over {seeds}, spread {spread}."


KNN_VS_GOODNESS = (
    "5-NN accuracy in the layer can exceed the network's own (goodness) accuracy: the neighbours are found "
    "with the true label written into every input, so they compare images that already carry their answer, "
    "while the goodness rule must pick the label itself by trying all ten.")


def negative_factors(s: Sequence[np.ndarray | None]) -> list[int]:
    """Per layer, how many neurons have a factor s below 0 (0 for a layer without factors yet)."""
    return [0 if layer_s is None else int((np.asarray(layer_s, dtype=float) < 0).sum()) for layer_s in s]


def negative_factor_sentence(s: Sequence[np.ndarray | None], algo: str) -> str:
    """``"5 neurons of layer 2 have factors below 0: their activity lowers the goodness."``"""
    if not trains_factors(algo):
        return ("Every factor is 1: this algorithm does not train them, so every neuron counts fully in the "
                "goodness (eq. 2).")
    counts = negative_factors(s)
    parts = [f"{n} neuron{'s' if n != 1 else ''} of layer {i + 1}" for i, n in enumerate(counts) if n]
    if not parts:
        return "No factor is below 0: every neuron's activity raises the goodness (some more, some less)."
    total = sum(counts)
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    verb = "has a factor" if total == 1 else "have factors"
    return (f"{listed} {verb} below 0: {'its' if total == 1 else 'their'} activity lowers the goodness "
            "(constraint-violation detectors, section III.E).")


def steps_per_layer(config: RunConfig | Mapping[str, Any]) -> int:
    """Optimizer steps each layer gets: epochs x batches per epoch (one batch when full-batch)."""
    cfg = RunConfig.coerce(config)
    n = DATASETS[cfg.dataset].train_samples(cfg.train_subset)
    batch = cfg.batch_size or n
    return cfg.epochs * math.ceil(n / batch)


def _chance_reason(cfg: RunConfig, test_acc: float | None) -> str | None:
    """Why a run with this test accuracy sits at chance level (within ``CHANCE_MARGIN`` of 1 / classes) and what
    to change, as a clause; None for a run above chance or without an accuracy."""
    try:
        acc = float(test_acc)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(acc) or acc > 1.0 / DATASETS[cfg.dataset].n_classes + CHANCE_MARGIN:
        return None
    steps = steps_per_layer(cfg)
    if has_goodness(cfg.algo) and steps < MIN_STEPS_PER_LAYER:
        return (f"each layer had only {steps} training steps (full-batch FF needs about {MIN_STEPS_PER_LAYER} or "
                "more per layer before the label weights learn); train more epochs or use mini-batches (batch size)")
    return f"the run diverged; lower lr (now {cfg.lr})"


def chance_note(config: RunConfig | Mapping[str, Any], test_acc: float | None) -> str | None:
    """The one-line verdict a finished run at chance level carries (the CLI's summary, the stored run):
    ``"at chance: the run diverged; lower lr (now 10.0)"``; None for a run above chance."""
    reason = _chance_reason(RunConfig.coerce(config), test_acc)
    return None if reason is None else f"at chance: {reason}"


def chance_hint(run: Mapping[str, Any]) -> str | None:
    """A sentence for a finished run whose test accuracy is at chance level, else None."""
    try:
        cfg = RunConfig.coerce(run["config"])
    except (TypeError, ValueError, KeyError):
        return None
    acc = run.get("test_acc")
    reason = _chance_reason(cfg, acc)
    if reason is None:
        return None
    chance = 1.0 / DATASETS[cfg.dataset].n_classes
    return (f"This run predicts at chance level ({percent(acc)}, chance is {percent(chance, 0)}): "
            f"{reason}, or start from the preset \"{SUGGESTED_PRESET}\".")
