"""Training: FF and FGFF (Algorithm 1, greedy or simultaneous) and the backprop baseline.

``Trainer(config).run()`` is a generator of events (see ``events.py``): iterate it to train, stop
iterating (or call ``stop()``) to end cleanly between epochs. ``train(config)`` runs to the end
and returns the final ``RunFinished`` with the trained ``Trainer``.

FF and FGFF are one code path: every layer multiplies its squared activations by its
significance factors ``s`` (eq. 3). FGFF trains them with a second optimizer at ``sig_lr``
(``optim.LayerOptimizers``); FF leaves them frozen at 1, where eq. (3) is eq. (2).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import RunConfig
from .data import Dataset, load_for_config
from .events import EpochMetrics, EvalMetrics, Event, RunFinished, RunStarted
from .goodness import LayerOutputs, layer_loss
from .label_input import FirstLayerData, LayerInputs, PairInputs
from .model import BPNet, FFNet
from .optim import LayerOptimizers

EVAL_SUBSET_SEED = 0  # the in-training evaluation subsets are the same for every run

def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA if present, then Apple MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} was asked for but CUDA is not available here; use auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device: 'mps' was asked for but Apple MPS is not available here; use auto or cpu")
    return torch.device(name)


def draw_negative_labels(labels: Tensor, n_classes: int, generator: torch.Generator) -> Tensor:
    """A wrong label for each sample, uniform over the other ``n_classes - 1`` (never the true one)."""
    offset = torch.randint(1, n_classes, labels.shape, generator=generator)
    return (labels.cpu() + offset).remainder(n_classes).to(labels.device)


class EpochStats(NamedTuple):
    """One layer-epoch's batch means: the loss and the goodness with the factors ``s`` (eq. 3) and
    without them (eq. 2). The goodness fields are None for BP. Field names are ``EpochMetrics``'s."""

    loss: float
    g_pos: float | None = None
    g_neg: float | None = None
    g_pos_no_significance: float | None = None
    g_neg_no_significance: float | None = None


def _stats_on_device(loss: Tensor, out: LayerOutputs) -> Tensor:
    """``EpochStats`` of one step as a device vector in field order: no host sync per step."""
    return torch.stack([loss.detach(), out.g_pos.detach().mean(), out.g_neg.detach().mean(),
                        out.g_pos_no_significance.mean(), out.g_neg_no_significance.mean()])


class Accuracy(NamedTuple):
    with_significance: float  # the prediction rule with the factors s (for FF they are 1); BP's accuracy
    no_significance: float | None  # without them (eq. 2); None for BP


@dataclass
class _PendingEpoch:
    """A layer-epoch whose metrics are still on the device (copied to the host in batches)."""

    layer: int
    epoch: int
    step: int
    stats: Tensor  # ``EpochStats`` in field order (BP: the loss only)
    s: Tensor | None  # the layer's significance factors after the epoch


class _EpochClock:
    """Seconds per layer-epoch, measured between metric flushes; evaluation time is left out."""

    def __init__(self) -> None:
        self._since = time.perf_counter()

    def restart(self) -> None:
        self._since = time.perf_counter()

    def seconds_per(self, n_epochs: int) -> float:
        return (time.perf_counter() - self._since) / n_epochs


class Trainer:
    """Trains one run described by a ``RunConfig`` (or its dict form) on a ``Dataset``.

    ``data`` defaults to the config's dataset; pass one to reuse loaded data across runs.
    """

    def __init__(self, config: RunConfig | dict, data: Dataset | None = None) -> None:
        self.config = RunConfig.coerce(config)
        cfg = self.config
        self.device = resolve_device(cfg.device)
        data = data if data is not None else load_for_config(cfg)
        self.data = data.to(self.device)  # resident on the device for the whole run
        self.label_value = cfg.resolve_label_value(data.x_train.max())
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(cfg.seed)
            if cfg.algo == "bp":
                model = BPNet(data.input_dim, cfg.layers, data.n_classes)
            else:
                model = FFNet(data.input_dim, cfg.layers, data.n_classes, self.label_value, cfg.factorize)
        self.model = model.to(self.device)
        self.generator = torch.Generator().manual_seed(cfg.seed)  # negatives and batch order
        # Speed mode: torch.compile fuses the forward, goodness and loss of a layer step (one
        # compiled graph per layer and input shape); the optimizer steps stay eager.
        self._forward_loss = torch.compile(self._forward_loss_eager) if cfg.compile else self._forward_loss_eager
        self._mm_dtype = torch.bfloat16 if cfg.precision == "bf16" else None
        self._stop_requested = False
        self._should_stop: Callable[[], bool] = lambda: False
        self._optimizers: list[LayerOptimizers] = []
        self._eval_idx = self._eval_indices()
        self._clock = _EpochClock()
        self._epoch_seconds: list[float] = []
        self.result: RunFinished | None = None

    # -- public -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to end after the current epoch."""
        self._stop_requested = True

    def run(self, should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Train, yielding events. ``should_stop`` is polled between epochs."""
        cfg = self.config
        wall_start = time.perf_counter()
        self._should_stop = should_stop or (lambda: False)
        yield RunStarted(config=cfg.to_dict(), device=str(self.device), n_train=len(self.data.y_train),
                         n_test=len(self.data.y_test), input_dim=self.data.input_dim,
                         n_params=sum(p.numel() for p in self.model.parameters()),
                         epoch_events=cfg.epoch_events)
        with self._matmul_precision():
            self._clock.restart()
            body = self._run_bp() if cfg.algo == "bp" else self._run_ff()
            stopped = yield from body
            if stopped:
                final = dict(test_acc=None, test_acc_no_significance=None, train_acc=None,
                             train_acc_no_significance=None)
            else:
                test = self.accuracy(self.data.x_test, self.data.y_test)
                train = self.accuracy(self.data.x_train, self.data.y_train)
                final = dict(test_acc=test.with_significance, test_acc_no_significance=test.no_significance,
                             train_acc=train.with_significance, train_acc_no_significance=train.no_significance)
        seconds = self._epoch_seconds
        self.result = RunFinished(status="stopped" if stopped else "done", **final,
                                  train_seconds=sum(seconds),
                                  epoch_seconds_median=statistics.median(seconds) if seconds else 0.0,
                                  wall_seconds=time.perf_counter() - wall_start)
        yield self.result

    @torch.no_grad()
    def accuracy(self, x: Tensor, y: Tensor, upto: int | None = None) -> Accuracy:
        """Accuracy of the prediction rule with and without the significance factors (BP: one value)."""
        chunk = self.config.eval_chunk
        if isinstance(self.model, BPNet):
            return Accuracy(_fraction(self.model.predict(x, chunk=chunk) == y), None)
        g = self.model.label_goodness(x, upto=upto, chunk=chunk)
        return Accuracy(_fraction(g.with_significance.argmax(1) == y), _fraction(g.no_significance.argmax(1) == y))

    # -- FF / FGFF ----------------------------------------------------------------------------
    def _run_ff(self) -> Iterator[Event]:
        cfg, model, data = self.config, self.model, self.data
        y = data.y_train
        first_data = model.first_input.prepare(data.x_train, y)  # layer 1's positive part, once per run
        y_neg = draw_negative_labels(y, data.n_classes, self.generator)  # drawn once (Algorithm 1, l. 5)
        self._optimizers = [LayerOptimizers(layer, cfg) for layer in model.layers]
        n_layers = len(model.layers)
        pending: list[_PendingEpoch] = []
        step = 0
        if cfg.schedule == "greedy":
            # Algorithm 1: train layer i for all its epochs on the frozen outputs of layers < i.
            inputs = first_data.inputs(y_neg)
            for i in range(n_layers):
                for epoch in range(1, cfg.epochs + 1):
                    if self._stop_now():
                        yield from self._flush(pending)
                        return True
                    if cfg.negatives == "resample":
                        y_neg = draw_negative_labels(y, data.n_classes, self.generator)
                        inputs = self._with_new_negatives(i, inputs, first_data, y_neg)
                    step += 1
                    stats = self._ff_epoch([i], inputs)
                    pending.append(_PendingEpoch(i, epoch, step, stats[0], self._significance_snapshot(i)))
                    yield from self._maybe_flush_and_eval(pending, i, epoch, step, upto=i + 1)
                with torch.no_grad():  # Algorithm 1, l. 22-23: feed the frozen outputs onwards
                    inputs = inputs.forward(model.layers[i])
            return False
        # simultaneous: every layer steps each epoch on the detached outputs of the layer below
        for epoch in range(1, cfg.epochs + 1):
            if self._stop_now():
                yield from self._flush(pending)
                return True
            if cfg.negatives == "resample":
                y_neg = draw_negative_labels(y, data.n_classes, self.generator)
            stats = self._ff_epoch(list(range(n_layers)), first_data.inputs(y_neg))
            for i in range(n_layers):
                step += 1
                pending.append(_PendingEpoch(i, epoch, step, stats[i], self._significance_snapshot(i)))
            yield from self._maybe_flush_and_eval(pending, n_layers - 1, epoch, step, upto=n_layers)
        return False

    @torch.no_grad()
    def _with_new_negatives(self, i: int, inputs: LayerInputs, first_data: FirstLayerData,
                            y_neg: Tensor) -> LayerInputs:
        """Layer i's inputs with the negatives of labels ``y_neg``, through the frozen layers below it."""
        first = first_data.inputs(y_neg)
        if i == 0:
            return first
        neg = first.forward(self.model.layers[0]).neg
        for layer in self.model.layers[1:i]:
            neg = layer(neg)
        return PairInputs(inputs.pos, neg)

    def _ff_epoch(self, layer_ids: list[int], inputs: LayerInputs) -> list[Tensor]:
        """One epoch for the listed layers (one for greedy, all for simultaneous), each on the outputs
        of the one before. Returns per-layer ``EpochStats`` vectors, kept on the device (no sync here)."""
        cfg = self.config
        n = len(self.data.y_train)
        batches = [None] if cfg.full_batch or cfg.batch_size >= n else \
            torch.randperm(n, generator=self.generator).to(self.device).split(cfg.batch_size)
        sums = [torch.zeros(len(EpochStats._fields), device=self.device) for _ in layer_ids]
        for rows in batches:
            batch = inputs if rows is None else inputs.select(rows)
            for k, i in enumerate(layer_ids):
                out, stats = self._layer_step(i, batch)
                sums[k] += stats
                batch = PairInputs(out.h_pos, out.h_neg)  # detached: no gradient crosses layers
        return [s / len(batches) for s in sums]

    def _forward_loss_eager(self, i: int, inputs: LayerInputs) -> tuple[LayerOutputs, Tensor]:
        """Layer i's outputs, its goodness with ``s`` (eq. 3) and without (eq. 2), and its local loss."""
        cfg = self.config
        out = inputs.layer_goodness(self.model.layers[i], self._mm_dtype)
        return out, layer_loss(out.g_pos, out.g_neg, cfg.loss, cfg.threshold, cfg.delta)

    def _layer_step(self, i: int, inputs: LayerInputs) -> tuple[LayerOutputs, Tensor]:
        """Forward, goodness, local loss and the update of layer i (Algorithm 1, l. 9-19)."""
        out, loss = self._forward_loss(i, inputs)
        self._optimizers[i].step(loss)
        with torch.no_grad():
            return out, _stats_on_device(loss, out)

    def _significance_snapshot(self, i: int) -> Tensor:
        return self.model.layers[i].significance.detach().clone()

    # -- BP -----------------------------------------------------------------------------------
    def _run_bp(self) -> Iterator[Event]:
        cfg, model, data = self.config, self.model, self.data
        x, y = data.x_train, data.y_train
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        pending: list[_PendingEpoch] = []
        n = len(y)
        for epoch in range(1, cfg.epochs + 1):
            if self._stop_now():
                yield from self._flush(pending)
                return True
            batches = [None] if cfg.full_batch or cfg.batch_size >= n else \
                torch.randperm(n, generator=self.generator).to(y.device).split(cfg.batch_size)
            total = torch.zeros((), device=y.device)
            for idx in batches:
                xb, yb = (x, y) if idx is None else (x[idx], y[idx])
                with self._autocast():
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach()
            pending.append(_PendingEpoch(0, epoch, epoch, (total / len(batches)).reshape(1), None))
            yield from self._maybe_flush_and_eval(pending, 0, epoch, epoch, upto=None)
        return False

    # -- shared -------------------------------------------------------------------------------
    def _stop_now(self) -> bool:
        return self._stop_requested or self._should_stop()

    def _eval_indices(self) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(EVAL_SUBSET_SEED)
        k = self.config.eval_subset
        tr = torch.randperm(len(self.data.y_train), generator=gen)[:k].to(self.device)
        te = torch.randperm(len(self.data.y_test), generator=gen)[:k].to(self.device)
        return tr, te

    def _maybe_flush_and_eval(self, pending: list[_PendingEpoch], layer: int, epoch: int, step: int,
                              upto: int | None) -> Iterator[Event]:
        cfg = self.config
        last = epoch == cfg.epochs
        evaluate = cfg.eval_every > 0 and (epoch % cfg.eval_every == 0 or last)
        if evaluate or last or len(pending) >= cfg.log_every * (1 if cfg.schedule == "greedy" else len(cfg.layers)):
            yield from self._flush(pending)
        if evaluate:
            tr, te = self._eval_idx
            train_acc = self.accuracy(self.data.x_train[tr], self.data.y_train[tr], upto)
            test_acc = self.accuracy(self.data.x_test[te], self.data.y_test[te], upto)
            yield EvalMetrics(layer=layer, epoch=epoch, step=step, train_acc=train_acc.with_significance,
                              test_acc=test_acc.with_significance,
                              train_acc_no_significance=train_acc.no_significance,
                              test_acc_no_significance=test_acc.no_significance)
            self._clock.restart()  # evaluation time is not training time

    def _flush(self, pending: list[_PendingEpoch]) -> Iterator[EpochMetrics]:
        """Copy the pending epochs' metrics to the host in one transfer and yield them."""
        if not pending:
            self._clock.restart()
            return
        rows = torch.stack([p.stats for p in pending]).cpu().tolist()  # the one sync point
        factors = [p.s.cpu().numpy() if p.s is not None else None for p in pending]
        # Seconds per layer-epoch, averaged over the flushed ones: exact on GPU because the
        # transfer above waits for the queued work.
        seconds = self._clock.seconds_per(len(pending))
        for p, row, s in zip(pending, rows, factors):
            self._epoch_seconds.append(seconds)
            yield EpochMetrics(layer=p.layer, epoch=p.epoch, step=p.step, **EpochStats(*row)._asdict(),
                               seconds=seconds, significance=s)
        pending.clear()
        self._clock.restart()

    @contextlib.contextmanager
    def _matmul_precision(self) -> Iterator[None]:
        """fp32 is exact; tf32 lets CUDA matmuls use TensorFloat-32 for this run only."""
        if self.config.precision != "tf32":
            yield
            return
        previous = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("high")
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(previous)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def _fraction(correct: Tensor) -> float:
    return float(correct.float().mean().item()) if len(correct) else float("nan")


def train(config: RunConfig | dict, data: Dataset | None = None,
          callback: Callable[[Event], None] | None = None) -> tuple[Trainer, RunFinished]:
    """Run a whole training, passing each event to ``callback``; return the trainer and its result."""
    trainer = Trainer(config, data)
    for event in trainer.run():
        if callback is not None:
            callback(event)
    assert trainer.result is not None
    return trainer, trainer.result
