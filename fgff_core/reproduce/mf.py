"""Part "mf": Mono-Forward (issue 37 item 4) on MLPs for MNIST, Fashion-MNIST and CIFAR-10, beside its paper.

For each network of the budget (``paper.MfBudget``) MF's lr is swept on seed 0 with training images held out and
scored, as part "best" does; then every seed runs at the lr with the best validation accuracy (test set), and BP
trains the same network on the same images for the same epochs at its fixed lr. The report (``mf_report``) sets
the FF/FGFF runs of Tables I-III from the same log and the MF paper's published numbers (``MF_PAPER``) beside them.

A test run also scores the validation split, and a sweep run the test set (``sharing``): MF's seed-0 test run at
the chosen lr is that lr's sweep run, not a second training.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config.schema import RunConfig
from ..data.registry import DATASETS
from .cells import Cells, best_lr, collect
from .execution import DataCache, Say, Sweep, bracketed_sweep, stage_runner
from .paper import Budget, MfNetwork
from .runlog import RunLog
from .specs import RunSpec, lr_row, row_name

# The MF paper's MLP settings that every run here keeps (only the epochs, the lr and the algorithm differ):
# minibatches of 128, Adam, per-channel normalisation, every layer stepped on every minibatch. Cosine decay over
# the run: the profile its validation chose for MF on all three datasets (Adam 1e-3, cosine; ``MF_PAPER_SOURCE``).
MF_SETTINGS = dict(batch_size=128, optimizer="adam", lr_schedule="cosine", schedule="simultaneous",
                   train_subset_order="shuffled", normalize="data", eval_every=0)

# The MF paper (Gong, Li and Abdulla, arXiv:2501.09238; v2 of 7 May 2026 is "Mono-Forward: Revisiting
# Forward-Forward through Objective-Locality Decomposition"): test accuracy % over its seeds 424-426, (mean,
# sample std), of its MLPs: MF ("CE (Local, Multi-Head)"), BP ("CE (Global, Terminal)") and its vanilla FF.
MF_PAPER: dict[str, dict[str, tuple[float, float]]] = {
    "mnist": {"mf": (98.42, 0.08), "bp": (98.51, 0.09), "ff": (95.70, 0.14)},
    "fashion_mnist": {"mf": (89.52, 0.30), "bp": (90.18, 0.15), "ff": (83.17, 0.06)},
    "cifar10": {"mf": (54.38, 0.38), "bp": (53.82, 0.35), "ff": (44.98, 0.12)},
}
MF_PAPER_LAYERS = {"mnist": (1000, 1000), "fashion_mnist": (1000, 1000), "cifar10": (2000, 2000, 2000)}
MF_PAPER_SOURCE = (
    "the MF authors' code, github.com/HaoxuanGong/FF-Decomposition at commit 0d86bf65: "
    "`paper_results/reported_accuracy.csv` (their transcription of the paper's tables; MF is its row "
    "\"CE (Local, Multi-Head)\", BP \"CE (Global, Terminal)\", FF \"Vanilla FF (Local, Multi-Head)\") and "
    "`configs/paper_protocol.json` (MLPs 2x1000 for MNIST and Fashion-MNIST, 3x2000 for CIFAR-10; ReLU; minibatches "
    "of 128; up to 200 epochs, early stopping with patience 15 on 5000 held-out training images, the best "
    "validation checkpoint tested; the optimizer chosen on validation among Adam 1e-3, Adam 1e-3 with cosine decay "
    "and SGD 0.1 with step decay: Adam with cosine decay for MF on all three, "
    "`paper_results/per_seed_provenance.csv`). The repository names the paper \"Disentangling Objective Design and "
    "Gradient Locality in Supervised Forward-Forward Learning\" and says the file must be checked against the final "
    "manuscript; the arXiv v2 text itself could not be read here beyond its abstract, so these numbers are not "
    "checked against it")


def network_row(net: MfNetwork) -> str:
    """The row name of a network's test runs: "mnist 2x1000"."""
    return f"{net.dataset} {row_name(net.layers)}"


def mf_sweep_row(net: MfNetwork, lr: float | None = None) -> str:
    """The row name of MF's sweep run at ``lr`` ("mnist 2x1000 sweep lr=0.001"); without ``lr``: the prefix."""
    return lr_row(f"{network_row(net)} sweep ", lr)


def train_images(budget: Budget, dataset: str) -> int:
    """How many training images every run of ``dataset`` trains on: the budget's subset, else all but the
    ``val_size`` held out for the sweep (so that a test run trains exactly what the sweep run trained)."""
    m = budget.mf
    return m.train_subset.get(dataset) or DATASETS[dataset].n_train - m.val_size


def mf_config(budget: Budget, net: MfNetwork, algo: str, seed: int, lr: float, device: str,
              data_dir: str | None) -> RunConfig:
    """The config of one run of part "mf": the MF paper's settings at the budget's epochs and images."""
    return RunConfig.from_dict({**MF_SETTINGS, "algo": algo, "dataset": net.dataset, "layers": net.layers,
                                "epochs": budget.mf.epochs, "lr": lr, "seed": seed, "device": device,
                                "data_dir": data_dir, "download": False,
                                "train_subset": train_images(budget, net.dataset)})


def mf_specs(budget: Budget, seeds: int, device: str, data_dir: str | None,
             lrs: Mapping[str, tuple[float, ...]] | None = None,
             best_lr: Mapping[str, float] | None = None) -> list[RunSpec]:
    """MF's lr sweep (seed 0, validation split) or, given ``best_lr`` per network row, the test runs: MF at it
    and BP at the budget's ``bp_lr``, every seed. ``lrs``: network row -> the sweep's grid (a widened one)."""
    m = budget.mf
    specs = []
    for net in m.networks:
        row = network_row(net)
        if best_lr is None:
            specs += [RunSpec("mf", mf_sweep_row(net, lr), "mf", 0, mf_config(budget, net, "mf", 0, lr, device,
                                                                              data_dir), val_size=m.val_size)
                      for lr in (lrs or {}).get(row, m.lrs)]
            continue
        if row in best_lr:
            specs += [RunSpec("mf", row, "mf", seed, mf_config(budget, net, "mf", seed, best_lr[row], device,
                                                                data_dir), also_val_size=m.val_size)
                      for seed in range(seeds)]
        specs += [RunSpec("mf", row, "bp", seed, mf_config(budget, net, "bp", seed, m.bp_lr, device, data_dir),
                          also_val_size=m.val_size) for seed in range(seeds)]
    return specs


@dataclass
class MfRuns:
    """Part "mf": MF's sweep and the lr chosen per network, the test runs of MF and BP."""

    sweep: Sweep[str]
    sweep_cells: Cells  # (sweep row, "mf") -> validation accuracy of seed 0
    test: list[RunSpec] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def run_mf(budget: Budget, seeds: int, device: str, data_dir: str | None, log: RunLog, data: DataCache,
           say: Say = print, train_missing: bool = True, executor: str = "local") -> MfRuns:
    """MF's lr sweep per network (validation, seed 0; widened where the best sits at an end) -> every seed of MF at
    the settled lr and of BP at its lr (test), started as soon as that network's lr is settled."""
    m = budget.mf
    skipped: dict[str, str] = {}
    run = stage_runner(skipped, log, budget, data, say, train_missing, executor)
    nets = {network_row(net): net for net in m.networks}

    def choose(specs: list[RunSpec], grids: dict[str, tuple[float, ...]]) -> dict[str, float]:
        cells = collect(specs, log, skipped, "test_acc")  # a sweep run's test_acc is on the validation split
        return {row: lr for row, grid in grids.items()
                for lr in best_lr(cells, mf_sweep_row(nets[row]), {"mf": grid}).values()}

    def tests(settled: dict[str, float]) -> list[RunSpec]:
        return mf_specs(budget, seeds, device, data_dir, best_lr=settled)

    sweep = bracketed_sweep({row: m.lrs for row in nets},
                            lambda grids: mf_specs(budget, seeds, device, data_dir, lrs=grids), choose, run,
                            m.widenings, then=tests)
    return MfRuns(sweep, collect(sweep.specs, log, skipped, "test_acc"), tests(sweep.settled), skipped)
