"""The paper's formulas: the input normalisation, the goodness (eq. 2 and 3) and the layer losses (eq. 1).

Each formula is written once here; training and prediction both call these functions.
``layer_goodness`` is a layer's training step up to its goodness, one autograd node whose backward
is written out so that FGFF's significance factors ``s`` cost what FF costs.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.choices import LOSSES
from ..config.values import check_choice

NORM_EPS = 1e-4  # as in the authors' code: x / (||x|| + 1e-4)
CPU_ROW_BLOCK = 2048  # rows per block on a CPU: (2048, 500) float32 is 4 MB, inside an L3 cache


class LayerParameters(Protocol):
    """What a layer's training step reads of a layer: W and b (``linear``) and the factors ``s()``.
    ``model.FFLayer`` is one; naming it here would make this module, the formulas, depend on the network."""

    linear: nn.Linear

    def s(self) -> Tensor: ...


def normalise(x: Tensor) -> Tensor:
    """x / (||x|| + eps), per row: every layer's input normalisation (Algorithm 1, Forward, l. 27)."""
    return x / (x.norm(dim=1, keepdim=True) + NORM_EPS)


class Goodness(NamedTuple):
    """The goodness of each sample with the significance factors (eq. 3) and without them (eq. 2)."""

    with_significance: Tensor
    no_significance: Tensor


def goodness_from_squares(squared: Tensor, s: Tensor | None) -> Goodness:
    """Eq. (2) g = (1/n) sum_j h_j^2 and eq. (3) g = (1/n) sum_j h_j^2 s_j, from the squared
    activations h^2 (last dimension: the n neurons). The one place both formulas are written.

    ``s=None``: eq. (3) is not computed (``with_significance`` is None). With s at 1 both are equal bit
    for bit. An elementwise product and a row mean: on a CPU the row mean runs at memory speed.
    """
    no_significance = squared.mean(dim=-1)  # eq. (2)
    with_s = None if s is None else (squared * s).mean(dim=-1)  # eq. (3)
    return Goodness(with_s, no_significance)


def neuron_weights(s: Tensor) -> Goodness:
    """Eq. (3) and eq. (2) as one weight per neuron: g = sum_j h_j^2 w_j, with w_j = s_j / n (eq. 3)
    and w_j = 1 / n (eq. 2), n the layer's width. ``goodness_from_squares`` is the same sum written as a
    mean; this form lets the ablation curves (``analysis.ablation``) leave single neurons' terms out."""
    n = s.shape[-1]
    return Goodness(s / n, torch.full_like(s, 1.0 / n))


def goodness(h: Tensor, s: Tensor | None = None) -> Tensor:
    """Goodness of each sample of activations ``h``: eq. (3) with factors ``s``, eq. (2) without."""
    g = goodness_from_squares(h.square(), s)
    return g.no_significance if s is None else g.with_significance


def _row_blocks(n_rows: int, device: torch.device) -> list[slice]:
    """Cache-sized row blocks on a CPU (the square and the goodness of a block are computed while it
    is in cache); one block on a GPU."""
    step = CPU_ROW_BLOCK if device.type == "cpu" else max(n_rows, 1)
    return [slice(start, start + step) for start in range(0, n_rows, step)]


def relu_goodness_(z: Tensor, s: Tensor) -> tuple[Tensor, Goodness]:
    """h = relu(z) computed in place in ``z``, and the goodness of each row of h (eq. 3 and 2).

    For callers that own ``z`` (a temporary) and need no gradient through this step.
    """
    rows_view = z.view(-1, z.shape[-1])
    g = rows_view.new_empty(len(rows_view))
    g_no_significance = torch.empty_like(g)
    for rows in _row_blocks(len(rows_view), z.device):
        h_block = rows_view[rows].clamp_(min=0)
        g[rows], g_no_significance[rows] = goodness_from_squares(h_block * h_block, s)
    return z, Goodness(g.view(z.shape[:-1]), g_no_significance.view(z.shape[:-1]))


class LayerOutputs(NamedTuple):
    """A layer's training forward: its outputs (no gradient) and the goodness of both inputs."""

    h_pos: Tensor
    h_neg: Tensor
    g_pos: Tensor  # eq. (3); carries the gradient
    g_neg: Tensor
    g_pos_no_significance: Tensor  # eq. (2); reported only
    g_neg_no_significance: Tensor


class _LayerGoodness(torch.autograd.Function):
    """One FF layer on its positive and negative inputs, up to their goodness, as one autograd node.

    Forward: z = x_n W^T + b, h = relu(z), the goodness with (eq. 3) and without (eq. 2) the factors
    ``s`` for both inputs. The negatives are given, or (the factorised layer 1) a relabelling of the
    positives: z_neg = z_pos + coef W[:, :classes]^T.

    The backward is written out so that FGFF costs what FF costs. With d_ij = (2/n) dL/dg_i h_ij
    (relu's mask is already in h):
    - dL/dz_ij = s_j d_ij. The factor s_j belongs to output neuron j, so it is applied to the
      (out, in) weight gradient rather than to the (N, out) activations:
      dL/dW = s * (d^T x_n), dL/db = s * sum_i d_i.
    - dL/ds_j = (1/n) sum_i dL/dg_i h_ij^2 would be one more pass over the activations. But a
      ReLU has h z = h^2, and z = x_n W^T + b, so dL/ds_j = (1/2) sum_i d_ij z_ij
      = (1/2) (sum_k (d^T x_n)_jk W_jk + b_j sum_i d_ij): a product of two (out, in) matrices
      (and in float32 more accurate than the literal sum over 2N samples).
    """

    @staticmethod
    def forward(ctx, x_pos: Tensor, x_neg: Tensor | None, coef: Tensor | None, weight: Tensor, bias: Tensor,
                s: Tensor, mm_dtype: torch.dtype, h_pos_grad: bool):
        weight_mm = weight.to(mm_dtype)
        z_pos = torch.addmm(bias.to(mm_dtype), x_pos.to(mm_dtype), weight_mm.T)
        if x_neg is not None:
            z_neg = torch.addmm(bias.to(mm_dtype), x_neg.to(mm_dtype), weight_mm.T)
        else:  # both z are computed before the in-place ReLU below
            z_neg = torch.addmm(z_pos, coef.to(mm_dtype), weight_mm[:, :coef.shape[1]].T)
        h_pos, g_pos = relu_goodness_(z_pos.to(weight.dtype), s)
        h_neg, g_neg = relu_goodness_(z_neg.to(weight.dtype), s)
        ctx.mark_non_differentiable(h_neg, g_pos.no_significance, g_neg.no_significance,
                                    *(() if h_pos_grad else (h_pos,)))
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x_pos, x_neg, coef, weight, bias, s, h_pos, h_neg)
        ctx.mm_dtype = mm_dtype
        return (h_pos, h_neg, g_pos.with_significance, g_neg.with_significance,
                g_pos.no_significance, g_neg.no_significance)

    @staticmethod
    def backward(ctx, grad_h_pos, _grad_h_neg, grad_g_pos, grad_g_neg, _grad_pos_no_s, _grad_neg_no_s):
        x_pos, x_neg, coef, weight, bias, s, h_pos, h_neg = ctx.saved_tensors
        if grad_g_pos is None and grad_g_neg is None and grad_h_pos is None:
            return None, None, None, None, None, None, None, None
        n, dt, acc = weight.shape[0], ctx.mm_dtype, weight.dtype
        d_pos = h_pos * (grad_g_pos * (2.0 / n))[:, None] if grad_g_pos is not None else torch.zeros_like(h_pos)
        d_neg = h_neg * (grad_g_neg * (2.0 / n))[:, None] if grad_g_neg is not None else torch.zeros_like(h_neg)
        if x_neg is None:  # relabelled negatives: x_neg_n = x_pos_n + coef in the label columns
            d_sum = d_pos.add_(d_neg)
            grad_w = (d_sum.T.to(dt) @ x_pos.to(dt)).to(acc)
            grad_w[:, :coef.shape[1]] += (coef.T.to(dt) @ d_neg.to(dt)).to(acc).T
            grad_b = d_sum.sum(0)
        else:
            grad_w = (d_pos.T.to(dt) @ x_pos.to(dt)).to(acc)
            grad_w += (d_neg.T.to(dt) @ x_neg.to(dt)).to(acc)
            grad_b = d_pos.sum(0) + d_neg.sum(0)
        grad_s = None
        if ctx.needs_input_grad[5]:  # FGFF: from h z = h^2 (see the class docstring)
            grad_s = 0.5 * ((grad_w * weight).sum(1) + grad_b * bias)
        grad_w, grad_b = grad_w * s[:, None], grad_b * s
        if grad_h_pos is not None:  # a loss on h_pos itself (peer normalisation): through relu's mask
            e = grad_h_pos * (h_pos > 0)
            grad_w += (e.T.to(dt) @ x_pos.to(dt)).to(acc)
            grad_b += e.sum(0)
        return None, None, None, grad_w, grad_b, grad_s, None, None


def layer_goodness(layer: LayerParameters, x_pos: Tensor, x_neg: Tensor | None = None, coef: Tensor | None = None,
                   mm_dtype: torch.dtype | None = None, h_pos_grad: bool = False) -> LayerOutputs:
    """A layer's training forward (Algorithm 1, l. 9-13) up to the goodness of both inputs.

    ``x_pos``/``x_neg``: normalised inputs; or, for negatives that are relabellings of the positives
    (the factorised layer 1), ``coef`` (N, classes) instead of ``x_neg``. Gradients reach the layer's
    weight, bias and significance factors ``s``; the outputs h carry none (no backpropagation
    between layers), except ``h_pos`` with ``h_pos_grad=True``, for a loss on the layer's own
    activity (peer normalisation). ``mm_dtype=torch.bfloat16``: the matrix products in bf16.
    """
    if (x_neg is None) == (coef is None):
        raise ValueError("layer_goodness: pass exactly one of x_neg and coef")
    weight = layer.linear.weight
    return LayerOutputs(*_LayerGoodness.apply(x_pos, x_neg, coef, weight, layer.linear.bias, layer.s(),
                                              mm_dtype or weight.dtype, h_pos_grad))


# -- losses --------------------------------------------------------------------------------------

def softplus_loss(g_pos: Tensor, g_neg: Tensor, threshold: float) -> Tensor:
    """The authors' default loss: mean of log(1 + exp(.)) of (threshold - g_pos) and (g_neg - threshold)."""
    return F.softplus(torch.cat([threshold - g_pos, g_neg - threshold])).mean()


def hinge_loss(g_pos: Tensor, g_neg: Tensor, threshold: float, delta: float) -> Tensor:
    """Eq. (1): push g_pos above threshold + delta and g_neg below threshold - delta.

    The printed equation puts 1/2 in front of the first max only; we read it as 1/2 of the sum
    (a typesetting slip: the two terms are symmetric in the text), averaged over samples.
    """
    pos_term = F.relu(delta - (g_pos - threshold))
    neg_term = F.relu(delta - (threshold - g_neg))
    return 0.5 * (pos_term.mean() + neg_term.mean())


def symba_loss(g_pos: Tensor, g_neg: Tensor, alpha: float) -> Tensor:
    """SymBa (Lee and Song, 2023): mean of softplus(alpha (g_neg - g_pos)) over (positive, negative) pairs.
    Symmetric, and no threshold: only the gap between a sample's positive and negative goodness counts."""
    return F.softplus(alpha * (g_neg - g_pos)).mean()


EXP_HINGE_MAX_EXPONENT = 20.0  # exp(20) = 5e8: beyond it the gradient is cut, not the loss made infinite


def exp_hinge_loss(g_pos: Tensor, g_neg: Tensor, threshold: float, delta: float) -> Tensor:
    """An exponential hinge: eq. (1) with each hinge term t = max(0, delta - margin) replaced by exp(t) - 1.

    Zero where eq. (1) is zero; grows exponentially with the violation. The issue reports that the
    authors' "hinge" switch runs an exponential hinge, but their formula was not available to us: this
    is our reading, documented as such (the exponent is capped at ``EXP_HINGE_MAX_EXPONENT``).
    """
    def term(t: Tensor) -> Tensor:
        return torch.expm1(F.relu(t).clamp(max=EXP_HINGE_MAX_EXPONENT)).mean()

    return 0.5 * (term(delta - (g_pos - threshold)) + term(delta - (threshold - g_neg)))


def layer_loss(g_pos: Tensor, g_neg: Tensor, loss: str, threshold: float, delta: float,
               symba_alpha: float = 4.0) -> Tensor:
    """The local loss of a layer from its positive and negative goodness: the one place a loss is chosen
    (eq. 1 for ``hinge``; the authors' ``softplus``; ``symba``; ``exp_hinge``)."""
    if loss == "softplus":
        return softplus_loss(g_pos, g_neg, threshold)
    if loss == "hinge":
        return hinge_loss(g_pos, g_neg, threshold, delta)
    if loss == "symba":
        return symba_loss(g_pos, g_neg, symba_alpha)
    if loss == "exp_hinge":
        return exp_hinge_loss(g_pos, g_neg, threshold, delta)
    check_choice("loss", loss, LOSSES)
    raise NotImplementedError(f"loss: {loss!r} has no formula here")


PEER_MOMENTUM = 0.9  # of the running mean activity, as in loeweX/Forward-Forward


def peer_normalisation_loss(h_pos: Tensor, running_mean: Tensor) -> tuple[Tensor, Tensor]:
    """Hinton's peer normalisation: (loss, updated running mean).

    Each neuron's running mean activity on positive data, r = 0.9 r + 0.1 mean_i h_i, is pulled
    towards the layer's mean activity: loss = mean_j (mean_k r_k - r_j)^2. The gradient flows through
    this batch's mean, so an over-active neuron is pushed down and a silent one up.
    """
    running = PEER_MOMENTUM * running_mean.detach() + (1 - PEER_MOMENTUM) * h_pos.mean(dim=0)
    return (running.mean() - running).square().mean(), running.detach()
