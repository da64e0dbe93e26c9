r"""The per-sample losses of :mod:`hessrank.models.losses`, written for PyTorch tensors.

The same definitions, constants and normalisation (a sum over samples, ``½`` in the
squared error), for one sample with output :math:`f \in \mathbb{R}^K` and target :math:`y`:

* ``mse``:   :math:`\ell = \tfrac12\lVert f-y\rVert^2`, :math:`\nabla_f\ell = f-y`, :math:`\Lambda = I`;
* ``cross``: :math:`\ell = (\sum_k y_k)\,\mathrm{lse}(f) - \langle y, f\rangle`,
  :math:`\nabla_f\ell = (\sum y)\,s - y`, :math:`\Lambda = (\sum y)(\mathrm{diag}(s) - s s^\top)`;
* ``cosh``:  :math:`\ell = \sum_k \log\cosh(f_k-y_k)`, :math:`\nabla_f\ell = \tanh(f-y)`,
  :math:`\Lambda = \mathrm{diag}(\mathrm{sech}^2(f-y))`.

Each function takes a batch (b, K) and returns per-sample values (b,), gradients (b, K)
or output Hessians (b, K, K). The tests compare all three with the JAX definitions.
"""

from __future__ import annotations

import math

import torch


def _logcosh(z):
    # log cosh z = |z| + log1p(exp(-2|z|)) - log 2, stable for large |z| (the JAX definition)
    a = z.abs()
    return a + torch.log1p(torch.exp(-2.0 * a)) - math.log(2.0)


def loss_values(name: str, F, Y):
    """``ℓ(f_i, y_i)`` for each row, shape (b,)."""
    if name == "mse":
        return 0.5 * ((F - Y) ** 2).sum(-1)
    if name == "cross":
        return Y.sum(-1) * torch.logsumexp(F, -1) - (Y * F).sum(-1)
    return _logcosh(F - Y).sum(-1)


def loss_grads(name: str, F, Y):
    """``g_i = ∇_f ℓ(f_i, y_i)`` for each row, shape (b, K)."""
    if name == "mse":
        return F - Y
    if name == "cross":
        return Y.sum(-1, keepdim=True) * torch.softmax(F, -1) - Y
    return torch.tanh(F - Y)


def loss_hessians(name: str, F, Y):
    """``Λ_i = ∇²_f ℓ(f_i, y_i)`` for each row, shape (b, K, K)."""
    b, K = F.shape
    if name == "mse":
        return torch.eye(K, dtype=F.dtype, device=F.device).expand(b, K, K).clone()
    if name == "cross":
        s = torch.softmax(F, -1)
        return Y.sum(-1)[:, None, None] * (torch.diag_embed(s) - s[:, :, None] * s[:, None, :])
    return torch.diag_embed(1.0 - torch.tanh(F - Y) ** 2)
