"""A layer's optimizers: its weights and biases, and (FGFF) its significance factors ``s``."""

from __future__ import annotations

import torch
from torch import Tensor

from .config import RunConfig
from .model import FFLayer


class LayerOptimizers:
    """The two optimizers of one FF layer (Algorithm 1, l. 15-19; section III.D).

    The weights and biases step at ``lr``. FGFF's significance factors ``s`` have their own
    optimizer at ``sig_lr``; FF leaves them frozen at 1, where eq. (3) is eq. (2).
    """

    def __init__(self, layer: FFLayer, config: RunConfig) -> None:
        layer.significance.requires_grad_(config.uses_significance)
        self.weights = torch.optim.Adam(layer.linear.parameters(), lr=config.lr)
        self.s = torch.optim.Adam([layer.significance], lr=config.effective_sig_lr) \
            if config.uses_significance else None

    def step(self, loss: Tensor) -> None:
        """The update of a layer from its local loss L: W <- W - alpha dL/dW, b likewise, and the
        significance update s <- s - alpha_f dL/ds (Algorithm 1, l. 15-17), each through its Adam."""
        self.weights.zero_grad(set_to_none=True)
        if self.s is not None:
            self.s.zero_grad(set_to_none=True)
        loss.backward()
        self.weights.step()
        if self.s is not None:
            self.s.step()
