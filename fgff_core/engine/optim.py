"""Optimizers and learning-rate schedules: a layer's weights and biases, and (FGFF) its significance factors ``s``."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..config.choices import LR_SCHEDULES, OPTIMIZERS
from ..config.schema import RunConfig
from ..config.values import check_choice
from .model import FFLayer


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The learning-rate multiplier of 1-based ``epoch`` out of ``epochs``.

    constant: 1. linear (Hinton): 1 over the first half, then a linear decay towards 0 over the second
    half, 2 (1 - (epoch - 1) / epochs). cosine: (1 + cos(pi (epoch - 1) / epochs)) / 2.
    """
    t = (epoch - 1) / epochs
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return min(1.0, 2.0 * (1.0 - t))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    check_choice("lr_schedule", schedule, LR_SCHEDULES)
    raise NotImplementedError(f"lr_schedule: {schedule!r} has no formula here")


def _fused(params: list[nn.Parameter]) -> bool | None:
    """Adam's fused kernel where PyTorch has it for every parameter's device (CPU, CUDA), else the default.

    The same update in one kernel per step instead of one per operation: measured on the 2-core CPU at
    batch 100 (the strong recipes), the step of a 500x784 layer takes 0.35 ms against 0.93 ms, about a sixth
    of an epoch. The parameters agree with the unfused Adam to float32 rounding (tests/test_recipes.py).
    """
    return True if params and all(p.device.type in ("cpu", "cuda") for p in params) else None


def make_adam(params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0,
              decoupled: bool = False) -> torch.optim.Optimizer:
    """Adam (AdamW with ``decoupled``) at ``lr``, fused where it can be (``_fused``)."""
    params = list(params)
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    return cls(params, lr=lr, weight_decay=weight_decay, fused=_fused(params))


def make_optimizer(params: Iterable[nn.Parameter], config: RunConfig) -> torch.optim.Optimizer:
    """The weights' optimizer of ``config``: adam, adamw or sgd with momentum, at ``lr`` with ``weight_decay``."""
    params = list(params)
    if config.optimizer in ("adam", "adamw"):
        return make_adam(params, config.lr, config.weight_decay, decoupled=config.optimizer == "adamw")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    check_choice("optimizer", config.optimizer, OPTIMIZERS)
    raise NotImplementedError(f"optimizer: {config.optimizer!r} is not built here")


def set_lr_factor(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = base_lr * factor


class LayerOptimizers:
    """The two optimizers of one FF layer (Algorithm 1, l. 15-19; section III.D).

    The weights and biases step with the configured optimizer at ``lr``. FGFF's significance factors
    ``s`` have their own Adam at ``sig_lr`` (no weight decay) on the layer's parameter ``s_raw``; FF leaves
    them frozen at 1, where eq. (3) is eq. (2). Both follow the learning-rate schedule.
    """

    def __init__(self, layer: FFLayer, config: RunConfig) -> None:
        layer.s_raw.requires_grad_(config.trains_factors)
        self.config = config
        self.weights = make_optimizer(layer.linear.parameters(), config)
        self.s = make_adam([layer.s_raw], config.effective_sig_lr) if config.trains_factors else None

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Set both learning rates for 1-based ``epoch`` of ``epochs`` (``lr_factor``)."""
        cfg = self.config
        if cfg.lr_schedule == "constant":
            return
        factor = lr_factor(cfg.lr_schedule, epoch, epochs)
        set_lr_factor(self.weights, cfg.lr, factor)
        if self.s is not None:
            set_lr_factor(self.s, cfg.effective_sig_lr, factor)

    def step(self, loss: Tensor) -> None:
        """The update of a layer from its local loss L: W <- W - alpha dL/dW, b likewise, and the
        significance update s <- s - alpha_f dL/ds (Algorithm 1, l. 15-17), each through its optimizer."""
        self.weights.zero_grad(set_to_none=True)
        if self.s is not None:
            self.s.zero_grad(set_to_none=True)
        loss.backward()
        self.weights.step()
        if self.s is not None:
            self.s.step()
