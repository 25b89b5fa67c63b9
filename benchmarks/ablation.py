"""Time the full set of ablation curves (issue 34) for a 2x500 network on MNIST's 10,000 test images.

    python -m benchmarks.ablation [--data-dir DIR] [--threads N] [--repeats N]

The network has random weights and factors s drawn from N(1, 0.5) (the timing does not depend on
training); the test images are MNIST's from DIR when its files are there, else random data of MNIST's
shape (said so in the output). Times the goodness-only curves alone, the silenced ones alone and the
full default set (every order, both removals, both rules, the network and each layer), and prints a
Markdown block with the machine and its load for benchmarks/ABLATION.md. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from fgff_core.analysis.ablation import ablation_curves
from fgff_core.analysis.ablation_settings import AblationSettings
from fgff_core.data import Dataset, DatasetNotFoundError, load_dataset
from fgff_core.engine.model import FFNet
from fgff_core.reproduce.provenance import cpu_model

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets"
N_TEST = 10_000


def _data(data_dir: Path) -> tuple[Dataset, str]:
    try:
        return load_dataset("mnist", data_dir=data_dir, download=False), f"MNIST test set from {data_dir}"
    except DatasetNotFoundError:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(N_TEST, 784, generator=g)
        y = torch.randint(0, 10, (N_TEST,), generator=g)
        return Dataset("mnist", x[:10], y[:10], x, y, (1, 28, 28), 10, (0.0,), (1.0,)), "RANDOM data of MNIST's shape"


def _network(seed: int = 0) -> FFNet:
    torch.manual_seed(seed)
    net = FFNet(784, (500, 500))
    with torch.no_grad():
        for layer in net.layers:
            layer.s_raw.normal_(1.0, 0.5)
    return net.eval()


def _time(model: FFNet, data: Dataset, settings: AblationSettings, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ablation_curves(model, data, settings)
        times.append(time.perf_counter() - start)
    return statistics.median(times)



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data, source = _data(args.data_dir)
    model = _network()
    load_start = os.getloadavg()
    rows = []
    for label, settings in (("goodness-only curves", AblationSettings(removals=("goodness_only",))),
                            ("silenced curves", AblationSettings(removals=("silenced",))),
                            ("full set (default settings)", AblationSettings())):
        rows.append((label, _time(model, data, settings, args.repeats)))
    load_end = os.getloadavg()
    print(f"### {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print(f"2x500 FGFF network (random weights, s ~ N(1, 0.5)), {len(data.y_test):,} test images: {source}. "
          f"Default settings: 5 orders (random: 5 draws), 20 fractions kept (100 % to 5 %), both rules, the "
          f"network and each layer.\n")
    print(f"Machine: {cpu_model()}, torch {torch.__version__} with {args.threads} "
          f"threads; load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end; median of "
          f"{args.repeats} run(s).\n")
    print("| what | seconds |\n|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
