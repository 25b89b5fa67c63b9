"""Training: FF and FGFF (Algorithm 1, greedy or simultaneous), Mono-Forward and the backprop baseline.

``Trainer(config).run()`` is a generator of events (see ``events.py``): iterate it to train, stop
iterating (or call ``stop()``) to end cleanly between epochs. Every caller drives it through
``driver.Driver``, which applies the one divergence rule; ``train(config)`` runs to the end that way and
returns the final ``RunFinished`` with the trained ``Trainer``.

FF and FGFF are one code path: every layer multiplies its squared activations by its
significance factors ``s`` (eq. 3). FGFF trains them with a second optimizer at ``sig_lr``
(``optim.LayerOptimizers``); FF leaves them frozen at 1, where eq. (3) is eq. (2).

Reading order: ``run`` -> ``_run_ff`` -> the schedule (``_train_greedy`` or ``_train_simultaneous``) ->
``_ff_epoch`` -> ``_layer_step``; ``_run_mf`` for Mono-Forward (``mono_forward.py``), ``_run_bp`` for the
baseline. The speed modes (``compile``, ``precision``) sit behind ``_forward_loss`` and ``device.py``; no
schedule branches on them.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config.schema import RunConfig
from ..data.loading import Dataset, load_for_config
from ..vocabulary import has_goodness, trains_locally
from . import evaluation, mono_forward
from .augment import background_value, random_shift
from .device import autocast, matmul_precision, resolve_device
from .driver import Driver
from .epoch_log import EpochLog, EpochStats, stats_on_device
from .evaluation import Accuracy, EvalSubsets
from .events import Event, RunFinished, RunStarted
from .goodness import LayerOutputs, layer_loss, peer_normalisation_loss
from .label_input import FirstLayerData, LayerInputs, PairInputs, through_frozen, with_new_negatives
from .model import BPNet, FFNet, build_network
from .mono_forward import MFNet
from .negatives import draw_negative_labels, hard_negative_labels, mix_negatives
from .optim import LayerOptimizers, lr_factor, make_optimizer, set_lr_factor
from .readout import train_readout


class Trainer:
    """Trains one run described by a ``RunConfig`` (or its dict form) on a ``Dataset``.

    ``data`` defaults to the config's dataset; pass one to reuse loaded data across runs. Constructing
    checks the arguments only; the data is loaded and the network built on first use (``prepare``).
    """

    def __init__(self, config: RunConfig | dict, data: Dataset | None = None) -> None:
        self.config = RunConfig.coerce(config)
        cfg = self.config
        if cfg.predict_layers == "skip_first" and len(cfg.layers) < 2 and has_goodness(cfg.algo):
            raise ValueError("predict_layers: skip_first needs 2 or more layers; use all for a 1-layer net")
        if data is not None and not isinstance(data, Dataset):
            raise TypeError(f"data: expected a Dataset or None, got {type(data).__name__}")
        self.device = resolve_device(cfg.device)  # checks the device is here (ValueError); moves nothing
        self._given_data = data
        self._prepared = False
        self._prepare_lock = threading.Lock()
        self._mm_dtype = torch.bfloat16 if cfg.precision == "bf16" else None
        self._stop_requested = False
        self._should_stop: Callable[[], bool] = lambda: False
        self._optimizers: list[LayerOptimizers] = []
        self._log = EpochLog()  # the layer-epochs' metrics, numbered, flushed to the host in batches
        self.result: RunFinished | None = None

    def prepare(self) -> Trainer:
        """Build what a run starts from, once: the data on the device (loaded unless given), the label
        value, the seeded network, the generators and the evaluation subsets. ``run()``, ``accuracy()`` and
        the ``data``, ``model`` and ``label_value`` attributes call it; returns the trainer."""
        if self._prepared:
            return self
        with self._prepare_lock:  # two threads may share a trainer (the lesson's): build once
            if not self._prepared:
                self._build()
        return self

    def _build(self) -> None:  # see ``prepare``
        cfg = self.config
        data = self._given_data if self._given_data is not None else load_for_config(cfg)
        self._data = data.to(self.device)  # resident on the device for the whole run
        self._label_value = cfg.resolve_label_value(data.x_train.max())
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(cfg.seed)
            model = build_network(cfg, data.input_dim, data.n_classes, self._label_value)
        self._model = model.to(self.device)
        self._generator = torch.Generator().manual_seed(cfg.seed)  # negatives and batch order
        self._shift_generator = torch.Generator().manual_seed(cfg.seed)  # augment_shift's own: same batches
        # Speed mode: torch.compile fuses the forward, goodness and loss of a layer step (one
        # compiled graph per layer and input shape); the optimizer steps stay eager.
        self._forward_loss = torch.compile(self._forward_loss_eager) if cfg.compile else self._forward_loss_eager
        self._peer_means = [torch.zeros(n, device=self.device) for n in cfg.layers]  # running mean activities
        self._eval_rows = EvalSubsets.draw(data, cfg.eval_subset, self.device)
        self._prepared = True

    @property
    def data(self) -> Dataset:
        """The run's data, on ``device``."""
        return self.prepare()._data

    @property
    def model(self) -> FFNet | MFNet | BPNet:
        """The network (trained once ``run()`` has finished)."""
        return self.prepare()._model

    @property
    def label_value(self) -> float:
        """The value written at the label's position (``RunConfig.resolve_label_value``)."""
        return self.prepare()._label_value

    # -- public -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to end after the current epoch."""
        self._stop_requested = True

    def run(self, should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Train, yielding events. ``should_stop`` is polled between epochs."""
        cfg = self.prepare().config
        wall_start = time.perf_counter()
        self._should_stop = should_stop or (lambda: False)
        yield RunStarted(config=cfg.to_dict(), device=str(self.device), n_train=len(self.data.y_train),
                         n_test=len(self.data.y_test), input_dim=self.data.input_dim,
                         n_params=sum(p.numel() for p in self.model.parameters()),
                         epoch_events=cfg.epoch_events)
        with matmul_precision(cfg.precision):
            self._log.restart_clock()
            body = self._run_ff() if has_goodness(cfg.algo) else self._run_mf() if trains_locally(cfg.algo) \
                else self._run_bp()
            stopped = yield from body
            if stopped:
                final = dict(test_acc=None, test_acc_no_significance=None, train_acc=None,
                             train_acc_no_significance=None)
            else:
                test = self.accuracy(self.data.x_test, self.data.y_test)
                train = self.accuracy(self.data.x_train, self.data.y_train)
                final = dict(test_acc=test.with_significance, test_acc_no_significance=test.no_significance,
                             train_acc=train.with_significance, train_acc_no_significance=train.no_significance,
                             **self._readout())
        seconds = self._log.epoch_seconds
        self.result = RunFinished(status="stopped" if stopped else "done", **final,
                                  train_seconds=sum(seconds),
                                  epoch_seconds_median=statistics.median(seconds) if seconds else 0.0,
                                  wall_seconds=time.perf_counter() - wall_start)
        yield self.result

    def accuracy(self, x: Tensor, y: Tensor, upto: int | None = None) -> Accuracy:
        """Accuracy of the prediction rule (``predict_layers`` of the first ``upto`` layers) with and
        without the significance factors (MF, BP: one value)."""
        return evaluation.accuracy(self.model, x, y, self.config.predict_layers, self.config.eval_chunk, upto)

    def first_predicting_layer(self, upto: int | None = None) -> int:
        """``evaluation.first_predicting_layer`` for this run, of all its layers unless ``upto``."""
        upto = len(self.config.layers) if upto is None else upto
        return evaluation.first_predicting_layer(self.config.predict_layers, upto)

    # -- FF / FGFF ----------------------------------------------------------------------------
    def _run_ff(self) -> Iterator[Event]:
        """FF and FGFF: layer 1's positive inputs and the negative labels, made once (Algorithm 1, l. 4-5),
        then the config's ``schedule``. Returns whether the run was stopped."""
        y = self.data.y_train
        first_data = self.model.first_input.prepare(self.data.x_train, y)  # layer 1's positive part, once per run
        y_random = draw_negative_labels(y, self.data.n_classes, self._generator)  # drawn once (Algorithm 1, l. 5)
        self._optimizers = [LayerOptimizers(layer, self.config) for layer in self.model.layers]
        schedule = {"greedy": self._train_greedy, "simultaneous": self._train_simultaneous}[self.config.schedule]
        return (yield from schedule(first_data, y_random))

    def _train_greedy(self, first_data: FirstLayerData, y_random: Tensor) -> Iterator[Event]:
        """``schedule=greedy``, Algorithm 1 as written: each layer for all its epochs, then the next one on
        its frozen outputs::

            for i = 1..m:                                     # l. 6
                for epoch = 1..epochs:                        # l. 8
                    o_p, o_n = Forward_i(pos), Forward_i(neg) # l. 9-10
                    g_pos, g_neg = Mean(Square(o_p, o_n) * s_i)  # l. 11-13, eq. (3); FF: s_i = 1
                    L = Loss(g_pos, g_neg)                    # l. 15
                    step s_i at sig_lr, W_i and b_i at lr     # l. 16-19; FF: s_i stays 1
                pos, neg = Forward_i(pos), Forward_i(neg)     # l. 22-23: frozen, they feed layer i+1

        Forward_i is layer i: L2-normalise, linear, ReLU (l. 26-30). With ``batch_size`` set, l. 9-19 run once
        per minibatch. New negative labels (``negatives=resample``, ``hard_negatives``) and shifted images
        (``augment_shift``) reach layer i through the frozen layers below it. Returns whether the run was stopped.
        """
        cfg, model, y = self.config, self.model, self.data.y_train
        y_neg = y_random
        inputs = first_data.inputs(y_neg)
        for i in range(len(model.layers)):
            for epoch in range(1, cfg.epochs + 1):
                if self._stop_now():
                    yield from self._log.flush()
                    return True
                y_new, y_random = self._next_negatives(epoch, y_random, upto=i + 1)
                y_neg = y_neg if y_new is None else y_new
                if cfg.augment_shift:  # this epoch's shifted images, through the frozen layers below
                    first_data = model.first_input.prepare(self._training_images(), y)
                    inputs = through_frozen(model.layers[:i], first_data.inputs(y_neg))
                elif y_new is not None:
                    inputs = with_new_negatives(model.layers[:i], inputs, first_data, y_neg)
                self._optimizers[i].start_epoch(epoch, cfg.epochs)
                stats = self._ff_epoch([i], inputs)
                step = self._log.add(i, epoch, stats[0], self._significance_snapshot(i))
                yield from self._maybe_flush_and_eval([i], epoch, [step], upto=i + 1)
            with torch.no_grad():  # Algorithm 1, l. 22-23: feed the frozen outputs onwards
                inputs = inputs.forward(model.layers[i])
        return False

    def _train_simultaneous(self, first_data: FirstLayerData, y_random: Tensor) -> Iterator[Event]:
        """``schedule=simultaneous``, Algorithm 1 with its layer loop inside the epoch loop (l. 7: "this
        process can be parallelized"): every layer steps every epoch, on the outputs of the layer below::

            for epoch = 1..epochs:
                for each minibatch (pos, neg):
                    for i = 1..m:
                        l. 9-19 for layer i on (pos, neg)  # as in the greedy schedule
                        pos, neg = o_p, o_n                # detached: no gradient crosses layers

        Layer i+1 takes layer i's outputs from before layer i's step on the same minibatch. Returns whether
        the run was stopped.
        """
        cfg, model, y = self.config, self.model, self.data.y_train
        layers = list(range(len(model.layers)))
        y_neg = y_random
        for epoch in range(1, cfg.epochs + 1):
            if self._stop_now():
                yield from self._log.flush()
                return True
            y_new, y_random = self._next_negatives(epoch, y_random, upto=len(layers))
            y_neg = y_neg if y_new is None else y_new
            for opt in self._optimizers:
                opt.start_epoch(epoch, cfg.epochs)
            if cfg.augment_shift:  # this epoch's shifted images (the labels stay)
                first_data = model.first_input.prepare(self._training_images(), y)
            stats = self._ff_epoch(layers, first_data.inputs(y_neg))
            steps = [self._log.add(i, epoch, stats[i], self._significance_snapshot(i)) for i in layers]
            yield from self._maybe_flush_and_eval(layers, epoch, steps, upto=len(layers))
        return False

    def _next_negatives(self, epoch: int, y_random: Tensor, upto: int) -> tuple[Tensor | None, Tensor]:
        """(new negative labels for this epoch or None to keep them, the random labels now in use).

        Random labels are drawn anew each epoch with ``negatives=resample``. With ``hard_negatives``,
        every ``hard_negatives_every`` epochs that fraction becomes the hardest wrong label under the
        layers trained so far (``upto``), the rest random.
        """
        cfg, y, n_classes = self.config, self.data.y_train, self.data.n_classes
        resampled = cfg.negatives == "resample"
        if resampled:
            y_random = draw_negative_labels(y, n_classes, self._generator)
        if cfg.hard_negatives > 0 and (epoch - 1) % cfg.hard_negatives_every == 0:
            def hard_of(rows: Tensor) -> Tensor:
                scores = evaluation.summed(self.model.layer_label_goodness(self.data.x_train[rows], upto=upto,
                                                                           chunk=cfg.eval_chunk), cfg.predict_layers)
                return hard_negative_labels(scores.with_significance, y[rows])

            return mix_negatives(y_random, cfg.hard_negatives, self._generator, hard_of), y_random
        if cfg.hard_negatives > 0:
            return None, y_random  # keep the mix until the next recomputation
        return (y_random if resampled else None), y_random

    def _ff_epoch(self, layer_ids: list[int], inputs: LayerInputs) -> list[Tensor]:
        """One epoch for the listed layers (one for greedy, all for simultaneous), each on the outputs
        of the one before. Returns per-layer ``EpochStats`` vectors, kept on the device (no sync here)."""
        batches = self._batches()
        sums = [torch.zeros(len(EpochStats._fields), device=self.device) for _ in layer_ids]
        for rows in batches:
            batch = inputs if rows is None else inputs.select(rows)
            for k, i in enumerate(layer_ids):
                out, stats = self._layer_step(i, batch)
                sums[k] += stats
                batch = PairInputs(out.h_pos.detach(), out.h_neg)  # no gradient crosses layers
        return [s / len(batches) for s in sums]

    def _forward_loss_eager(self, i: int, inputs: LayerInputs) -> tuple[LayerOutputs, Tensor]:
        """Layer i's outputs, its goodness with ``s`` (eq. 3) and without (eq. 2), and its local loss."""
        cfg = self.config
        out = inputs.layer_goodness(self.model.layers[i], self._mm_dtype, h_pos_grad=cfg.peer_norm > 0)
        loss = layer_loss(out.g_pos, out.g_neg, cfg.loss, cfg.threshold, cfg.delta, cfg.symba_alpha)
        if cfg.peer_norm > 0:
            peer, self._peer_means[i] = peer_normalisation_loss(out.h_pos, self._peer_means[i])
            loss = loss + cfg.peer_norm * peer
        return out, loss

    def _layer_step(self, i: int, inputs: LayerInputs) -> tuple[LayerOutputs, Tensor]:
        """Forward, goodness, local loss and the update of layer i (Algorithm 1, l. 9-19)."""
        out, loss = self._forward_loss(i, inputs)
        self._optimizers[i].step(loss)
        with torch.no_grad():
            return out, stats_on_device(loss, out)

    def _significance_snapshot(self, i: int) -> Tensor:
        return self.model.layers[i].s().detach().clone()

    # -- MF -----------------------------------------------------------------------------------
    def _run_mf(self) -> Iterator[Event]:
        """Mono-Forward (``mono_forward.py``): every layer on its own class scores by cross-entropy, with the
        config's ``schedule``: greedy (a layer for all its epochs, then the next on the frozen ones below) or
        simultaneous (every layer on every minibatch). Returns whether the run was stopped."""
        cfg, model, y = self.config, self.model, self.data.y_train
        optimizers = [make_optimizer(layer.parameters(), cfg) for layer in model.layers]
        every = list(range(len(model.layers)))
        for train in ([[i] for i in every] if cfg.schedule == "greedy" else [every]):
            for epoch in range(1, cfg.epochs + 1):
                if self._stop_now():
                    yield from self._log.flush()
                    return True
                for i in train:
                    set_lr_factor(optimizers[i], cfg.lr, lr_factor(cfg.lr_schedule, epoch, cfg.epochs))
                losses = mono_forward.epoch(model, optimizers, self._training_images(), y, train, self._batches())
                steps = [self._log.add(i, epoch, losses[k:k + 1], None) for k, i in enumerate(train)]
                yield from self._maybe_flush_and_eval(train, epoch, steps, upto=train[-1] + 1)
        return False

    # -- BP -----------------------------------------------------------------------------------
    def _run_bp(self) -> Iterator[Event]:
        """The backprop baseline: the whole network on cross-entropy, one step per minibatch."""
        cfg, model, data = self.config, self.model, self.data
        x, y = data.x_train, data.y_train
        optimizer = make_optimizer(model.parameters(), cfg)
        for epoch in range(1, cfg.epochs + 1):
            if self._stop_now():
                yield from self._log.flush()
                return True
            set_lr_factor(optimizer, cfg.lr, lr_factor(cfg.lr_schedule, epoch, cfg.epochs))
            x = self._training_images()
            batches = self._batches()
            total = torch.zeros((), device=y.device)
            for idx in batches:
                xb, yb = (x, y) if idx is None else (x[idx], y[idx])
                with autocast(self.config.precision, self.device):
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach()
            step = self._log.add(0, epoch, (total / len(batches)).reshape(1), None)
            yield from self._maybe_flush_and_eval([0], epoch, [step], upto=None)
        return False

    # -- shared -------------------------------------------------------------------------------
    def _batches(self) -> list[Tensor | None]:
        """This epoch's minibatches, row indices on the device in an order drawn from the run's generator,
        or ``[None]`` for the full batch (no draw)."""
        cfg, n = self.config, len(self.data.y_train)
        if cfg.full_batch or cfg.batch_size >= n:
            return [None]
        return list(torch.randperm(n, generator=self._generator).to(self.device).split(cfg.batch_size))

    def _training_images(self) -> Tensor:
        """This epoch's training images: shifted anew with ``augment_shift`` (augment.py), else as loaded."""
        data, shift = self.data, self.config.augment_shift
        if not shift:
            return data.x_train
        return random_shift(data.x_train, data.image_shape, shift, background_value(data.mean, data.std),
                            self._shift_generator)

    def _stop_now(self) -> bool:
        return self._stop_requested or self._should_stop()

    def _maybe_flush_and_eval(self, layers: list[int], epoch: int, steps: list[int],
                              upto: int | None) -> Iterator[Event]:
        """Flush the metrics when due; at evaluation epochs yield one ``EvalMetrics`` per layer in
        ``layers`` (those that stepped this epoch), at the matching ``steps``."""
        cfg = self.config
        last = epoch == cfg.epochs
        evaluate = cfg.eval_every > 0 and (epoch % cfg.eval_every == 0 or last)
        if evaluate or last or len(self._log) >= cfg.log_every * len(layers):  # every log_every epochs
            yield from self._log.flush()
        if evaluate:
            yield from evaluation.evaluations(self.model, self.data, self._eval_rows, cfg.predict_layers,
                                              cfg.eval_chunk, layers, epoch, steps, upto)
            self._log.restart_clock()  # evaluation time is not training time

    def _readout(self) -> dict[str, float]:
        """The linear readout's accuracies (``readout_epochs`` > 0, FF/FGFF), else nothing."""
        cfg, data = self.config, self.data
        if cfg.readout_epochs == 0 or not isinstance(self.model, FFNet):
            return {}
        result = train_readout(self.model, data.x_train, data.y_train, data.x_test, data.y_test, cfg.readout_epochs,
                               first=self.first_predicting_layer(), generator=torch.Generator().manual_seed(cfg.seed))
        return dict(readout_train_acc=result.train_acc, readout_test_acc=result.test_acc)


def train(config: RunConfig | dict, data: Dataset | None = None,
          callback: Callable[[Event], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> tuple[Trainer, RunFinished]:
    """Run a whole training through the training driver (``driver.py``: a NaN or infinite loss ends it
    ``failed``), passing each event to ``callback``; return the trainer and the final ``RunFinished``.
    ``should_stop`` is polled between epochs: when it is true the run ends ``stopped``."""
    trainer = Trainer(config, data)
    return trainer, Driver(trainer, should_stop).run(callback)
