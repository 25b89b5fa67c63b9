"""The work of a run, counted from its config alone (no torch, no data): multiply-adds and fixed-cost calls.

A training-time estimate is this work times a measured speed (``estimate.py``). The count follows the
engine's loops (``engine/training.py``, ``engine/model.py``); per sample, a pass through layer i costs
``w[i-1] x w[i]`` multiply-adds (``w[0]`` the flattened image). What a run does, for N training samples,
E epochs (per layer for the greedy schedule), C classes:

- **training**, FF/FGFF: every layer-epoch runs its layer forward on the positive and the negative inputs and
  takes the weights' gradient of both: 4 passes per sample; layer 1 on the label-factorised path (``factorize``)
  does one full product for both and relabels the negatives with a thin (C x out) product: 2 passes. The
  greedy schedule also feeds each trained layer's outputs onwards (2 passes, once per layer), and with new
  negatives each epoch (``negatives=resample`` or hard negatives) passes them through the frozen layers
  below the one it trains (1 pass); ``augment_shift`` passes both.
  BP: forward, the inputs' gradient (not for layer 1) and the weights' gradient, through the output layer too;
  one call per minibatch for the whole net.
- **label passes** (FF/FGFF): scoring a sample runs the net once per candidate label (C passes; layer 1 on the
  factorised path computes its product once and relabels it). Hard negatives score ``hard_negatives`` x N
  samples through the layers trained so far every ``hard_negatives_every`` epochs; each evaluation
  (``eval_every``) scores ``eval_subset`` train and test samples; the end scores the whole train and test sets.
- **calls**: every layer step and every prediction chunk through a layer has a fixed cost (Python, kernel
  launches, the optimizer) that a tiny net does not amortise: full batch, one step per layer-epoch;
  minibatches, ``ceil(N / batch_size)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..config.schema import RunConfig
from ..data.registry import DATASETS
from ..vocabulary import has_goodness

# Samples per prediction chunk with eval_chunk=0 (engine/label_input.py: prediction_chunk, on a CPU).
CHUNK_FACTORISED, CHUNK_PLAIN = 128, 512
READOUT_BATCH = 1000  # engine/readout.py


class RunWork(NamedTuple):
    """What a run costs: multiply-adds of its training and of its scoring, and its fixed-cost calls."""

    train_macs: float  # the layer steps (and, greedy, passing data through frozen layers)
    score_macs: float  # label passes: hard negatives, evaluations, the final accuracies, the readout
    calls: float  # layer steps plus prediction chunks x layers
    full_batch: bool

    @property
    def macs(self) -> float:
        return self.train_macs + self.score_macs


class _Net(NamedTuple):
    widths: tuple[int, ...]  # input, then each layer
    classes: int
    factorised: bool

    def macs(self, i: int) -> float:
        """Multiply-adds of one sample through layer i (0-based)."""
        return float(self.widths[i] * self.widths[i + 1])

    def label_pass(self, upto: int) -> float:
        """Multiply-adds of scoring one sample with every label through the first ``upto`` layers."""
        first = self.macs(0) * (1 if self.factorised else self.classes)
        return first + self.classes * sum(self.macs(i) for i in range(1, upto))

    def chunks(self, samples: int, chunk: int) -> int:
        return math.ceil(samples / (chunk or (CHUNK_FACTORISED if self.factorised else CHUNK_PLAIN)))


def run_work(config: RunConfig | Mapping[str, Any]) -> RunWork:
    """The work of ``config`` (module docstring); the dataset's sizes come from the registry."""
    cfg = RunConfig.coerce(config)
    spec = DATASETS[cfg.dataset]
    n, n_test = spec.train_samples(cfg.train_subset), spec.n_test
    net = _Net((spec.input_dim, *cfg.layers), spec.n_classes, cfg.factorize)
    batches = 1 if cfg.full_batch or cfg.batch_size >= n else math.ceil(n / cfg.batch_size)
    evals = _evaluations(cfg.epochs, cfg.eval_every)
    scored = min(cfg.eval_subset, n) + min(cfg.eval_subset, n_test)  # each evaluation's samples
    if not has_goodness(cfg.algo):
        return _bp_work(cfg, net, n, n_test, batches, evals, scored)
    n_layers = len(cfg.layers)
    train = scores = calls = 0.0
    new_negatives = cfg.negatives == "resample" or cfg.hard_negatives > 0
    hard_rounds = math.ceil(cfg.epochs / cfg.hard_negatives_every) if cfg.hard_negatives > 0 else 0
    hard_rows = n * min(1.0, cfg.hard_negatives)
    greedy = cfg.schedule == "greedy"
    for i in range(n_layers):
        step_passes = 2 if (i == 0 and net.factorised) else 4
        train += cfg.epochs * n * step_passes * net.macs(i)
        calls += cfg.epochs * batches
        upto = i + 1 if greedy else n_layers  # the layers a greedy layer's evaluations and hard negatives use
        if greedy:
            below = sum(net.macs(j) for j in range(i))
            per_epoch = 2 * below if cfg.augment_shift else (below if new_negatives else 0.0)
            train += cfg.epochs * n * per_epoch + 2 * n * net.macs(i)  # and feeding its outputs onwards
        if greedy or i == n_layers - 1:  # simultaneous: one round of scoring for all layers
            scores += hard_rounds * hard_rows * net.label_pass(upto) + evals * scored * net.label_pass(upto)
            eval_chunks = net.chunks(min(cfg.eval_subset, n), cfg.eval_chunk) + \
                net.chunks(min(cfg.eval_subset, n_test), cfg.eval_chunk)
            calls += upto * (hard_rounds * net.chunks(int(hard_rows), cfg.eval_chunk) + evals * eval_chunks)
    scores += (n + n_test) * net.label_pass(n_layers)
    calls += n_layers * (net.chunks(n, cfg.eval_chunk) + net.chunks(n_test, cfg.eval_chunk))
    if cfg.readout_epochs:
        features = sum(cfg.layers) * net.classes
        scores += (n + n_test) * sum(net.macs(i) for i in range(n_layers)) + cfg.readout_epochs * n * 3 * features
        calls += cfg.readout_epochs * math.ceil(n / READOUT_BATCH)
    return RunWork(train, scores, calls, batches == 1)


def _bp_work(cfg: RunConfig, net: _Net, n: int, n_test: int, batches: int, evals: int, scored: int) -> RunWork:
    """Backprop: through the hidden layers and the output layer; scoring is one plain pass per sample.

    Mono-Forward (``mf``, no goodness either) is counted the same way: its per-layer projections to the classes
    replace BP's one output layer, and its greedy schedule repeats the epochs per layer, so its work is within
    about the number of layers of this count (the estimate's range is wider than that only for deep MF nets)."""
    widths = (*net.widths, net.classes)
    layer = [float(a * b) for a, b in zip(widths[:-1], widths[1:])]
    per_sample = sum(layer)
    train = cfg.epochs * n * (3 * per_sample - layer[0])  # layer 1 needs no gradient of its inputs
    scores = (evals * scored + n + n_test) * per_sample
    return RunWork(train, scores, float(cfg.epochs * batches), batches == 1)  # one step for the whole net


def _evaluations(epochs: int, every: int) -> int:
    """How many in-training evaluations a run makes: every ``every`` epochs and at the last (0: none)."""
    if every <= 0:
        return 0
    return epochs // every + (1 if epochs % every else 0)
