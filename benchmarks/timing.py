"""The timed pieces of the benchmark: the setup, the variants stepped round-robin, the matmul
reference, prediction and BP timing, and peak memory. ``benchmarks/run.py`` composes them."""


from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from fgff_core.config import RunConfig
from fgff_core.data import Dataset, DatasetNotFoundError, load_dataset
from fgff_core.engine.events import EpochMetrics
from fgff_core.engine.training import Trainer

HERE = Path(__file__).resolve().parent
N_CLASSES = 10
MINIBATCH = 100


# -- setup --------------------------------------------------------------------------------------

@dataclass
class Setup:
    """What one benchmark run measures on one device."""

    device: str
    layers: tuple[int, ...]
    epochs: int  # epochs per layer per variant (the first of each layer is warm-up)
    predict_reps: int
    bp_batches: int
    bp_batch_size: int = 64
    bf16: bool = True
    compile: bool = True
    eval_chunk: int = RunConfig.eval_chunk
    seed: int = 0


def get_data(dataset: str, data_dir: str | None, quick: bool) -> tuple[Dataset, str]:
    """The real dataset when its files are there, else random data of its shape (labelled as such)."""
    n_train, n_test, dim = (2000, 500, 784) if quick else (60000, 10000, 784)
    try:
        data = load_dataset(dataset, data_dir=data_dir, download=False)
        if quick:
            data = Dataset(data.name, data.x_train[:n_train], data.y_train[:n_train], data.x_test[:n_test],
                           data.y_test[:n_test], data.image_shape, data.n_classes, data.mean, data.std)
        return data, f"{dataset} ({len(data.y_train)} train / {len(data.y_test)} test)"
    except (DatasetNotFoundError, OSError) as exc:
        print(f"[bench] {dataset} not found ({type(exc).__name__}); using random data of the same shape", flush=True)
    gen = torch.Generator().manual_seed(0)
    data = Dataset("random", torch.randn(n_train, dim, generator=gen), torch.randint(0, 10, (n_train,), generator=gen),
                   torch.randn(n_test, dim, generator=gen), torch.randint(0, 10, (n_test,), generator=gen),
                   (1, 28, 28), 10, (0.0,), (1.0,))
    return data, f"RANDOM data shaped like {dataset} ({n_train} x {dim}; files absent, accuracies meaningless)"


def subset(data: Dataset, n: int) -> Dataset:
    return Dataset(data.name, data.x_train[:n], data.y_train[:n], data.x_test, data.y_test, data.image_shape,
                   data.n_classes, data.mean, data.std)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def run_config(setup: Setup, algo: str, factorize: bool = True, **changes) -> dict:
    cfg = dict(algo=algo, dataset="digits", layers=setup.layers, epochs=setup.epochs, batch_size=0, seed=setup.seed,
               device=setup.device, eval_every=0, log_every=1, factorize=factorize, eval_chunk=setup.eval_chunk)
    cfg.update(changes)
    return cfg


# -- timed variants -----------------------------------------------------------------------------

class EpochStepper:
    """A real ``Trainer.run()`` advanced one epoch per ``step()``, each timed from outside."""

    def __init__(self, name: str, config: dict, data: Dataset) -> None:
        self.name = name
        self.trainer = Trainer(config, data)
        self.device = str(self.trainer.device)
        self.events = self.trainer.run()
        next(self.events)  # RunStarted
        self.seconds: dict[int, list[float]] = {}
        self.losses: list[float] = []
        self.done = False

    def step(self) -> None:
        if self.done:
            return
        sync(self.device)
        start = time.perf_counter()
        event = next(self.events)
        sync(self.device)
        elapsed = time.perf_counter() - start
        if not isinstance(event, EpochMetrics):
            raise RuntimeError(f"expected one EpochMetrics per step, got {event.kind}")
        self.losses.append(event.loss)
        if event.epoch > 1:  # the first epoch of a layer also builds its inputs: warm-up
            self.seconds.setdefault(event.layer, []).append(elapsed)
        if len(self.losses) == self.trainer.config.epoch_events:
            self.done = True  # the generator is left before its final full-data evaluation

    def median(self, layer: int) -> float:
        return statistics.median(self.seconds[layer])

    def best(self, layer: int) -> float:
        return min(self.seconds[layer])


def paired_ratio(num: EpochStepper, den: EpochStepper, layer: int) -> float:
    """Median over rounds of num/den epoch times taken in the same round (robust to slow load drifts)."""
    return statistics.median(a / b for a, b in zip(num.seconds[layer], den.seconds[layer]))


class MatmulReference:
    """Plain ``torch.mm`` on the shapes of one plain training epoch of each layer: the hardware limit."""

    def __init__(self, device: str, n: int, sizes: list[int]) -> None:
        self.device = device
        self.shapes = {}
        for i, (d, h) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.shapes[i] = [(2 * n, d, h), (h, 2 * n, d)]  # forward, weight gradient
        self.seconds: dict[int, list[float]] = {i: [] for i in self.shapes}
        self.done = False
        self._layer = 0

    def flops(self, layer: int) -> float:
        return sum(2.0 * m * k * n for m, k, n in self.shapes[layer])

    def step(self) -> None:
        """Time the matmuls of every layer once."""
        for i, shapes in self.shapes.items():
            total = 0.0
            for m, k, n in shapes:
                a = torch.randn(m, k, device=self.device)
                b = torch.randn(k, n, device=self.device)
                torch.mm(a, b)  # warm
                sync(self.device)
                start = time.perf_counter()
                torch.mm(a, b)
                sync(self.device)
                total += time.perf_counter() - start
                del a, b
            self.seconds[i].append(total)

    def flop_rate(self, layer: int) -> float:
        return self.flops(layer) / statistics.median(self.seconds[layer])


def round_robin(items: list, rounds: int, log: Callable[[str], None]) -> None:
    """Step every item once per round, rotating the order each round."""
    for r in range(rounds):
        k = r % len(items)
        for item in items[k:] + items[:k]:
            item.step()
        log(f"round {r + 1}/{rounds}")


def time_prediction(models: dict[str, torch.nn.Module], x: torch.Tensor, chunk: int, reps: int,
                    device: str) -> dict[str, float]:
    """Median seconds of ``label_goodness`` on ``x`` per model, interleaved."""
    times: dict[str, list[float]] = {k: [] for k in models}
    for m in models.values():
        m.label_goodness(x[:1024], chunk=chunk)  # warm
    for r in range(reps):
        names = list(models)
        names = names[r % len(names):] + names[:r % len(names)]
        for name in names:
            sync(device)
            start = time.perf_counter()
            models[name].label_goodness(x, chunk=chunk)
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


class BPTiming(NamedTuple):
    epoch_seconds: float  # over a subset, extrapolated to the full training set
    predict_seconds: float  # the test set
    test_acc: float
    n_subset: int


def time_bp(setup: Setup, data: Dataset) -> BPTiming:
    """BP at batch ``bp_batch_size``, timed on the first ``bp_batches`` batches of the training set."""
    n_sub = min(len(data.y_train), setup.bp_batch_size * setup.bp_batches)
    cfg = run_config(setup, "bp", batch_size=setup.bp_batch_size, epochs=3, lr=0.001)
    stepper = EpochStepper("bp", cfg, subset(data, n_sub))
    for _ in range(3):
        stepper.step()
    per_epoch = stepper.median(0) * len(data.y_train) / n_sub
    model = stepper.trainer.model
    x = stepper.trainer.data.x_test
    model.predict(x[:1024], chunk=setup.eval_chunk)
    pred = []
    for _ in range(max(1, setup.predict_reps)):
        sync(setup.device)
        start = time.perf_counter()
        model.predict(x, chunk=setup.eval_chunk)
        sync(setup.device)
        pred.append(time.perf_counter() - start)
    acc = stepper.trainer.accuracy(x, stepper.trainer.data.y_test).with_significance
    return BPTiming(per_epoch, statistics.median(pred), acc, n_sub)


# -- peak memory --------------------------------------------------------------------------------

def _rss_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def measure_peak_memory(setup: Setup, data: Dataset, algo: str, factorize: bool) -> float:
    """Peak memory (MiB) above the loaded data of two epochs per layer plus test-set prediction.

    CUDA: ``torch.cuda.max_memory_allocated`` in this process. CPU: peak resident set size of this
    (fresh) process after resetting its high-water mark once the data is loaded (Linux only), with
    glibc's default allocator (see ``main``).
    """
    cfg = run_config(setup, algo, factorize, epochs=2)
    if setup.device.startswith("cuda"):
        gc.collect()
        torch.cuda.empty_cache()
        trainer = Trainer(cfg, data).prepare()  # data and network on the GPU before the baseline
        base = torch.cuda.memory_allocated(setup.device)
        torch.cuda.reset_peak_memory_stats(setup.device)
    else:
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
        base = _rss_kib("VmRSS") * 1024
        trainer = Trainer(cfg, data)
    events = trainer.run()
    for event in events:
        if isinstance(event, EpochMetrics) and event.layer == len(setup.layers) - 1 and event.epoch == 2:
            break
    trainer.model.label_goodness(trainer.data.x_test, chunk=setup.eval_chunk)
    if setup.device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated(setup.device)
    else:
        peak = _rss_kib("VmHWM") * 1024
    return (peak - base) / 2**20


def peak_memory(setup: Setup, args: argparse.Namespace, algo: str, factorize: bool, data: Dataset) -> float | None:
    if setup.device.startswith("cuda"):
        return measure_peak_memory(setup, data, algo, factorize)
    if not Path("/proc/self/clear_refs").exists():
        return None
    probe = json.dumps(dict(algo=algo, factorize=factorize, layers=setup.layers, device=setup.device))
    cmd = [sys.executable, "-m", "benchmarks.run", "--probe-memory", probe, "--dataset", args.dataset]
    cmd += ["--data-dir", args.data_dir] if args.data_dir else []
    cmd += ["--quick"] if args.quick else []
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent, timeout=1800)
    if out.returncode != 0:
        print(f"[bench] memory probe failed: {out.stderr[-2000:]}", flush=True)
        return None
    return float(out.stdout.strip().splitlines()[-1])


