"""Training: FF and FGFF (Algorithm 1, greedy or simultaneous) and the backprop baseline.

``Trainer(config).run()`` is a generator of events (see ``events.py``): iterate it to train, stop
iterating (or call ``stop()``) to end cleanly between epochs. ``train(config)`` runs to the end
and returns the final ``RunFinished`` with the trained ``Trainer``.

FF and FGFF are one code path: every layer multiplies its squared activations by its
significance factors (eq. 3). FGFF trains them with a second Adam optimizer at ``sig_lr``; FF
leaves them frozen at 1, where eq. (3) is eq. (2).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import RunConfig
from .data import Dataset, load_for_config
from .events import EpochMetrics, EvalMetrics, Event, RunFinished, RunStarted
from .model import BPNet, FFNet, embed_labels, layer_goodness, layer_loss, normalise, relabel_coefficients

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
        self.label_value = float(data.x_train.max()) if cfg.label_value == "max" else float(cfg.label_value)
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
        self._stop_requested = False
        self.result: RunFinished | None = None
        self._epoch_seconds: list[float] = []

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
                         epoch_events=self._epoch_event_count())
        with self._precision():
            body = self._run_bp() if cfg.algo == "bp" else self._run_ff()
            stopped = yield from body
            if stopped:
                final = dict(test_acc=None, test_acc_no_significance=None, train_acc=None,
                             train_acc_no_significance=None)
            else:
                test = self.accuracy(self.data.x_test, self.data.y_test)
                train = self.accuracy(self.data.x_train, self.data.y_train)
                final = dict(test_acc=test[0], test_acc_no_significance=test[1], train_acc=train[0],
                             train_acc_no_significance=train[1])
        seconds = self._epoch_seconds
        self.result = RunFinished(status="stopped" if stopped else "done", **final,
                                  train_seconds=sum(seconds),
                                  epoch_seconds_median=statistics.median(seconds) if seconds else 0.0,
                                  wall_seconds=time.perf_counter() - wall_start)
        yield self.result

    @torch.no_grad()
    def accuracy(self, x: Tensor, y: Tensor, upto: int | None = None) -> tuple[float, float | None]:
        """(accuracy with significance, without) for FF/FGFF; (accuracy, None) for BP."""
        chunk = self.config.eval_chunk
        if isinstance(self.model, BPNet):
            return _fraction(self.model.predict(x, chunk=chunk) == y), None
        g_sig, g_raw = self.model.label_goodness(x, upto=upto, chunk=chunk)
        return _fraction(g_sig.argmax(1) == y), _fraction(g_raw.argmax(1) == y)

    # -- FF / FGFF ----------------------------------------------------------------------------
    def _run_ff(self) -> Iterator[Event]:
        cfg, model, data = self.config, self.model, self.data
        x, y = data.x_train, data.y_train
        y_neg = draw_negative_labels(y, data.n_classes, self.generator)  # drawn once (Algorithm 1, l. 5)
        self._optimizers = []
        for layer in model.layers:
            layer.significance.requires_grad_(cfg.algo == "fgff")
            weights = torch.optim.Adam(layer.linear.parameters(), lr=cfg.lr)
            # The fine weights optimizer (section III.D): its own Adam, its own learning rate.
            fine = torch.optim.Adam([layer.significance], lr=cfg.effective_sig_lr) if cfg.algo == "fgff" else None
            self._optimizers.append((weights, fine))
        self._eval_idx = self._eval_indices()
        n_layers = len(model.layers)
        pending: list = []
        step = 0
        if cfg.schedule == "greedy":
            # Algorithm 1: train layer i for all its epochs on the frozen outputs of layers < i.
            pos_in, neg_in = self._first_layer_inputs(x, y, y_neg)
            for i in range(n_layers):
                for epoch in range(1, cfg.epochs + 1):
                    if self._stop_now():
                        yield from self._flush(pending)
                        return True
                    if cfg.negatives == "resample":
                        y_neg = draw_negative_labels(y, data.n_classes, self.generator)
                        neg_in = self._frozen_inputs(i, x, y_neg)
                    step += 1
                    stats = self._ff_epoch([i], pos_in, neg_in, y, y_neg)
                    pending.append((i, epoch, step, stats[0], self._significance_snapshot(i)))
                    yield from self._maybe_flush_and_eval(pending, i, epoch, step, upto=i + 1)
                with torch.no_grad():  # Algorithm 1, l. 22-23: feed the frozen outputs onwards
                    pos_in, neg_in = self._layer_forward(i, pos_in, neg_in, x, y, y_neg,
                                                         self._normalised_train_input())
            return False
        # simultaneous: every layer steps each epoch on the detached outputs of the layer below
        for epoch in range(1, cfg.epochs + 1):
            if self._stop_now():
                yield from self._flush(pending)
                return True
            if cfg.negatives == "resample":
                y_neg = draw_negative_labels(y, data.n_classes, self.generator)
            pos_in, neg_in = self._first_layer_inputs(x, y, y_neg)
            stats = self._ff_epoch(list(range(n_layers)), pos_in, neg_in, y, y_neg)
            for i in range(n_layers):
                step += 1
                pending.append((i, epoch, step, stats[i], self._significance_snapshot(i)))
            yield from self._maybe_flush_and_eval(pending, n_layers - 1, epoch, step, upto=n_layers)
        return False

    def _first_layer_inputs(self, x: Tensor, y: Tensor, y_neg: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Inputs of layer 1: None when factorised (it reads x and the labels), else embedded copies."""
        if self.model.factorize:
            return None, None
        c, v = self.data.n_classes, self.label_value
        return embed_labels(x, y, v, c), embed_labels(x, y_neg, v, c)

    @torch.no_grad()
    def _frozen_inputs(self, i: int, x: Tensor, y_neg: Tensor) -> Tensor | None:
        """Negative inputs of layer i through the frozen layers below it (after a resample)."""
        if i == 0:  # a factorised layer 1 reads x and the labels itself
            return None if self.model.factorize else embed_labels(x, y_neg, self.label_value, self.data.n_classes)
        _, neg = self.model.first_layer(x, [self.data.y_train, y_neg], self._normalised_train_input())
        for layer in self.model.layers[1:i]:
            neg = layer(neg)
        return neg

    def _layer_forward(self, i: int, pos_in, neg_in, x: Tensor, y_pos: Tensor, y_neg: Tensor,
                       normalised: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Layer i on positive and negative inputs; a factorised layer 1 reads x and the labels."""
        if i == 0 and self.model.factorize:
            h_pos, h_neg = self.model.first_layer(x, [y_pos, y_neg], normalised)
            return h_pos, h_neg
        layer = self.model.layers[i]
        return layer(pos_in), layer(neg_in)

    def _ff_epoch(self, layer_ids: list[int], pos_in, neg_in, y: Tensor, y_neg: Tensor):
        """One epoch for the listed layers (one for greedy, all for simultaneous).

        Returns per-layer stats (loss, g_pos, g_neg, g_pos_raw, g_neg_raw) on the device, kept
        there so that no host synchronisation happens here.
        """
        cfg = self.config
        n = len(y)
        batches = [None] if cfg.full_batch or cfg.batch_size >= n else \
            torch.randperm(n, generator=self.generator).to(y.device).split(cfg.batch_size)
        sums = [torch.zeros(5, device=y.device) for _ in layer_ids]
        normalised = self._normalised_train_input() if 0 in layer_ids else None
        for idx in batches:
            a = pos_in if idx is None or pos_in is None else pos_in[idx]
            b = neg_in if idx is None or neg_in is None else neg_in[idx]
            yp, yn = (y, y_neg) if idx is None else (y[idx], y_neg[idx])
            xb = self.data.x_train if idx is None else self.data.x_train[idx]
            nb = normalised if idx is None or normalised is None else (normalised[0][idx], normalised[1][idx])
            for k, i in enumerate(layer_ids):
                h_pos, h_neg, stats = self._layer_step(i, a, b, xb, yp, yn, nb)
                sums[k] += stats
                a, b = h_pos, h_neg  # detached: no gradient crosses layers
        return [s / len(batches) for s in sums]

    def _normalised_train_input(self) -> tuple[Tensor, Tensor] | None:
        """The factorised layer 1's normalised positive input, computed once per run, not per epoch
        (the positive labels never change; the negatives are relabellings of it)."""
        if not self.model.factorize:
            return None
        if getattr(self, "_normalised", None) is None:
            self._normalised = self.model.normalised_input(self.data.x_train, self.data.y_train)
        return self._normalised

    def _forward_loss_eager(self, i: int, pos_in, neg_in, x: Tensor, y_pos: Tensor, y_neg: Tensor,
                            normalised: tuple[Tensor, Tensor] | None = None):
        """Layer i's outputs, goodness with significance (eq. 3; eq. 2 while the factors are 1) and
        without (eq. 2, reported), and the local loss."""
        cfg = self.config
        layer = self.model.layers[i]
        mm_dtype = torch.bfloat16 if cfg.precision == "bf16" else None
        if i == 0 and self.model.factorize:
            x_pos, inv_norm = normalised if normalised is not None else self.model.normalised_input(x, y_pos)
            coef = relabel_coefficients(inv_norm * self.label_value, y_pos, y_neg, self.data.n_classes)
            out = layer_goodness(layer, x_pos, coef=coef, mm_dtype=mm_dtype)
        else:
            out = layer_goodness(layer, normalise(pos_in), normalise(neg_in), mm_dtype=mm_dtype)
        h_pos, h_neg, g_pos, g_neg, g_pos_raw, g_neg_raw = out
        loss = layer_loss(g_pos, g_neg, cfg.loss, cfg.threshold, cfg.delta)
        return h_pos, h_neg, g_pos, g_neg, g_pos_raw, g_neg_raw, loss

    def _layer_step(self, i: int, pos_in, neg_in, x: Tensor, y_pos: Tensor, y_neg: Tensor,
                    normalised: tuple[Tensor, Tensor] | None = None):
        """Forward, goodness, local loss and the two optimizer steps of layer i (Algorithm 1, l. 9-19)."""
        weights_opt, fine_opt = self._optimizers[i]
        h_pos, h_neg, g_pos, g_neg, g_pos_raw, g_neg_raw, loss = self._forward_loss(
            i, pos_in, neg_in, x, y_pos, y_neg, normalised)
        weights_opt.zero_grad(set_to_none=True)
        if fine_opt is not None:
            fine_opt.zero_grad(set_to_none=True)
        loss.backward()
        weights_opt.step()
        if fine_opt is not None:
            fine_opt.step()  # the significance update: w_f <- w_f - alpha_f dL/dw_f (Algorithm 1, l. 17)
        with torch.no_grad():
            h_pos, h_neg = h_pos.detach(), h_neg.detach()
            stats = torch.stack([loss.detach(), g_pos.detach().mean(), g_neg.detach().mean(),
                                 g_pos_raw.mean(), g_neg_raw.mean()])
        return h_pos, h_neg, stats

    def _significance_snapshot(self, i: int) -> Tensor:
        return self.model.layers[i].significance.detach().clone()

    # -- BP -----------------------------------------------------------------------------------
    def _run_bp(self) -> Iterator[Event]:
        cfg, model, data = self.config, self.model, self.data
        x, y = data.x_train, data.y_train
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        self._eval_idx = self._eval_indices()
        pending: list = []
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
            nan = torch.tensor(float("nan"), device=y.device)
            stats = torch.stack([total / len(batches), nan, nan, nan, nan])
            pending.append((0, epoch, epoch, stats, None))
            yield from self._maybe_flush_and_eval(pending, 0, epoch, epoch, upto=None)
        return False

    # -- shared -------------------------------------------------------------------------------
    def _epoch_event_count(self) -> int:
        cfg = self.config
        return cfg.epochs if cfg.algo == "bp" else cfg.epochs * len(cfg.layers)

    def _stop_now(self) -> bool:
        return self._stop_requested or self._should_stop()

    def _eval_indices(self) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(EVAL_SUBSET_SEED)
        k = self.config.eval_subset
        tr = torch.randperm(len(self.data.y_train), generator=gen)[:k].to(self.device)
        te = torch.randperm(len(self.data.y_test), generator=gen)[:k].to(self.device)
        return tr, te

    def _maybe_flush_and_eval(self, pending: list, layer: int, epoch: int, step: int, upto: int | None):
        cfg = self.config
        last = epoch == cfg.epochs
        evaluate = cfg.eval_every > 0 and (epoch % cfg.eval_every == 0 or last)
        if evaluate or last or len(pending) >= cfg.log_every * (1 if cfg.schedule == "greedy" else len(cfg.layers)):
            yield from self._flush(pending)
        if evaluate:
            tr, te = self._eval_idx
            train_acc = self.accuracy(self.data.x_train[tr], self.data.y_train[tr], upto)
            test_acc = self.accuracy(self.data.x_test[te], self.data.y_test[te], upto)
            yield EvalMetrics(layer=layer, epoch=epoch, step=step, train_acc=train_acc[0], test_acc=test_acc[0],
                              train_acc_no_significance=train_acc[1], test_acc_no_significance=test_acc[1])
            self._last_flush = time.perf_counter()  # evaluation time is not training time

    def _flush(self, pending: list) -> Iterator[EpochMetrics]:
        """Copy the pending epochs' metrics to the host in one transfer and yield them."""
        if not pending:
            self._last_flush = time.perf_counter()
            return
        stats = torch.stack([p[3] for p in pending]).cpu()  # the one sync point
        sigs = [p[4].cpu().numpy() if p[4] is not None else None for p in pending]
        # Seconds per layer-epoch, averaged over the flushed ones: exact on GPU because the
        # transfer above waits for the queued work.
        seconds = (time.perf_counter() - (self._last_flush or self._run_start)) / len(pending)
        is_bp = self.config.algo == "bp"
        for (layer, epoch, step, _, _), row, sig in zip(pending, stats.tolist(), sigs):
            self._epoch_seconds.append(seconds)
            yield EpochMetrics(layer=layer, epoch=epoch, step=step, loss=row[0],
                               g_pos=None if is_bp else row[1], g_neg=None if is_bp else row[2],
                               g_pos_raw=None if is_bp else row[3], g_neg_raw=None if is_bp else row[4],
                               seconds=seconds, significance=sig)
        pending.clear()
        self._last_flush = time.perf_counter()

    @contextlib.contextmanager
    def _precision(self):
        """fp32 is exact; tf32 lets CUDA matmuls use TensorFloat-32 for this run only."""
        self._run_start = time.perf_counter()
        self._last_flush = None
        if self.config.precision != "tf32":
            yield
            return
        previous = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("high")
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(previous)

    def _autocast(self):
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
