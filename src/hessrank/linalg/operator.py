r"""A symmetric matrix known only through its products: :math:`V \mapsto V H`.

The matrix-free engine (the certified sketch, traces, stochastic Lanczos quadrature) sees a
p×p symmetric matrix :math:`H` only through ``operator(V)``: the rows of :math:`V H` for a
block of ``b`` vectors stored as the rows of a (b, p) array ``V`` (for a symmetric
:math:`H`, :math:`V H = (H V^\top)^\top`). Any function with that contract becomes an
operator through :func:`as_operator`: a NumPy function (``lambda V: V @ A``), a JAX
function (``jax.vmap`` of a Hessian-vector product), or the curvature operators of
:mod:`hessrank.curvature`. Outputs are checked (shape, finite values) and converted to
float64 NumPy arrays, the form the engine computes in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError


@dataclass(frozen=True, eq=False)
class SymmetricOperator:
    """A symmetric ``p``×``p`` matrix known through ``matmat``: (b, p) rows ``V`` -> rows of ``V H``.

    Build one with :func:`hessrank.as_operator` (or pass a plain function and ``p=`` to
    :func:`hessrank.sketch_rank` / :func:`hessrank.operator_spectrum`, which wrap it).
    Calling the operator checks the output of ``matmat``: shape (b, p), finite values; it
    is returned as a writable float64 NumPy array of its own (copied when ``matmat`` returns
    a read-only buffer, such as a JAX array's, or memory shared with ``V``).

    Attributes:
        p: the size of the matrix.
        matmat: the user's function ``V (b, p) -> V @ H (b, p)``, NumPy or JAX.
        name: what the matrix is called in messages and results.
    """

    p: int
    matmat: Callable
    name: str = "H"

    def __call__(self, V) -> np.ndarray:
        """The rows of ``V H`` for the rows of ``V`` (shape (b, p)), float64 NumPy."""
        V = np.asarray(V, dtype=np.float64)
        if V.ndim != 2 or V.shape[1] != self.p:
            raise ConfigError.invalid("V", V.shape, f"need rows of length p = {self.p}: shape (b, {self.p})",
                                      quoted=False)
        try:
            out = np.asarray(self.matmat(V), dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ConfigError.about("matmat", f"returned something that is not a numeric array ({err})") from None
        if out.shape != V.shape:
            raise ConfigError.invalid("matmat", out.shape, f"returned shape {out.shape} for rows of shape {V.shape}: "
                                                           f"need V @ H of the same shape (b, p = {self.p})",
                                      quoted=False)
        if not np.isfinite(out).all():
            bad = int(np.count_nonzero(~np.isfinite(out)))
            raise DataError.about("matmat", f"returned {bad} NaN or infinite value(s) of {out.size}: no rank "
                                            "is defined")
        # the engine overwrites products in place: never hand it a read-only buffer (a JAX
        # array's view) nor the caller's own V (``lambda V: V``)
        if not out.flags.writeable or not out.flags.c_contiguous or np.may_share_memory(out, V):
            out = np.array(out, order="C")
        return out

    def __repr__(self) -> str:
        return f"SymmetricOperator(p={self.p}, name={self.name!r})"


def as_operator(matmat, *, p: int | None = None, name: str | None = None):
    """``matmat`` as an operator the matrix-free engine takes.

    Args:
        matmat: a function ``V (b, p) -> V @ H`` for a symmetric p×p matrix ``H`` (NumPy or
            JAX arrays in and out), or an operator already (anything callable with a ``p``
            attribute, e.g. a :class:`SymmetricOperator` or a curvature operator), which is
            returned as it is.
        p: the size of ``H``; required for a plain function.
        name: the matrix's name in messages and results (default ``"H"``).

    Returns:
        a :class:`SymmetricOperator` (or ``matmat`` itself when it is an operator already).

    Raises:
        ConfigError: ``matmat`` not callable, ``p`` missing or not a positive integer.

    Calling the operator raises :class:`~hessrank.ConfigError` for an output of the wrong
    shape and :class:`~hessrank.DataError` for NaN or infinite values, naming ``matmat``.
    """
    if callable(matmat) and hasattr(matmat, "p"):
        if p is not None and int(p) != int(matmat.p):
            raise ConfigError.invalid("p", p, f"the operator has p = {matmat.p}")
        return matmat
    if not callable(matmat):
        raise ConfigError.invalid("matmat", type(matmat).__name__, "not callable: give a function V (b, p) -> V @ H",
                                  quoted=False)
    if p is None:
        raise ConfigError.about("p", "missing: a plain function V -> V @ H needs the size p of H (p=...)")
    if isinstance(p, bool) or not isinstance(p, int | np.integer) or p < 1:
        raise ConfigError.invalid("p", p, "give the size of H, an integer >= 1")
    return SymmetricOperator(p=int(p), matmat=matmat, name=name or "H")
