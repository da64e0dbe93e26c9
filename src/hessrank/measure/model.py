r"""``hessian_ranks(f, params, X, Y)``: the ranks of H_L, H_o, H_F of any JAX model, block by block.

``f(params, X_batch) -> outputs (b, K)`` over any pytree ``params`` becomes a
:class:`~hessrank.models.FunctionModel` on the flat vector θ; then the same
feasibility rule (:func:`~hessrank.measure.plan.plan_method`), the same dense or
matrix-free measurement (:func:`~hessrank.measure.run.measure_model_ranks`), the same
rank rule and certificate as ``hessian-rank run``. Everything runs in a scoped float64
(``jax.enable_x64``): the caller's JAX configuration is as it was afterwards.

The only predictions for an arbitrary model are the trivial bounds
:math:`\operatorname{rank} H_o \le \min(p, nK')` (:math:`H_o = \sum_i J_i^\top
\Lambda_i J_i` and :math:`\operatorname{rank}\Lambda_i \le K'`) and each rank :math:`\le p`,
of kind ``bound``.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import numpy as np

from ..config import METHODS
from ..curvature import float64_scope
from ..errors import ConfigError
from ..linalg import RTOL_SCAN, RankInfo, ranks_at_rtols
from ..matrices import H_O_GRAM, MATRICES
from ..models import Model, function_model, get_loss
from ..models.function import check_outputs
from ..theory import effective_outputs
from .blocks import BlockRanks, resolve_blocks
from .plan import plan_method
from .run import measure_model_ranks


@dataclass
class ModelResult:
    """What :func:`hessian_ranks` measured: per matrix a :class:`~hessrank.RankInfo` (rank,
    tolerance, gap, eigenvalues or Ritz values) and how it was obtained; per block the same."""

    p: int
    n: int
    K: int
    loss: str
    ranks: dict[str, RankInfo]
    method: str
    method_reason: str
    method_details: dict[str, dict] = field(default_factory=dict)
    blocks: dict[str, BlockRanks] = field(default_factory=dict)
    bounds: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    #: how H_o was ranked by a dense run: ``gram`` (nK×nK Gram matrix) or ``square`` (p×p)
    h_o: str = ""

    @property
    def uncertified(self) -> tuple[str, ...]:
        """Matrices whose matrix-free rank was not certified (a lower bound only)."""
        return tuple(k for k in MATRICES if self.method_details.get(k, {}).get("certified") is False)

    def how(self, name: str) -> str:
        """How the rank of ``name`` was obtained: ``dense``, ``Gram`` or ``certified sketch``."""
        det = self.method_details.get(name)
        if not det:
            return "Gram" if name == "H_o" and self.h_o == H_O_GRAM else "dense"
        if "residual_bound" in det:
            return "certified sketch" if det.get("certified") else "sketch (not certified)"
        return "Gram" if "Gram" in det.get("how", "") else "dense"

    def to_dict(self) -> dict:
        """The JSON form, shaped like ``hessian-rank run --json``."""
        resolved = {k: 2 * float(self.method_details.get(k, {}).get("residual_bound", 0.0)) for k in self.ranks}
        out = {
            "p": self.p, "n": self.n, "K": self.K, "loss": self.loss,
            "ranks": {k: v.rank for k, v in self.ranks.items()},
            "predictions": {**self.bounds, "kind": "bound", "kinds": {k: "bound" for k in self.bounds}},
            "tolerance": {k: v.tol for k, v in self.ranks.items()},
            "gap_decades": {k: _finite_or_none(v.gap_decades) for k, v in self.ranks.items()},
            "how": {k: self.how(k) for k in self.ranks},
            "seconds": self.seconds, "timings": self.timings,
            "method": self.method, "method_reason": self.method_reason, "method_details": self.method_details,
            "certified": not self.uncertified,
            "rank_vs_rtol": {"rtol": list(RTOL_SCAN),
                             **{k: ranks_at_rtols(v, RTOL_SCAN, resolved_below=resolved[k])
                                for k, v in self.ranks.items()}},
        }
        if self.blocks:
            out["blocks"] = {name: b.to_dict() for name, b in self.blocks.items()}
        return out


def _finite_or_none(x):
    return None if x is None or not math.isfinite(x) else float(x)


def trivial_bounds(p: int, n: int, K: int, loss: str) -> dict[str, int]:
    """Bounds that hold for every model: ``rank H_o ≤ min(p, nK')``, ``rank H_L, H_F ≤ p``."""
    return {"H_L": p, "H_o": min(p, n * effective_outputs(K, loss)), "H_F": p}


def hessian_ranks(f: Callable, params, X, Y, *, loss: str = "mse", method: str = "auto", blocks=None,
                  rtol: float | None = None, atol: float | None = None, batch_size: int | None = None,
                  seed: int = 0) -> ModelResult:
    """Numerical ranks of H_L, H_o, H_F of the model ``f`` at ``params`` on the data ``X, Y``.

    Args:
        f: ``f(params, X_batch) -> outputs (b, K)``, a pure JAX function.
        params: any pytree of floating-point arrays (float32 is promoted to float64).
        X: inputs, first axis the n samples (any further shape ``f`` accepts).
        Y: targets (n, K): real values (``mse``, ``cosh``) or class weights/one-hot (``cross``).
        loss: ``mse``, ``cross`` (softmax cross-entropy) or ``cosh`` (log-cosh); summed over samples.
        method: ``auto``, ``dense`` or ``matrix-free`` (the rule of ``hessian-rank run``).
        blocks: ``"leaves"``, ``"layers"`` or a mapping name → list of leaf names (``"conv1/w"``):
            also the ranks of these diagonal blocks, counted at the whole matrix's tolerance.
        rtol, atol: the rank tolerance (default ``max|λ|·p·eps``).
        batch_size: samples per batch (default ``min(n, 100)``).
        seed: seed of the sketch's random probes.

    Returns:
        a :class:`ModelResult`; ``to_dict()`` has the shape of ``hessian-rank run --json``.

    Raises:
        ConfigError: a bad argument, parameter leaf or model output, named in one line.
    """
    with float64_scope():
        model, theta = function_model(f, params)
        return measure_model(model, theta, X, Y, loss=loss, method=method, blocks=blocks, rtol=rtol, atol=atol,
                             batch_size=batch_size, seed=seed)


def measure_model(model: Model, theta, X, Y, *, loss: str = "mse", method: str = "auto", blocks=None,
                  rtol: float | None = None, atol: float | None = None, batch_size: int | None = None,
                  seed: int = 0) -> ModelResult:
    """:func:`hessian_ranks` for a :class:`~hessrank.models.Model` and its flat parameters ``theta``."""
    t0 = time.perf_counter()
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ConfigError.invalid("seed", seed, "give an integer in 0..2**32-1")
    with float64_scope():
        lossf, theta, X, Y, batch_size = prepare_inputs(model, theta, X, Y, loss=loss, method=method, rtol=rtol,
                                                        atol=atol, batch_size=batch_size)
        n, K = Y.shape
        resolved = resolve_blocks(model, blocks)
        p = model.num_params
        plan = plan_method(method, p, n, K)
        ranks, timings, details, block_ranks = measure_model_ranks(
            plan, model, lossf, theta, X, Y, batch_size=batch_size, rtol=rtol, atol=atol, seed=seed,
            blocks=resolved)
    return ModelResult(p=p, n=n, K=K, loss=loss, ranks=ranks, method=plan.method, method_reason=plan.reason,
                       method_details=details, blocks=block_ranks, bounds=trivial_bounds(p, n, K, loss),
                       timings=timings, seconds=time.perf_counter() - t0, h_o=plan.h_o)


def prepare_inputs(model: Model, theta, X, Y, *, loss: str, method: str, rtol, atol, batch_size):
    """Check the arguments of :func:`hessian_ranks` (one line naming the first bad one) and the
    model's outputs on ``X``: ``(loss, theta, X, Y, batch_size)`` in float64. Call in a float64 scope."""
    lossf = get_loss(loss)
    if not isinstance(method, str) or method not in METHODS:
        raise ConfigError.invalid("method", method, f"not one of {', '.join(METHODS)}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                  or not (math.isfinite(value) and value >= 0)):
            raise ConfigError.invalid(name, value, "give a finite tolerance >= 0 (a number)")
    X, Y = _check_data(X, Y, loss)
    n, K = Y.shape
    if batch_size is None:
        batch_size = min(n, 100)
    elif isinstance(batch_size, bool) or not (isinstance(batch_size, int | np.integer) and 1 <= batch_size <= n):
        raise ConfigError.invalid("batch_size", batch_size, f"give an integer in 1..{n} (n = {n} samples)")
    theta = jax.numpy.asarray(theta, dtype=jax.numpy.float64)
    if theta.shape != (model.num_params,):
        raise ConfigError.invalid("theta", theta.shape, f"need a flat vector of p = {model.num_params}",
                                  quoted=False)
    check_outputs(model, theta, X, K, int(batch_size))
    return lossf, theta, X, Y, int(batch_size)


def _check_data(X, Y, loss):
    for name, value in (("X", X), ("Y", Y)):
        if np.iscomplexobj(value):
            raise ConfigError.about(name, "complex values: ranks are defined here for real data; give the real "
                                          "and imaginary parts as separate real features")
    try:
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ConfigError.about("X", f"inputs and targets must be numeric arrays ({err})") from None
    if X.ndim < 1 or X.shape[0] < 1:
        raise ConfigError.invalid("X", X.shape, "need at least one sample along the first axis", quoted=False)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ConfigError.invalid("Y", Y.shape, f"need targets of shape (n, K) with n = {X.shape[0]}", quoted=False)
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ConfigError.about("X", "inputs and targets must be finite (found NaN or inf)")
    if loss == "cross" and Y.shape[1] < 2:
        raise ConfigError.invalid("loss", loss, "softmax cross-entropy needs K >= 2 outputs (with one the loss "
                                                "is constant)")
    return X, Y


