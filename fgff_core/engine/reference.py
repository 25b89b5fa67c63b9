"""Algorithm 1 of the paper (FF and FGFF), written as plainly as possible: the tests' oracle for the engine.

Greedy and layer-wise: each layer trains for all its epochs on the frozen outputs of the layers below it,
with plain autograd on the equations as printed. No speed-ups: no fused autograd node, no label
factorisation, no compile, no chunking, unfused Adam. The engine (``training.Trainer``) must end with the
same weights, factors s and predictions (tests/test_reference.py); whatever it does to be fast, it must
still agree with this file. Nothing here calls the engine.

The random draws are the engine's, from one generator seeded with ``seed``: the negative labels once
(l. 5), then, when training in mini-batches, one permutation of the samples per layer and epoch. The
initial weights are ``nn.Linear``'s, layer after layer, under ``torch.manual_seed(seed)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.schema import RunConfig
from ..config.values import check_choice

EPS = 1e-4  # Normalize(x) = x / (||x|| + 1e-4), as in the authors' code
S_RAW_AT_ONE = {"unconstrained": 1.0, "softplus": math.log(math.e - 1.0), "exp": 0.0}  # every s starts at 1

# What this file implements of a RunConfig: the paper's algorithm with its two losses. The other
# fields either do not change the numbers (device, eval_*, log_every, factorize) or are refused.
SUPPORTED = {"algo": ("ff", "fgff"), "loss": ("softplus", "hinge"), "optimizer": ("adam",),
             "schedule": ("greedy",), "negatives": ("fixed",), "lr_schedule": ("constant",),
             "weight_decay": (0.0,), "hard_negatives": (0.0,), "peer_norm": (0.0,), "augment_shift": (0,),
             "precision": ("fp32",), "predict_layers": ("all",), "compile": (False,)}


def forward(linear: nn.Linear, x: Tensor) -> Tensor:
    """Algorithm 1, Forward (l. 26-30): x_n = Normalize(x), then ReLU(x_n W^T + b)."""
    x_n = x / (x.norm(dim=1, keepdim=True) + EPS)
    return F.relu(linear(x_n))


def goodness(h: Tensor, s: Tensor) -> Tensor:
    """Eq. (3): g_i = (1/n) sum_j h_ij^2 s_j for each sample i. With s = 1 it is eq. (2)."""
    return (h.square() * s).mean(dim=1)


def layer_loss(g_pos: Tensor, g_neg: Tensor, cfg: RunConfig) -> Tensor:
    """Eq. (1), the hinge (1/2 of the sum of both terms, each averaged over samples), or the authors'
    softplus: the mean of log(1 + exp(.)) over (threshold - g_pos) and (g_neg - threshold)."""
    if cfg.loss == "hinge":
        pos_term = F.relu(cfg.delta - (g_pos - cfg.threshold)).mean()
        neg_term = F.relu(cfg.delta - (cfg.threshold - g_neg)).mean()
        return 0.5 * (pos_term + neg_term)
    return F.softplus(torch.cat([cfg.threshold - g_pos, g_neg - cfg.threshold])).mean()


def embed(x: Tensor, labels: Tensor, value: float, n_classes: int) -> Tensor:
    """Fig. 2: the first ``n_classes`` inputs hold the one-hot label, times ``value``."""
    x = x.clone()
    x[:, :n_classes] = 0.0
    x[torch.arange(len(x)), labels] = value
    return x


@dataclass
class ReferenceNet:
    """The trained network: each layer's W and b (``linears``) and its row of the significance matrix."""

    linears: list[nn.Linear]
    s_raw: list[nn.Parameter]  # what the s optimizer trains; s itself when unconstrained (the paper)
    significance_param: str
    label_value: float
    n_classes: int

    def s(self, i: int) -> Tensor:
        """Layer i's significance factors s: the parameter itself, softplus of it, or exp of it."""
        p = self.s_raw[i]
        return {"unconstrained": p, "softplus": F.softplus(p), "exp": p.exp()}[self.significance_param]

    @torch.no_grad()
    def label_goodness(self, x: Tensor, use_s: bool = True) -> Tensor:
        """Section II's prediction rule: embed each candidate label, run the net, sum the goodness over the
        layers; (N, classes). ``use_s``: eq. (3) in every layer, else eq. (2) (section III.C)."""
        scores = []
        for label in range(self.n_classes):
            h = embed(x, torch.full((len(x),), label), self.label_value, self.n_classes)
            total = torch.zeros(len(x))
            for i, linear in enumerate(self.linears):
                h = forward(linear, h)
                total += goodness(h, self.s(i) if use_s else torch.ones_like(self.s(i)))
            scores.append(total)
        return torch.stack(scores, dim=1)

    def predict(self, x: Tensor, use_s: bool = True) -> Tensor:
        """The label with the highest goodness summed over the layers."""
        return self.label_goodness(x, use_s).argmax(dim=1)


def check_supported(cfg: RunConfig) -> None:
    """ValueError naming the first field of ``cfg`` that this file does not implement."""
    try:
        for name, allowed in SUPPORTED.items():
            check_choice(name, getattr(cfg, name), allowed)
    except ValueError as exc:
        raise ValueError(f"{exc} (the reference implements Algorithm 1 only)") from None


def train(cfg: RunConfig, x: Tensor, y: Tensor, n_classes: int) -> ReferenceNet:
    """Algorithm 1 on training images ``x`` (N, inputs) with labels ``y``: FGFF, or FF (``algo=ff``,
    the factors stay at 1 and eq. (3) is eq. (2))."""
    check_supported(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        sizes = [x.shape[1], *cfg.layers]
        linears = [nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    # l. 1: the significance matrix, one row per layer, every factor s at 1 (footnote 1)
    s_raw = [nn.Parameter(torch.full((n,), S_RAW_AT_ONE[cfg.significance_param]), requires_grad=cfg.trains_factors)
             for n in cfg.layers]
    label_value = cfg.resolve_label_value(x.max())
    net = ReferenceNet(linears, s_raw, cfg.significance_param, label_value, n_classes)

    generator = torch.Generator().manual_seed(cfg.seed)
    # l. 5: positive data with the true label, negative data with a wrong one, uniform over the others
    y_wrong = (y + torch.randint(1, n_classes, y.shape, generator=generator)) % n_classes
    pos, neg = embed(x, y, label_value, n_classes), embed(x, y_wrong, label_value, n_classes)

    n = len(y)
    for i, linear in enumerate(net.linears):  # l. 6: greedily, one layer after the other
        # section III.D: two optimizers, one for W and b, one for the factors s (FGFF only)
        weights_opt = torch.optim.Adam(linear.parameters(), lr=cfg.lr)
        s_opt = torch.optim.Adam([s_raw[i]], lr=cfg.sig_lr) if cfg.trains_factors else None
        for _epoch in range(cfg.epochs):  # l. 8
            full = cfg.batch_size == 0 or cfg.batch_size >= n
            batches = [torch.arange(n)] if full else torch.randperm(n, generator=generator).split(cfg.batch_size)
            for rows in batches:
                o_p, o_n = forward(linear, pos[rows]), forward(linear, neg[rows])  # l. 9-10
                s = net.s(i)  # l. 11
                g_pos, g_neg = goodness(o_p, s), goodness(o_n, s)  # l. 12-13, eq. (3)
                loss = layer_loss(g_pos, g_neg, cfg)  # l. 14, eq. (1)
                weights_opt.zero_grad()
                if s_opt is not None:
                    s_opt.zero_grad()
                loss.backward()  # l. 15: dL/dW, dL/db and dL/ds
                weights_opt.step()  # l. 18-19: W and b
                if s_opt is not None:
                    s_opt.step()  # l. 16-17: the significance update, at its own rate sig_lr
        with torch.no_grad():  # l. 22-23: the frozen layer's outputs are the next layer's data
            pos, neg = forward(linear, pos), forward(linear, neg)
    return net
