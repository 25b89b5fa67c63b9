"""The networks: the Forward-Forward MLP (FF and FGFF share it) and the backprop baseline.

Where to find the paper in the code:
- label embedding (Fig. 2) ............ ``embed_labels``
- Forward (Algorithm 1, l. 26-30) ..... ``FFLayer.forward``
- goodness, eq. (2) and eq. (3) ....... ``goodness`` (formulas in ``_goodness_of_squares``)
- losses, eq. (1) and softplus ........ ``hinge_loss``, ``softplus_loss``
- prediction rule (section II) ........ ``FFNet.label_goodness`` / ``FFNet.predict``
- a layer's training step, forward and the gradients of W, b and the significance (eq. 3):
  ``_LayerGoodness`` (used through ``layer_goodness``)
The significance update lives in ``training.py`` (its own optimizer, Algorithm 1 l. 15-17).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NORM_EPS = 1e-4  # as in the authors' code: x / (||x|| + 1e-4)


def embed_labels(x: Tensor, labels: Tensor | int, label_value: float, n_classes: int = 10) -> Tensor:
    """Overwrite the first ``n_classes`` inputs with the one-hot label times ``label_value`` (Fig. 2)."""
    out = x.clone()
    out[:, :n_classes] = 0.0
    if isinstance(labels, int):
        out[:, labels] = label_value
    else:
        out[torch.arange(len(x), device=x.device), labels] = label_value
    return out


def goodness(h: Tensor, significance: Tensor | None = None) -> Tensor:
    """Goodness of each sample: eq. (2) without significance, eq. (3) with it.

    g = (1/n) * sum_j h_j^2 * w_j, over the n neurons of the layer (last dimension).
    """
    g, g_raw = _goodness_of_squares(h.square(), significance)
    return g_raw if significance is None else g


def _goodness_of_squares(squared: Tensor, significance: Tensor | None) -> tuple[Tensor, Tensor]:
    """(eq. 3, eq. 2) from the squared activations: the one place both formulas are written.

    An elementwise product and a row mean rather than a matrix-vector product: on CPU the row
    reduction runs at memory speed and the matrix-vector product at half of it. With the factors
    at 1 the two goodnesses are equal bit for bit.
    """
    g_raw = squared.mean(dim=-1)  # eq. (2)
    g = None if significance is None else (squared * significance).mean(dim=-1)  # eq. (3)
    return g, g_raw


CPU_ROW_BLOCK = 2048  # rows per block on a CPU: (2048, 500) float32 is 4 MB, well inside an L3 cache


def _row_blocks(n_rows: int, device: torch.device) -> list[slice]:
    """Row ranges for the passes over activations: cache-sized blocks on a CPU, so that the square
    and the goodness of a block are computed while it is in cache; one block on a GPU."""
    step = CPU_ROW_BLOCK if device.type == "cpu" else max(n_rows, 1)
    return [slice(start, start + step) for start in range(0, n_rows, step)]


def relu_goodness_(z: Tensor, significance: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """h = relu(z) computed in place in ``z``, with eq. (3) and eq. (2) of each row of h.

    For callers that own ``z`` (a temporary) and need no gradient through this step.
    """
    rows_view = z.view(-1, z.shape[-1])
    g = rows_view.new_empty(len(rows_view))
    g_raw = torch.empty_like(g)
    for rows in _row_blocks(len(rows_view), z.device):
        h_block = rows_view[rows].clamp_(min=0)
        g[rows], g_raw[rows] = _goodness_of_squares(h_block * h_block, significance)
    return z, g.view(z.shape[:-1]), g_raw.view(z.shape[:-1])


class _LayerGoodness(torch.autograd.Function):
    """One FF layer on its positive and negative inputs, up to their goodness, as one autograd node.

    Forward: z = x_n W^T + b, h = relu(z), g (eq. 3) and g_raw (eq. 2) for both inputs. The
    negatives are given, or (the factorised layer 1) a relabelling of the positives:
    z_neg = z_pos + coef W[:, :classes]^T.

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
                significance: Tensor, mm_dtype: torch.dtype):
        w = weight.to(mm_dtype)
        z_pos = torch.addmm(bias.to(mm_dtype), x_pos.to(mm_dtype), w.T)
        if x_neg is not None:
            z_neg = torch.addmm(bias.to(mm_dtype), x_neg.to(mm_dtype), w.T)
        else:  # both z are computed before the in-place ReLU below
            z_neg = torch.addmm(z_pos, coef.to(mm_dtype), w[:, :coef.shape[1]].T)
        h_pos, g_pos, g_pos_raw = relu_goodness_(z_pos.to(weight.dtype), significance)
        h_neg, g_neg, g_neg_raw = relu_goodness_(z_neg.to(weight.dtype), significance)
        ctx.mark_non_differentiable(h_pos, h_neg, g_pos_raw, g_neg_raw)  # no gradient between layers
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x_pos, x_neg, coef, weight, bias, significance, h_pos, h_neg)
        ctx.mm_dtype = mm_dtype
        return h_pos, h_neg, g_pos, g_neg, g_pos_raw, g_neg_raw

    @staticmethod
    def backward(ctx, _grad_h_pos, _grad_h_neg, grad_g_pos, grad_g_neg, _grad_raw_pos, _grad_raw_neg):
        x_pos, x_neg, coef, weight, bias, significance, h_pos, h_neg = ctx.saved_tensors
        if grad_g_pos is None and grad_g_neg is None:
            return None, None, None, None, None, None, None
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
        grad_significance = None
        if ctx.needs_input_grad[5]:  # FGFF: from h z = h^2 (see the class docstring)
            grad_significance = 0.5 * ((grad_w * weight).sum(1) + grad_b * bias)
        return None, None, None, grad_w * significance[:, None], grad_b * significance, grad_significance, None


def layer_goodness(layer: FFLayer, x_pos: Tensor, x_neg: Tensor | None = None, coef: Tensor | None = None,
                   mm_dtype: torch.dtype | None = None) -> tuple[Tensor, ...]:
    """Training's forward of one layer: (h_pos, h_neg, g_pos, g_neg, g_pos_raw, g_neg_raw).

    ``x_pos``/``x_neg``: normalised inputs. For the factorised layer 1 pass ``coef`` (see
    ``FFLayer.relabel``) instead of ``x_neg``. Gradients reach the layer's weight, bias and
    significance; the outputs h carry none (no backpropagation between layers).
    ``mm_dtype=torch.bfloat16``: the matrix products in bf16 (the bf16 speed mode); by default
    they run in the parameters' dtype.
    """
    if (x_neg is None) == (coef is None):
        raise ValueError("layer_goodness: pass exactly one of x_neg and coef")
    weight = layer.linear.weight
    return _LayerGoodness.apply(x_pos, x_neg, coef, weight, layer.linear.bias, layer.significance,
                                mm_dtype or weight.dtype)


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


def layer_loss(g_pos: Tensor, g_neg: Tensor, loss: str, threshold: float, delta: float) -> Tensor:
    if loss == "softplus":
        return softplus_loss(g_pos, g_neg, threshold)
    if loss == "hinge":
        return hinge_loss(g_pos, g_neg, threshold, delta)
    raise ValueError(f"loss: {loss!r} is not allowed; choose one of softplus, hinge")


class FFLayer(nn.Module):
    """One Forward-Forward layer: L2-normalise the input, linear, ReLU; plus its significance factors."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        # The layer's row of the significance matrix (section III.A), initialised to 1 (footnote 1).
        self.significance = nn.Parameter(torch.ones(out_features))

    def forward(self, x: Tensor) -> Tensor:
        """Algorithm 1, Forward: x_n = x / ||x||; relu(x_n W^T + b)."""
        return F.relu(self.pre_activation(x))

    def pre_activation(self, x: Tensor) -> Tensor:
        """x_n W^T + b with x_n = x / ||x||: ``forward`` before the ReLU."""
        return self.linear(normalise(x))

    # -- the label-factorised first layer ---------------------------------------------------------
    # Inputs that differ only in the embedded label share everything else: the same image, and
    # the same norm (||x_emb||^2 = ||x_img||^2 + v^2 whatever the label). So from the
    # pre-activation z_ref of the image with labels y_ref, the one with labels y is
    #     z = z_ref + (v / ||x_emb||) (W[:, y] - W[:, y_ref]),
    # a thin (N, classes) x (classes, out) product instead of a full (N, in) x (in, out) one.
    # Exact up to float rounding; tests compare it with the plain path.

    def forward_labelled(self, x: Tensor, labels: Sequence[Tensor], label_value: float,
                         n_classes: int, normalised: tuple[Tensor, Tensor] | None = None) -> list[Tensor]:
        """``forward`` on ``x`` with each label vector embedded; see ``pre_activation_labelled``."""
        return [F.relu(z) for z in self.pre_activation_labelled(x, labels, label_value, n_classes, normalised)]

    def pre_activation_labelled(self, x: Tensor, labels: Sequence[Tensor], label_value: float,
                                n_classes: int, normalised: tuple[Tensor, Tensor] | None = None) -> list[Tensor]:
        """``pre_activation(embed_labels(x, y))`` for each y in ``labels``: one full product, for
        ``labels[0]``, and a thin relabelling product for each of the others.

        ``normalised``: ``normalised_embedding(x, labels[0], ...)`` computed once, for a caller
        that passes the same data and first labels every epoch (it has no parameters).
        """
        x_n, inv_norm = normalised if normalised is not None else \
            normalised_embedding(x, labels[0], label_value, n_classes)
        z_ref = self.linear(x_n)
        return [z_ref] + [self.relabel(z_ref, inv_norm * label_value, labels[0], y, n_classes) for y in labels[1:]]

    def pre_activation_all_labels(self, x: Tensor, label_value: float, n_classes: int) -> Tensor:
        """Pre-activations for every candidate label at once, shape (classes, N, out); factorised.

        Relabels label 0's product to each label k as one broadcast multiply-add,
        z_k = z_0 + (v / ||x_emb||) (W[:, k] - W[:, 0]), which writes the output once.
        """
        reference = torch.zeros(len(x), dtype=torch.long, device=x.device)
        x_n, inv_norm = normalised_embedding(x, reference, label_value, n_classes)
        z_ref = self.linear(x_n)
        label_columns = self.linear.weight[:, :n_classes].T.contiguous()  # (classes, out): row k is W[:, k];
        change = label_columns - label_columns[0]  # contiguous, or the output would be laid out transposed
        return torch.addcmul(z_ref, (inv_norm * label_value)[:, None], change[:, None, :])

    def relabel(self, z_ref: Tensor, scale: Tensor, y_ref: Tensor, y: Tensor | int, n_classes: int) -> Tensor:
        """The pre-activation for labels ``y`` from ``z_ref``, the one for labels ``y_ref`` of the same
        images; ``scale`` is v / (||x_emb|| + eps) per sample."""
        coef = relabel_coefficients(scale, y_ref, y, n_classes)
        return torch.addmm(z_ref, coef, self.linear.weight[:, :n_classes].T)


def normalise(x: Tensor) -> Tensor:
    """x / (||x|| + eps), per row: every layer's input normalisation (Algorithm 1, Forward)."""
    return x / (x.norm(dim=1, keepdim=True) + NORM_EPS)


def normalised_embedding(x: Tensor, labels: Tensor, label_value: float, n_classes: int) -> tuple[Tensor, Tensor]:
    """``normalise(embed_labels(x, labels))`` and 1 / (||x_emb|| + eps), (N,); the latter is the
    same for every label embedded with the same value."""
    x_emb = embed_labels(x, labels, label_value, n_classes)
    norm = x_emb.norm(dim=1, keepdim=True) + NORM_EPS
    return x_emb / norm, 1.0 / norm[:, 0]


def relabel_coefficients(scale: Tensor, y_ref: Tensor, y: Tensor | int, n_classes: int) -> Tensor:
    """(N, classes): +scale at each sample's new label, -scale at its reference label (0 if equal)."""
    coef = scale.new_zeros(len(scale), n_classes)
    rows = torch.arange(len(scale), device=scale.device)
    coef[rows, y] = scale
    coef[rows, y_ref] -= scale
    return coef


class FFNet(nn.Module):
    """A stack of ``FFLayer``s with the label embedding and the goodness-based prediction rule."""

    def __init__(self, input_dim: int, layers: Sequence[int], n_classes: int = 10, label_value: float = 1.0,
                 factorize: bool = True) -> None:
        super().__init__()
        if input_dim <= n_classes:
            raise ValueError(f"input_dim must exceed n_classes={n_classes} to hold the label, got {input_dim}")
        sizes = [input_dim, *layers]
        self.layers = nn.ModuleList(FFLayer(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.input_dim = input_dim
        self.n_classes = n_classes
        self.label_value = float(label_value)
        self.factorize = factorize

    # -- forward passes -----------------------------------------------------------------------
    def first_layer(self, x: Tensor, labels: Sequence[Tensor],
                    normalised: tuple[Tensor, Tensor] | None = None) -> list[Tensor]:
        """Layer 1 on ``x`` embedded with each label vector in ``labels``.

        ``normalised``: ``self.normalised_input(x, labels[0])``, for a caller that reuses it across epochs.
        """
        return [F.relu(z) for z in self.first_layer_pre_activation(x, labels, normalised)]

    def first_layer_pre_activation(self, x: Tensor, labels: Sequence[Tensor],
                                   normalised: tuple[Tensor, Tensor] | None = None) -> list[Tensor]:
        """``first_layer`` before the ReLU (factorised or plain, as configured)."""
        first = self.layers[0]
        if self.factorize:
            return first.pre_activation_labelled(x, labels, self.label_value, self.n_classes, normalised)
        return [first.pre_activation(embed_labels(x, y, self.label_value, self.n_classes)) for y in labels]

    def layer_outputs(self, x: Tensor, labels: Tensor, upto: int | None = None) -> list[Tensor]:
        """Every layer's output for ``x`` with ``labels`` embedded (e.g. positive data for t-SNE)."""
        upto = len(self.layers) if upto is None else upto
        (h,) = self.first_layer(x, [labels])
        outs = [h]
        for layer in self.layers[1:upto]:
            h = layer(h)
            outs.append(h)
        return outs

    # -- prediction ---------------------------------------------------------------------------
    @torch.no_grad()
    def label_goodness(self, x: Tensor, upto: int | None = None,
                       chunk: int = 0) -> tuple[Tensor, Tensor]:
        """Goodness summed over layers for each candidate label: (with significance, without), (N, C) each.

        The prediction rule: embed each of the 10 labels, run the net, sum the goodness of the
        layers, take the argmax. Evaluated in chunks of ``chunk`` samples so memory stays bounded
        (0: ``auto_chunk``).
        """
        chunk = chunk or self.auto_chunk(x.device)
        upto = len(self.layers) if upto is None else upto
        with_sig, without_sig = [], []
        c = self.n_classes
        for start in range(0, len(x), chunk):
            xc = x[start:start + chunk]
            first = self.layers[0]
            if self.factorize:
                z = first.pre_activation_all_labels(xc, self.label_value, c)
            else:
                z = torch.stack([first.pre_activation(embed_labels(xc, k, self.label_value, c)) for k in range(c)])
            z = z.reshape(c * len(xc), -1)
            g_sig = torch.zeros(c * len(xc), device=x.device)
            g_raw = torch.zeros(c * len(xc), device=x.device)
            for i, layer in enumerate(self.layers[:upto]):
                h, g, g_no_sig = relu_goodness_(z, layer.significance)  # eq. (3), eq. (2); z is ours
                g_sig += g.float()
                g_raw += g_no_sig.float()
                if i + 1 < upto:
                    z = self.layers[i + 1].pre_activation(h)
            with_sig.append(g_sig.view(c, -1).T)
            without_sig.append(g_raw.view(c, -1).T)
        if not with_sig:  # no samples
            return x.new_zeros(0, c), x.new_zeros(0, c)
        return torch.cat(with_sig), torch.cat(without_sig)

    def auto_chunk(self, device: torch.device) -> int:
        """Samples per prediction chunk, measured fastest on the benchmark machine (2-core CPU, 2x500).

        On a CPU, small chunks keep the activations of all 10 labels in cache: 128 samples (10 x 128
        x 500 floats = 2.5 MB) for the factorised first layer, 512 for the plain one, whose 10
        full products run better on larger blocks. A GPU wants large kernels.
        """
        if device.type != "cpu":
            return 8192
        return 128 if self.factorize else 512

    @torch.no_grad()
    def predict(self, x: Tensor, use_significance: bool = True, upto: int | None = None,
                chunk: int = 0) -> Tensor:
        g_sig, g_raw = self.label_goodness(x, upto=upto, chunk=chunk)
        return (g_sig if use_significance else g_raw).argmax(dim=1)

    def normalised_input(self, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """The parameter-free part of the factorised layer 1 (see ``normalised_embedding``)."""
        return normalised_embedding(x, labels, self.label_value, self.n_classes)

    def significance(self) -> list[Tensor]:
        """The significance matrix, one row per layer (layers may differ in width)."""
        return [layer.significance.detach() for layer in self.layers]


class BPNet(nn.Module):
    """The backprop baseline: the same hidden layers (linear + ReLU) and a linear softmax head."""

    def __init__(self, input_dim: int, layers: Sequence[int], n_classes: int = 10) -> None:
        super().__init__()
        sizes = [input_dim, *layers]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = nn.Linear(sizes[-1], n_classes)
        self.input_dim = input_dim
        self.n_classes = n_classes

    def layer_outputs(self, x: Tensor, labels: Tensor | None = None, upto: int | None = None) -> list[Tensor]:
        outs, h = [], x
        for layer in self.hidden[:upto]:
            h = F.relu(layer(h))
            outs.append(h)
        return outs

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layer_outputs(x)[-1])

    @torch.no_grad()
    def predict(self, x: Tensor, chunk: int = 0, **_: object) -> Tensor:
        chunk = chunk or 4096
        return torch.cat([self(x[s:s + chunk]).argmax(dim=1) for s in range(0, len(x), chunk)])
