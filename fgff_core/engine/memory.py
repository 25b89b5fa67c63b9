"""How much memory a run needs, worked out from its config before anything is loaded or trained, and the
check that refuses a run the machine cannot hold (issue 38, item 3).

``estimate_memory`` follows what ``training.Trainer`` allocates. Every number is float32 (4 bytes); N is
the training rows, N_t the test rows, D the input width, B the rows of a step (N for a full batch), a -> b a
layer's input and output widths, C the classes, K the evaluation chunk. The parts of ``MemoryEstimate``:

- ``weights``: W and b of every layer (BP: and the softmax head); ``gradients``: one number per weight (a
  layer's gradients stay after its last step); ``optimizer``: Adam/AdamW 2 per weight, SGD 1 (its momentum
  buffer; none at momentum 0);
- ``significance``: the factors s, one per neuron (FF and FGFF), with FGFF's gradient and Adam (3 more);
  and the copies of s each epoch keeps until its metrics are flushed;
- ``data``: the training and test images and labels, resident for the whole run (with ``train_subset``,
  the full set stays cached beside the subset); loading holds a second copy for a moment;
- ``training``: the largest moment of training (live sizes). A step of layer a -> b on B rows holds the rows
  it copied (a minibatch's inputs, 2 B a), their normalised copies (2 B a; none for the factorised layer 1,
  whose input is normalised once per run), z then h of both inputs (2 B b) with the goodness's row-block
  temporaries, or h and the gradient pieces of the backward (4 B b), the previous minibatch's outputs (2 B b)
  and two weight-sized gradient temporaries (2 a b). The greedy schedule also holds the layer's inputs for all
  N rows (2 N a) and, between two layers, the old and the new ones (3 N (a + b)); layer 1's prepared inputs
  (N D) stay all run; loading holds a second copy of the data for a moment;
- ``evaluation``: the prediction rule scores each chunk of K samples under all C labels at once: a layer's
  activations, its normalised copy and the next layer's (C K (2 b + b')), or the activations and the goodness's
  row blocks; and the scores, layers x samples x C. Hard negatives score all N training rows; the readout
  (``readout_epochs``) keeps every hidden activation of all N + N_t samples;
- ``runtime``: the process itself, Python with torch and scikit-learn imported (``RUNTIME_BYTES``).

``total`` = weights + gradients + optimizer + significance + data + runtime + ``ALLOCATOR_SLACK`` x (training +
evaluation): what training frees stays with the process, and the heap holds more than is live (see
``ALLOCATOR_SLACK``). Not counted: torch.compile's own memory, and anything without a width (a label is 8 bytes
a row). ``benchmarks/memory.py`` measures real peaks against it (benchmarks/MEMORY.md): on the CPU they came to
0.5 to 0.9 of the estimate.

``check_memory`` compares the total with what the run may use (``memory_budget.memory_limit``: the memory
available now, at most ``$FGFF_MEMORY_LIMIT``). Torch is imported only inside the functions that need it (the
engine's default chunks, the device ``auto``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..config.schema import RunConfig
from ..data.registry import DATASETS
from ..format import size
from ..vocabulary import has_goodness, trains_factors, trains_locally
from .memory_budget import MEMORY_LIMIT_ENV, MemoryBudget, device_of, memory_limit

__all__ = ["ALLOCATOR_SLACK", "MEMORY_LIMIT_ENV", "RUNTIME_BYTES", "MemoryBudget", "MemoryEstimate", "MemoryLimitError",
           "check_memory", "estimate_for_config", "estimate_memory"]

FLOAT = 4  # bytes of a float32
LABEL = 8  # bytes of an int64 label
# A process that trains: Python, torch and scikit-learn imported, the digits loaded. Measured 0.8-0.95 GiB peak
# RSS with torch 2.14's CUDA build on the benchmark machine (benchmarks/MEMORY.md); a CUDA context is less.
RUNTIME_BYTES = 1 << 30
# What the temporaries really take: glibc keeps freed memory for reuse (all of it under retain_freed_memory, which
# the CLI and the job workers set) and a freed block serves only a later block that fits in it, so the heap grows
# past the live peak. Measured peaks of the training and evaluation temporaries together reached 0.8 to 2.3 times
# their live sizes, varying from run to run (benchmarks/MEMORY.md); the factor is above the highest.
ALLOCATOR_SLACK = 2.5
ADVICE = "use fewer or narrower layers, a smaller batch_size or eval_chunk"


class MemoryLimitError(ValueError):
    """A run whose estimated memory is over the limit; the message gives both and what to change."""


@dataclass(frozen=True)
class MemoryEstimate:
    """The bytes a run needs, by part (see the module docstring); ``total`` is its expected peak."""

    weights: int
    gradients: int
    optimizer: int
    significance: int
    data: int
    training: int
    evaluation: int
    runtime: int

    @property
    def temporaries(self) -> int:
        """The training and evaluation temporaries as the process holds them: both (what training freed stays
        with the process), times ``ALLOCATOR_SLACK``."""
        return math.ceil(ALLOCATOR_SLACK * (self.training + self.evaluation))

    @property
    def total(self) -> int:
        return (self.weights + self.gradients + self.optimizer + self.significance + self.data + self.runtime
                + self.temporaries)

    def text(self) -> str:
        """``"about 6.3 GiB (temporaries 5.7 GiB: training 1.3 GiB and evaluation 961 MiB, x2.5 for the
        allocator; weights and optimizer 66 MiB; torch 1 GiB; data 463 KiB)"``, the largest part first."""
        params = self.weights + self.gradients + self.optimizer + self.significance
        parts = [(self.temporaries, f"temporaries {size(self.temporaries)}: training {size(self.training)} and "
                                    f"evaluation {size(self.evaluation)}, x{ALLOCATOR_SLACK:g} for the allocator"),
                 (params, f"weights and optimizer {size(params)}"), (self.data, f"data {size(self.data)}"),
                 (self.runtime, f"torch {size(self.runtime)}")]
        return f"about {size(self.total)} ({'; '.join(text for _, text in sorted(parts, key=lambda p: -p[0]))})"

    def as_dict(self) -> dict[str, int]:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "total": self.total}


@dataclass(frozen=True)
class _Shapes:
    """What the estimate reads of a run besides its config."""

    input_dim: int
    n_train: int
    n_test: int
    n_loaded: int  # training rows loaded before train_subset (they stay cached)
    n_classes: int
    eval_chunk: int
    bp_chunk: int
    readout_chunk: int
    row_block: int  # rows of the goodness's temporaries (all rows on a GPU)


def estimate_memory(config: RunConfig | Mapping[str, Any], input_dim: int, n_train: int, n_test: int, *,
                    n_classes: int = 10, n_loaded: int | None = None, device_type: str = "cpu") -> MemoryEstimate:
    """The memory a run of ``config`` needs on data of these shapes, on a ``device_type`` device ("cpu", "cuda",
    "mps"; it sets the default evaluation chunk). ``n_loaded``: training rows loaded before ``train_subset``."""
    cfg = RunConfig.coerce(config)
    for name, value in (("input_dim", input_dim), ("n_train", n_train), ("n_test", n_test), ("n_classes", n_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    eval_chunk, bp_chunk, readout_chunk, row_block = _engine_chunks(cfg, device_type)
    shapes = _Shapes(input_dim, n_train, n_test, max(n_loaded or n_train, n_train), n_classes,
                     eval_chunk, bp_chunk, readout_chunk, row_block)
    widths = [input_dim, *cfg.layers]
    n_weights = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    if not has_goodness(cfg.algo):  # MF: each layer's projection M_i to class scores; BP: the head
        n_weights += sum(cfg.layers) * n_classes if trains_locally(cfg.algo) else widths[-1] * n_classes + n_classes
    per_weight = 2 if cfg.optimizer in ("adam", "adamw") else (1 if cfg.momentum > 0 else 0)
    rows = n_train + n_test  # on a GPU only the run's own rows; on the CPU the cached full set too
    if device_type == "cpu" and n_train < shapes.n_loaded:
        rows += shapes.n_loaded
    data = (FLOAT * input_dim + LABEL) * rows
    if has_goodness(cfg.algo):
        training, evaluation, significance = _ff_training(cfg, shapes), _ff_evaluation(cfg, shapes), _factors(cfg)
    else:  # MF and BP: minibatches through the hidden layers (MF keeps one layer's graph at a time: at most BP's)
        training, evaluation, significance = _bp_training(cfg, shapes, n_weights), _bp_evaluation(cfg, shapes), 0
    loading = data if device_type == "cpu" else 0  # the raw arrays beside the normalised ones, for a moment
    return MemoryEstimate(weights=FLOAT * n_weights, gradients=FLOAT * n_weights,
                          optimizer=FLOAT * per_weight * n_weights, significance=significance, data=data,
                          training=max(training, loading), evaluation=evaluation, runtime=RUNTIME_BYTES)


def estimate_for_config(config: RunConfig | Mapping[str, Any], device_type: str | None = None) -> MemoryEstimate:
    """``estimate_memory`` with the shapes of the config's dataset from the dataset registry (no data loaded);
    ``device_type`` defaults to the device the config resolves to."""
    cfg = RunConfig.coerce(config)
    spec = DATASETS[cfg.dataset]
    return estimate_memory(cfg, spec.input_dim, spec.train_samples(cfg.train_subset), spec.n_test,
                           n_classes=spec.n_classes, n_loaded=spec.n_train,
                           device_type=device_type or device_of(cfg.device)[0])


# -- the parts -------------------------------------------------------------------------------------

def _factors(cfg: RunConfig) -> int:
    """s of every layer (FGFF: with its gradient and Adam's two numbers), and the epochs' copies of s waiting
    for a flush: at most ``log_every`` epochs, fewer when an evaluation or the last epoch flushes first."""
    neurons = sum(cfg.layers)
    waiting = min(cfg.log_every, cfg.epochs, cfg.eval_every or cfg.epochs)
    stepping = len(cfg.layers) if cfg.schedule == "simultaneous" else 1
    return FLOAT * (neurons * (4 if trains_factors(cfg.algo) else 1) + waiting * stepping * max(cfg.layers))


def _rows(cfg: RunConfig, n: int) -> int:
    return n if cfg.full_batch or cfg.batch_size >= n else cfg.batch_size


def _ff_step(cfg: RunConfig, s: _Shapes, rows: int, a: int, b: int, copied: int, relabelled: bool,
             previous: bool) -> int:
    """Numbers alive during one step of layer a -> b on ``rows`` rows: ``copied`` rows of inputs the step has
    for itself (a minibatch's, or the layer below's outputs), the normalised inputs (2 rows a; none for the
    factorised layer 1, whose input is normalised once per run), z then h of both inputs (2 rows b) with the
    goodness's two row-block temporaries in the forward, or h and the gradient pieces d (4 rows b) in the
    backward, the previous minibatch's outputs (2 rows b, ``previous``), and two weight-sized gradient
    temporaries (2 a b)."""
    block = min(s.row_block, rows)
    numbers = (copied * a + (0 if relabelled else 2 * rows * a) + max(2 * rows * b + 2 * block * b, 4 * rows * b)
               + (2 * rows * b if previous else 0) + 2 * a * b)
    if cfg.precision == "bf16":  # the bf16 copies of the inputs, the outputs and W, at half a float each
        numbers += rows * a + 2 * rows * b + a * b
    return numbers


def _ff_training(cfg: RunConfig, s: _Shapes) -> int:
    """The largest training moment of FF/FGFF: a step beside the inputs its layer holds, or a hand-over."""
    n, d, widths = s.n_train, s.input_dim, [s.input_dim, *cfg.layers]
    batch = _rows(cfg, n)
    minibatch = batch < n
    prepared = n * d * (1 if cfg.factorize else 2)  # layer 1's positives (the plain path: and its negatives)
    if cfg.augment_shift:
        prepared += n * d  # this epoch's shifted images
    # New negatives or shifted images each epoch: the greedy layer's inputs are passed anew through the layers
    # below while its old ones are still held.
    refreshed = cfg.augment_shift or cfg.hard_negatives > 0 or cfg.negatives == "resample"
    peak = below = 0
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        relabelled = i == 0 and cfg.factorize
        if cfg.schedule == "simultaneous":  # one minibatch through every layer; the layer below's outputs passed on
            copied = 2 * batch if i else ((batch if relabelled else 2 * batch) if minibatch else 0)
            peak = max(peak, _ff_step(cfg, s, batch, a, b, copied, relabelled, previous=False))
            continue
        held = 2 * n * a if i else 0
        copied = (1 if relabelled else 2) * batch if minibatch else 0
        step = _ff_step(cfg, s, batch, a, b, copied, relabelled, previous=minibatch)
        peak = max(peak, held + step, held + below if refreshed else 0)
        handover = 4 * n * b if relabelled else 3 * n * (a + b)
        below = max(below, handover)
        peak = max(peak, handover)
    return FLOAT * (prepared + peak)


def _scoring(cfg: RunConfig, s: _Shapes, rows: int, upto: int) -> int:
    """Numbers alive while the prediction rule scores ``rows`` samples with the first ``upto`` layers: one chunk's
    activations under all C labels, and the scores (with and without s, layers x rows x C, twice while joined)."""
    chunk = min(s.eval_chunk, rows)
    labelled = s.n_classes * chunk
    block = min(s.row_block, labelled)
    widths = [*cfg.layers[:upto], 0]
    first = labelled * widths[0] + chunk * (s.input_dim + widths[0]) * (1 if cfg.factorize else s.n_classes)
    through = max(max(labelled * (2 * b + nxt), (labelled + 2 * block) * b) for b, nxt in zip(widths[:-1], widths[1:]))
    return max(first, through) + 4 * upto * rows * s.n_classes + chunk * s.input_dim


def _ff_evaluation(cfg: RunConfig, s: _Shapes) -> int:
    """The largest evaluation moment: in training (beside the inputs a greedy layer holds), hard negatives,
    the final accuracies and the readout."""
    widths, n = [s.input_dim, *cfg.layers], s.n_train
    prepared = n * s.input_dim * (1 if cfg.factorize else 2)
    subset = min(cfg.eval_subset, max(n, s.n_test))
    peak = 0
    for i in range(len(cfg.layers)):
        held = 2 * n * widths[i] if i and cfg.schedule == "greedy" else 0
        upto = i + 1 if cfg.schedule == "greedy" else len(cfg.layers)
        during = _scoring(cfg, s, subset, upto) if cfg.eval_every else 0
        if cfg.hard_negatives > 0:
            during = max(during, _scoring(cfg, s, n, upto) + n * s.input_dim)
        peak = max(peak, prepared + held + during)
    peak = max(peak, _scoring(cfg, s, max(n, s.n_test), len(cfg.layers)))
    if cfg.readout_epochs:
        first = 1 if cfg.predict_layers == "skip_first" and len(cfg.layers) > 1 else 0
        features = sum(cfg.layers[first:])
        chunk = min(s.readout_chunk, n)
        joined = max(2 * n, n + 2 * s.n_test) * features  # the train features, then the test ones, each joined
        peak = max(peak, joined + 3 * chunk * sum(cfg.layers) + 4 * features * s.n_classes)
    return FLOAT * peak


def _bp_training(cfg: RunConfig, s: _Shapes, n_weights: int) -> int:
    """A backprop step: the batch, every layer's linear and ReLU outputs kept for the backward, the two widest
    activation gradients, the logits; under bf16 autocast, half-size copies of the weights and activations."""
    batch, widths = _rows(cfg, s.n_train), cfg.layers
    numbers = batch * (s.input_dim + 2 * sum(widths) + 2 * max(widths) + 2 * s.n_classes)
    if cfg.precision == "bf16":
        numbers += (n_weights + batch * sum(widths)) // 2
    if cfg.augment_shift:
        numbers += s.n_train * s.input_dim
    return FLOAT * numbers


def _bp_evaluation(cfg: RunConfig, s: _Shapes) -> int:
    chunk = min(cfg.eval_chunk or s.bp_chunk, max(s.n_train, s.n_test))
    return FLOAT * chunk * (s.input_dim + sum(cfg.layers) + max(cfg.layers) + s.n_classes)  # every layer's output


def _engine_chunks(cfg: RunConfig, device_type: str) -> tuple[int, int, int, int]:
    """(evaluation chunk, BP's prediction chunk, the readout's chunk, the goodness's row block) as the engine
    picks them on ``device_type``; the engine's own numbers, read from it (this imports torch)."""
    import torch

    from .goodness import CPU_ROW_BLOCK
    from .label_input import first_layer_input
    from .model import BP_PREDICT_CHUNK
    from .readout import FEATURE_CHUNK

    default = first_layer_input(cfg.factorize, 1.0, 10).prediction_chunk(torch.device(device_type))
    row_block = CPU_ROW_BLOCK if device_type == "cpu" else 1 << 62
    return cfg.eval_chunk or default, cfg.eval_chunk or BP_PREDICT_CHUNK, FEATURE_CHUNK, row_block


# -- the check -------------------------------------------------------------------------------------

def check_memory(config: RunConfig | Mapping[str, Any], available_bytes: int | MemoryBudget | None = None,
                 environ: Mapping[str, str] | None = None) -> MemoryEstimate:
    """Refuse a run that needs more memory than it may use: ``MemoryLimitError`` (a ``ValueError``) with the
    estimate, the limit and what to change, in one line. ``available_bytes`` defaults to ``memory_limit`` of
    the config's device. Returns the estimate of a run that fits."""
    cfg = RunConfig.coerce(config)
    budget = memory_limit(cfg.device, environ) if available_bytes is None else available_bytes
    estimate = estimate_for_config(cfg)
    if budget is None:  # nothing known to check against
        return estimate
    if not isinstance(budget, MemoryBudget):
        budget = MemoryBudget(int(budget), "the limit given")
    if estimate.total > budget.bytes:
        raise MemoryLimitError(f"memory: this run needs {estimate.text()}, more than the {size(budget.bytes)} it may "
                               f"use ({budget.source}); {ADVICE}")
    return estimate

