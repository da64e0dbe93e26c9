r"""What the engine needs from a front end, and how it sees a matrix: the types both front ends share.

A :class:`CurvatureSource` supplies, for :math:`\theta \in \mathbb{R}^p`, ``n`` samples and
``K`` outputs, H_L, H_o, H_F as :class:`CurvatureOperator` objects (rows :math:`V \mapsto V H`),
the factor :math:`A = \Lambda^{1/2} J` and the dense matrices (:mod:`.source` has the JAX
front end; ``hessrank._torch`` the PyTorch one). This module imports no JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ..matrices import MATRICES


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
class CurvatureOperator:
    """A symmetric p×p matrix known only through ``matmat``: (b, p) rows ``V`` -> rows of ``V H``."""

    name: str
    p: int
    matmat: Callable[[np.ndarray], np.ndarray]
    #: ``(V, out) -> out``: the same rows written into ``out`` (b×p), where the operator can
    matmat_into: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    #: the data its products run over as placed (JAX arrays: stacked batches of inputs, targets and
    #: weights; split over the devices by samples, leading axis one share per device, when it has
    #: several); empty for an operator that is not a JAX program over data
    data: tuple = field(default=(), repr=False, compare=False)

    def __call__(self, V) -> np.ndarray:
        """Rows of ``V H`` for the rows of ``V`` (shape (b, p))."""
        return self.matmat(V)

    def into(self, V, out: np.ndarray) -> np.ndarray:
        """Rows of ``V H``, written into ``out`` (shape (b, p), float64, C-contiguous) where the
        operator can and returned: a caller that reuses ``out`` avoids a fresh b×p array (page
        faults) per call. Operators without :attr:`matmat_into` return a new array."""
        if self.matmat_into is None:
            return self.matmat(V)
        return self.matmat_into(V, out)

    def as_linear_operator(self):
        r"""This matrix as a ``scipy.sparse.linalg.LinearOperator`` of shape (p, p), float64 (for
        ``scipy.sparse.linalg.eigsh`` and other tools). ``H`` is symmetric, so
        :math:`H X = (X^\top H)^\top`: the columns of ``X`` go in as rows; ``rmatvec`` is ``matvec``."""
        from scipy.sparse.linalg import LinearOperator

        def matmat(X):
            X = np.asarray(X, dtype=np.float64)
            return np.ascontiguousarray(self.matmat(np.ascontiguousarray(X.T)).T)

        def matvec(x):
            return self.matmat(np.asarray(x, dtype=np.float64).reshape(1, -1))[0]

        return LinearOperator((self.p, self.p), matvec=matvec, rmatvec=matvec, matmat=matmat, rmatmat=matmat,
                              dtype=np.float64)


def batch_rows(n: int, batch_size: int | None) -> int:
    """Samples per batch: ``batch_size``, or all ``n`` samples in one batch."""
    return n if batch_size is None else int(batch_size)
