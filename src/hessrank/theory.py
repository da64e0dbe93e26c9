r"""Closed-form rank predictions for deep linear networks (no bias).

With :math:`L` weight matrices, hidden widths :math:`M_1..M_{L-1}`, :math:`M = \sum M_l`,
:math:`r = \mathrm{rank}(\sum_i x_i x_i^\top)`, :math:`K' = K` (mse, cosh) or
:math:`K - 1` (softmax cross-entropy), :math:`s = \min(r, K')` and
:math:`q = \min(r, K', M_1, \dots, M_{L-1})`:

.. math::

    \mathrm{rank}\,H_o = q\,(r + K' - q), \qquad
    \mathrm{rank}\,H_F = 2qM + 2qs - Lq^2, \qquad
    \mathrm{rank}\,H_L = 2qM - Lq^2 + q\,(r + K').

They hold at a generic point for linear networks without bias (``kind = "exact"``).
For biases or non-linear activations no formula is known: the linear formula is
returned as a reference, tagged ``kind = "estimate"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Prediction:
    """Predicted ranks and the quantities they are built from."""

    H_L: int
    H_o: int
    H_F: int
    kind: str  # "exact" or "estimate"
    r: int
    K_eff: int
    q: int
    s: int
    M: int
    L: int

    def to_dict(self) -> dict:
        """The prediction and its ingredients as JSON-ready values."""
        return asdict(self)


def effective_outputs(K: int, loss: str) -> int:
    """``K'``: softmax cross-entropy ignores a common shift of the logits."""
    return K - 1 if loss == "cross" else K


def predict_ranks(*, r: int, K: int, units, loss: str = "mse", activation: str = "linear",
                  bias: bool = False) -> Prediction:
    """Predicted ``rank H_L, H_o, H_F`` for input covariance rank ``r``, ``K`` outputs and
    hidden ``units``; ``kind`` is ``"exact"`` only for linear networks without bias."""
    units = tuple(int(u) for u in units)
    if not units:
        raise ValueError("predict_ranks needs at least one hidden layer")
    K_eff = effective_outputs(int(K), loss)
    L = len(units) + 1
    M = sum(units)
    s = min(r, K_eff)
    q = min(r, K_eff, *units)
    H_o = q * (r + K_eff - q)
    H_F = 2 * q * M + 2 * q * s - L * q * q
    H_L = 2 * q * M - L * q * q + q * (r + K_eff)
    kind = "exact" if activation == "linear" and not bias else "estimate"
    return Prediction(H_L=H_L, H_o=H_o, H_F=H_F, kind=kind, r=int(r), K_eff=K_eff, q=q, s=s, M=M, L=L)
