r"""The JAX front end as a :class:`~hessrank.curvature.interface.CurvatureSource`.

:class:`JaxSource` is a :class:`~hessrank.models.Model`, its loss, its flat θ and the data,
through the builders of :mod:`.dense` and :mod:`.operators`; a PyTorch ``nn.Module`` is the
other front end (``hessrank._torch``). :func:`float64_scope_for` is the float64 scope of JAX
that a measurement of either needs: JAX's where JAX computes, none otherwise.

This module imports no JAX (:class:`JaxSource` imports its builders when used), so the engine
may name it and still measure a PyTorch module without loading JAX.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..matrices import MATRICES
from .interface import CurvatureOperator

if TYPE_CHECKING:
    from ..models import Loss, Model


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
        from .operators import functional_hessian_operator, loss_hessian_operator, outer_product_operator

        build = {"H_L": loss_hessian_operator, "H_o": outer_product_operator, "H_F": functional_hessian_operator}
        return build[name](self.model, self.loss, self.theta, self.X, self.Y, batch_size=self.batch_size,
                           devices=self.devices)

    def factor(self) -> np.ndarray:
        """``A = Λ^{1/2} J`` (:func:`~hessrank.curvature.outer_product_factor`)."""
        from .dense import outer_product_factor

        return outer_product_factor(self.model, self.loss, self.theta, self.X, self.Y, batch_size=self.batch_size)

    def hessians(self, which=MATRICES) -> dict[str, np.ndarray]:
        """The dense matrices named in ``which`` (:func:`~hessrank.curvature.hessians`)."""
        from .dense import hessians

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


def float64_scope_for(source, *, jax_used: bool = False):
    """JAX's float64 scope (:func:`~hessrank.curvature.core.float64_scope`) where a measurement of
    ``source`` computes with JAX: ``source`` a :class:`JaxSource`, or ``jax_used`` (bases on a device
    mesh, spectra); else no scope and no JAX import (a PyTorch module's ranks in host memory)."""
    if not (jax_used or isinstance(source, JaxSource)):
        return contextlib.nullcontext()
    from .core import float64_scope

    return float64_scope()
