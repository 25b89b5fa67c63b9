"""Named run configurations, shared by the CLI, the app and ``reproduce``.

``paper-*`` presets are the authors' published settings (see DEVELOPERS.md): full batch, 200
epochs per layer, Adam lr 0.06 (weights) and 0.15 (significance), threshold 2, softplus loss,
label value 1.0. The paper gives no BP settings; ours (Adam 1e-3, batch 64) are labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import RunConfig


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    overrides: dict[str, Any]
    bp_overrides: dict[str, Any] = field(default_factory=dict)  # applied on top for algo=bp

    def config(self, algo: str = "fgff", **changes: Any) -> RunConfig:
        values = {**self.overrides, "algo": algo}
        if algo == "bp":
            values.update(self.bp_overrides)
        values.update(changes)
        return RunConfig.from_dict(values)


_PAPER = dict(epochs=200, batch_size=0, lr=0.06, sig_lr=0.15, threshold=2.0, loss="softplus",
              label_value=1.0, schedule="greedy", negatives="fixed")
_BP = dict(batch_size=64, lr=1e-3, epochs=20)


def _paper(dataset: str, layers: tuple[int, ...], **extra: Any) -> dict[str, Any]:
    return {**_PAPER, "dataset": dataset, "layers": layers, **extra}


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("quick-digits", "Quick demo: digits 2x100",
           "Embedded 8x8 digits, 2 layers of 100, the authors' settings; about 1.5 s of training on an idle CPU.",
           {**_PAPER, "dataset": "digits", "layers": (100, 100), "eval_every": 10}, {"epochs": 50}),
    Preset("tiny-digits", "Classroom: digits 2x20",
           "A tiny 64 -> 2x20 net on the embedded digits, for step-by-step lessons.",
           {**_PAPER, "dataset": "digits", "layers": (20, 20), "eval_every": 5}, {"epochs": 50}),
    *[Preset(f"paper-mnist-2x{w}", f"Paper Table I: MNIST 2x{w}",
             f"MNIST, 2 ReLU layers of {w}, the authors' settings.",
             _paper("mnist", (w, w)), _BP) for w in (50, 500, 1000)],
    *[Preset(f"paper-fashion-mnist-2x{w}", f"Paper Table II: Fashion-MNIST 2x{w}",
             f"Fashion-MNIST, 2 ReLU layers of {w}, the authors' settings.",
             _paper("fashion_mnist", (w, w)), _BP) for w in (50, 500, 1000)],
    Preset("paper-cifar10-3x800", "Paper Table III: CIFAR-10 3x800",
           "CIFAR-10, 3 ReLU layers of 800, lr 0.01, 1200 epochs (section IV.B).",
           _paper("cifar10", (800, 800, 800), epochs=1200, lr=0.01), {**_BP, "epochs": 50}),
]}


def preset_config(name: str, algo: str = "fgff", **changes: Any) -> RunConfig:
    """The config of preset ``name`` for ``algo``, with ``changes`` on top."""
    if name not in PRESETS:
        raise ValueError(f"preset: {name!r} is not known; choose one of {', '.join(PRESETS)}")
    return PRESETS[name].config(algo, **changes)
