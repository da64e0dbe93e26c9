r"""What the engine needs from a front end: one network's curvature on one data set.

The rank rule, the dense/matrix-free plan, the certified sketch, the blocks and the
spectra (:mod:`hessrank.measure`) never see a network; they see a
:class:`CurvatureSource`, which supplies for :math:`\theta \in \mathbb{R}^p`, ``n``
samples and ``K`` outputs:

* ``operator(name)``: :math:`H_L`, :math:`H_o` or :math:`H_F` as a
  :class:`~hessrank.curvature.CurvatureOperator` (rows :math:`V \mapsto V H`);
* ``factor()``: :math:`A = \Lambda^{1/2} J` (nK×p), with :math:`H_o = A^\top A`;
* ``hessians(which)``: the dense p×p matrices named in ``which``;

:class:`JaxSource` is the JAX front end (a :class:`~hessrank.models.Model` and its flat
θ, through the builders of :mod:`.dense` and :mod:`.operators`); a PyTorch
``nn.Module`` is another (``hessrank._torch``). Either's operators become SciPy
``LinearOperator`` objects by :meth:`CurvatureOperator.as_linear_operator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..models import Loss, Model
from .dense import MATRICES, hessians, outer_product_factor
from .operators import CurvatureOperator, functional_hessian_operator, loss_hessian_operator, outer_product_operator


@runtime_checkable
class CurvatureSource(Protocol):
    """A network's H_L, H_o, H_F on one data set, as operators, a factor and dense matrices."""

    @property
    def p(self) -> int:
        """Number of parameters."""
        ...

    @property
    def n(self) -> int:
        """Number of samples."""
        ...

    @property
    def K(self) -> int:
        """Outputs per sample."""
        ...

    def operator(self, name: str) -> CurvatureOperator:
        """``H_L``, ``H_o`` or ``H_F`` as an operator: rows ``V`` (b, p) -> rows of ``V H``."""
        ...

    def factor(self) -> np.ndarray:
        """``A = Λ^{1/2} J``, shape (nK, p), rows sample by sample: ``H_o = AᵀA``."""
        ...

    def hessians(self, which=MATRICES) -> dict[str, np.ndarray]:
        """The dense p×p matrices named in ``which`` (a subset of H_L, H_o, H_F)."""
        ...


@dataclass(frozen=True)
class JaxSource:
    """The JAX front end: ``model`` (a :class:`~hessrank.models.Model`), ``loss``, flat ``theta``
    and float64 data ``X, Y``, batched by ``batch_size`` (None: one batch); ``devices``: the JAX
    devices its operators split the samples over (:mod:`.operators`; empty: the default device)."""

    model: Model
    loss: Loss
    theta: object
    X: np.ndarray
    Y: np.ndarray
    batch_size: int | None = None
    devices: tuple = ()

    @property
    def p(self) -> int:
        """Number of parameters."""
        return int(self.model.num_params)

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.X.shape[0])

    @property
    def K(self) -> int:
        """Outputs per sample."""
        return int(self.Y.shape[1])

    def operator(self, name: str) -> CurvatureOperator:
        """``H_L``, ``H_o`` or ``H_F`` as an operator (:mod:`.operators`)."""
        build = {"H_L": loss_hessian_operator, "H_o": outer_product_operator, "H_F": functional_hessian_operator}
        return build[name](self.model, self.loss, self.theta, self.X, self.Y, batch_size=self.batch_size,
                           devices=self.devices)

    def factor(self) -> np.ndarray:
        """``A = Λ^{1/2} J`` (:func:`~hessrank.curvature.outer_product_factor`)."""
        return outer_product_factor(self.model, self.loss, self.theta, self.X, self.Y, batch_size=self.batch_size)

    def hessians(self, which=MATRICES) -> dict[str, np.ndarray]:
        """The dense matrices named in ``which`` (:func:`~hessrank.curvature.hessians`)."""
        return hessians(self.model, self.loss, self.theta, self.X, self.Y, batch_size=self.batch_size, which=which)

    def samples(self, index) -> JaxSource:
        """The same network on the samples ``X[index], Y[index]`` only (a process's share of a sum)."""
        X, Y = self.X[index], self.Y[index]
        batch = None if self.batch_size is None else max(1, min(int(self.batch_size), X.shape[0]))
        return JaxSource(self.model, self.loss, self.theta, X, Y, batch, self.devices)

    def on_devices(self, devices) -> JaxSource:
        """The same source whose operators split the samples over ``devices`` (a sequence of JAX
        devices, each its contiguous share; θ replicated, the devices' products summed)."""
        return JaxSource(self.model, self.loss, self.theta, self.X, self.Y, self.batch_size, tuple(devices))


def jax_source(model: Model, loss: Loss, theta, X, Y, *, batch_size: int | None = None) -> JaxSource:
    """A :class:`JaxSource` with ``X, Y`` as float64 NumPy arrays."""
    return JaxSource(model, loss, theta, np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64),
                     batch_size)

