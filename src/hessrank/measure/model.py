r"""``hessian_ranks(f, params, X, Y)``: the ranks of H_L, H_o, H_F of any JAX or PyTorch model, block by block.

``f(params, X_batch) -> outputs (b, K)`` over any pytree ``params`` becomes a
:class:`~hessrank.models.FunctionModel` on the flat vector θ; a ``torch.nn.Module``
(with ``params`` None or a dict of named tensors) becomes a PyTorch curvature source
(``hessrank._torch``: products by ``torch.autograd`` on a float64 copy). Either is a
:class:`~hessrank.curvature.CurvatureSource`, and the same
feasibility rule (:func:`~hessrank.measure.plan.plan_method`), the same dense or
matrix-free measurement (:func:`~hessrank.measure.run.measure_model_ranks`), the same
rank rule and certificate as ``hessian-rank run``. Everything runs in a scoped float64
(``jax.enable_x64``): the caller's JAX configuration is as it was afterwards.

The only predictions for an arbitrary model are the trivial bounds
:math:`\operatorname{rank} H_o \le \min(p, nK')` (:math:`H_o = \sum_i J_i^\top
\Lambda_i J_i` and :math:`\operatorname{rank}\Lambda_i \le K'`) and each rank :math:`\le p`,
of kind ``bound``.

A PyTorch module's measurement imports no JAX (its bases stay in host memory unless ``devices``
is given); the JAX pieces here are imported where a JAX model needs them.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .._torch import is_torch_input, torch_source
from ..config import DEFAULT_BATCH_CAP, METHODS, check_loss, check_tolerances
from ..curvature.interface import CurvatureSource
from ..curvature.source import JaxSource, jax_source
from ..errors import ConfigError
from ..linalg import RTOL_SCAN, RankInfo
from ..matrices import H_O_GRAM, MATRICES
from ..theory import effective_outputs
from .blocks import BlockRanks, resolve_blocks
from .engine import measure_source_ranks
from .plan import plan_method
from .report import model_summary, torch_fields
from .results import RankedResult

if TYPE_CHECKING:
    from ..models import Model


@dataclass(repr=False)
class ModelResult(RankedResult):
    """What :func:`hessian_ranks` measured.

    Attributes:
        p, n, K, loss: parameters, samples, outputs and the loss.
        ranks: per matrix (``H_L``, ``H_o``, ``H_F``) a :class:`~hessrank.RankInfo`: rank,
            tolerance, gap at the cut in decades, eigenvalues (or Ritz values).
        bounds: the bounds every model obeys (``rank H_o ≤ min(p, nK')``, each rank ``≤ p``).
        method, method_reason, method_details: dense or matrix-free, why, and per matrix how a
            matrix-free rank was certified.
        blocks: per diagonal block its ranks, counted at the whole matrix's tolerance.
        mode: a PyTorch module's mode when measured, ``train`` or ``eval`` (empty for a JAX model).

    ``summary()`` is its table; ``to_dict()`` has the shape of ``hessian-rank run --json``.
    """

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
    #: the BLAS threads the eigenvalues and the sketch's orthogonalisation ran on
    threads: int | None = None
    #: the devices matrix-free bases were sharded over (0: host memory)
    devices: int = 0
    #: a PyTorch module: the mode it was evaluated in (``train`` or ``eval``); empty for JAX
    mode: str = ""
    #: a PyTorch module: its parameters with ``requires_grad=False``, held fixed (not in θ)
    frozen: tuple[str, ...] = ()

    def how(self, name: str) -> str:
        """How the rank of ``name`` was obtained: ``dense``, ``Gram`` or ``certified sketch``."""
        det = self.method_details.get(name)
        if not det:
            return "Gram" if name == "H_o" and self.h_o == H_O_GRAM else "dense"
        if "residual_bound" in det:
            return "certified sketch" if det.get("certified") else "sketch (not certified)"
        return "Gram" if "Gram" in det.get("how", "") else "dense"

    def summary(self) -> str:
        """The table of ranks: per matrix the rank, its bound, tolerance, gap and how it was
        obtained, what each matrix is, and the method (then the diagonal blocks' table)."""
        return model_summary(self)

    def to_dict(self) -> dict:
        """The JSON form, shaped like ``hessian-rank run --json``."""
        return {
            **self._shared_dict(),
            "K": self.K, "loss": self.loss,
            "predictions": {**self.bounds, "kind": "bound", "kinds": {k: "bound" for k in self.bounds}},
            "how": {k: self.how(k) for k in self.ranks},
            "rank_vs_rtol": {"rtol": list(RTOL_SCAN), **self.rank_vs_rtol()},
            **self._blocks_dict(),
            **torch_fields(self),
        }


def trivial_bounds(p: int, n: int, K: int, loss: str) -> dict[str, int]:
    """Bounds that hold for every model: ``rank H_o ≤ min(p, nK')``, ``rank H_L, H_F ≤ p``."""
    return {"H_L": p, "H_o": min(p, n * effective_outputs(K, loss)), "H_F": p}


def hessian_ranks(f: Callable, params, X, Y, *, loss: str = "mse", method: str = "auto", blocks=None,
                  rtol: float | None = None, atol: float | None = None, batch_size: int | None = None,
                  seed: int = 0, num_classes: int | None = None, threads: int | None = None,
                  devices=None) -> ModelResult:
    """Numerical ranks of H_L, H_o, H_F of the model ``f`` at ``params`` on the data ``X, Y``.

    Args:
        f: ``f(params, X_batch) -> outputs (b, K)``, a pure JAX function; or a ``torch.nn.Module``
            (``module(X_batch) -> (b, K)``), or a ``(module, params)`` pair. A module is measured on a
            float64 copy in the mode it is in (``train()``/``eval()``, recorded in the result),
            its buffers held fixed; the module itself is left as it was.
        params: any pytree of floating-point arrays (float32 is promoted to float64); for a module,
            None (its own parameters) or a dict name -> tensor or array, named as
            ``module.named_parameters()`` names them.
        X: inputs, first axis the n samples (any further shape ``f`` accepts); NumPy arrays, or
            tensors for a module.
        Y: targets (n, K): real values (``mse``, ``cosh``) or class weights/one-hot (``cross``);
            or integer class labels (n,) in ``0..K-1``, one-hot encoded (the same ranks as the
            one-hot targets, for every loss).
        loss: ``mse``, ``cross`` (softmax cross-entropy) or ``cosh`` (log-cosh); summed over samples.
        method: ``auto``, ``dense`` or ``matrix-free`` (the rule of ``hessian-rank run``).
        blocks: ``"leaves"``, ``"layers"`` or a mapping name → list of leaf names (``"conv1/w"``;
            for a module its parameter names, ``"conv1.weight"``, and ``"layers"`` its child modules):
            also the ranks of these diagonal blocks, counted at the whole matrix's tolerance.
        rtol, atol: the rank tolerance (default ``max|λ|·p·eps``).
        batch_size: samples per batch (default ``min(n, 100)``).
        seed: seed of the sketch's random probes.
        num_classes: K for integer labels ``Y`` (default: the largest label + 1).
        threads: BLAS threads for the eigenvalues and the sketch (default: the cores this process
            may use, by its CPU affinity and cgroup quota).
        devices: the JAX devices a matrix-free run shards its bases over and, for a JAX function, splits
            its samples over for the Hessian-vector products (default: every device, or host memory on one
            process of CPUs; a number: the first N). A PyTorch module's bases stay in host memory unless
            ``devices`` is given, and its measurement then imports no JAX.

    Returns:
        a :class:`ModelResult`; ``to_dict()`` has the shape of ``hessian-rank run --json``.

    Raises:
        ConfigError: a bad argument, parameter leaf, label or model output, named in one line.
    """
    if is_torch_input(f, params):
        t0 = time.perf_counter()
        source = model_source(f, params, X, Y, loss=loss, method=method, rtol=rtol, atol=atol,
                              batch_size=batch_size, num_classes=num_classes)
        return _measure_source(source, source, t0, loss=loss, method=method, blocks=blocks, rtol=rtol,
                               atol=atol, seed=seed, threads=threads, devices=devices)
    from ..curvature.core import float64_scope
    from ..models import function_model

    with float64_scope():
        model, theta = function_model(f, params)
        return measure_model(model, theta, X, Y, loss=loss, method=method, blocks=blocks, rtol=rtol, atol=atol,
                             batch_size=batch_size, seed=seed, num_classes=num_classes, threads=threads,
                             devices=devices)


def measure_model(model: Model, theta, X, Y, *, loss: str = "mse", method: str = "auto", blocks=None,
                  rtol: float | None = None, atol: float | None = None, batch_size: int | None = None,
                  seed: int = 0, num_classes: int | None = None, threads: int | None = None,
                  devices=None) -> ModelResult:
    """:func:`hessian_ranks` for a :class:`~hessrank.models.Model` and its flat parameters ``theta``."""
    from ..curvature.core import float64_scope

    t0 = time.perf_counter()
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ConfigError.invalid("seed", seed, "give an integer in 0..2**32-1")
    with float64_scope():
        lossf, theta, X, Y, batch_size = prepare_inputs(model, theta, X, Y, loss=loss, method=method, rtol=rtol,
                                                        atol=atol, batch_size=batch_size, num_classes=num_classes)
        source = jax_source(model, lossf, theta, X, Y, batch_size=batch_size)
        return _measure_source(source, model, t0, loss=loss, method=method, blocks=blocks, rtol=rtol, atol=atol,
                               seed=seed, threads=threads, devices=devices)


def _measure_source(source: CurvatureSource, layout, t0: float, *, loss, method, blocks, rtol, atol,
                    seed, threads=None, devices=None) -> ModelResult:
    """The measurement behind :func:`hessian_ranks` for either front end (``layout`` names the parameters)."""
    resolved = resolve_blocks(layout, blocks)
    p, n, K = source.p, source.n, source.K
    plan = plan_method(method, p, n, K, threads=threads, devices=devices, jax_devices=isinstance(source, JaxSource))
    ranks, timings, details, block_ranks = measure_source_ranks(plan, source, rtol=rtol, atol=atol, seed=seed,
                                                                blocks=resolved)
    return ModelResult(p=p, n=n, K=K, loss=loss, ranks=ranks, method=plan.method, method_reason=plan.reason,
                       method_details=details, blocks=block_ranks, bounds=trivial_bounds(p, n, K, loss),
                       timings=timings, seconds=time.perf_counter() - t0, h_o=plan.h_o,
                       threads=plan.threads, devices=plan.devices, mode=getattr(source, "mode", ""),
                       frozen=getattr(source, "frozen", ()))


def model_source(f, params, X, Y, *, loss: str = "mse", method: str = "auto", rtol=None, atol=None,
                 batch_size: int | None = None, num_classes: int | None = None) -> CurvatureSource:
    """The :class:`~hessrank.curvature.CurvatureSource` of a JAX ``f(params, X)`` or a PyTorch
    module (or ``(module, params)`` pair) on ``X, Y``, after the checks of :func:`hessian_ranks`.
    Call a JAX model's in a float64 scope (:func:`_model_scope`)."""
    if not is_torch_input(f, params):
        from ..models import function_model

        model, theta = function_model(f, params)
        lossf, theta, X, Y, batch_size = prepare_inputs(model, theta, X, Y, loss=loss, method=method, rtol=rtol,
                                                        atol=atol, batch_size=batch_size, num_classes=num_classes)
        return jax_source(model, lossf, theta, X, Y, batch_size=batch_size)
    _, X, Y, batch_size = check_settings(_tensor_to_array(X), _tensor_to_array(Y), loss=loss, method=method,
                                         rtol=rtol, atol=atol, batch_size=batch_size, num_classes=num_classes)
    return torch_source(f, params, X, Y, loss=loss, batch_size=batch_size)


def as_linear_operator(f, params, X, Y, *, matrix: str = "H_L", loss: str = "mse",
                       batch_size: int | None = None):
    """``H_L``, ``H_o`` or ``H_F`` of a JAX model or PyTorch module (the arguments of
    :func:`hessian_ranks`) as a ``scipy.sparse.linalg.LinearOperator`` of shape (p, p), float64:
    for ``scipy.sparse.linalg.eigsh`` and other tools. Each product runs the front end's
    Hessian-vector products in float64.

    Raises:
        ConfigError: a bad argument (``matrix`` not one of H_L, H_o, H_F; the rest as :func:`hessian_ranks`).
    """
    if matrix not in MATRICES:
        raise ConfigError.invalid("matrix", matrix, f"not one of {', '.join(MATRICES)}")
    with _model_scope(f, params):
        source = model_source(f, params, X, Y, loss=loss, batch_size=batch_size)
        return source.operator(matrix).as_linear_operator()


def _model_scope(f, params):
    """JAX's float64 scope for a JAX model; none for a PyTorch module (whose products import no JAX)."""
    if is_torch_input(f, params):
        return contextlib.nullcontext()
    from ..curvature.core import float64_scope

    return float64_scope()


def _tensor_to_array(a):
    """A tensor as a NumPy array of its dtype (integer labels stay integers); anything else as it is."""
    if type(a).__module__.startswith("torch") and hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return a


def prepare_inputs(model: Model, theta, X, Y, *, loss: str, method: str, rtol, atol, batch_size,
                   num_classes: int | None = None):
    """Check the arguments of :func:`hessian_ranks` (one line naming the first bad one) and the
    model's outputs on ``X``: ``(loss, theta, X, Y, batch_size)`` in float64. Call in a float64 scope."""
    import jax.numpy as jnp

    from ..models import get_loss
    from ..models.function import check_outputs

    loss, X, Y, batch_size = check_settings(X, Y, loss=loss, method=method, rtol=rtol, atol=atol,
                                            batch_size=batch_size, num_classes=num_classes)
    lossf = get_loss(loss)
    theta = jnp.asarray(theta, dtype=jnp.float64)
    if theta.shape != (model.num_params,):
        raise ConfigError.invalid("theta", theta.shape, f"need a flat vector of p = {model.num_params}",
                                  quoted=False)
    check_outputs(model, theta, X, Y.shape[1], batch_size)
    return lossf, theta, X, Y, batch_size


def check_settings(X, Y, *, loss: str, method: str, rtol, atol, batch_size, num_classes: int | None = None):
    """Check the settings and data of :func:`hessian_ranks` (one line naming the first bad one):
    ``(loss, X, Y, batch_size)``, the loss's name and the data as float64 arrays."""
    check_loss(loss)
    if not isinstance(method, str) or method not in METHODS:
        raise ConfigError.invalid("method", method, f"not one of {', '.join(METHODS)}")
    check_tolerances(rtol, atol)
    X, Y = _check_data(X, Y, loss, num_classes)
    n, K = Y.shape
    if batch_size is None:
        batch_size = min(n, DEFAULT_BATCH_CAP)
    elif isinstance(batch_size, bool) or not (isinstance(batch_size, int | np.integer) and 1 <= batch_size <= n):
        raise ConfigError.invalid("batch_size", batch_size, f"give an integer in 1..{n} (n = {n} samples)")
    return loss, X, Y, int(batch_size)


def one_hot_labels(Y, num_classes: int | None = None) -> np.ndarray:
    """Integer class labels ``Y`` (n,) as one-hot targets (n, K), ``K = num_classes`` or the
    largest label + 1; ``Y`` of any other form is returned as it is. Raises
    :class:`ConfigError` naming ``Y`` (a label outside ``0..K-1``) or ``num_classes``."""
    labels = np.asarray(Y) if isinstance(Y, np.ndarray | list | tuple) or _is_jax_array(Y) else Y
    if not (isinstance(labels, np.ndarray) and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer)):
        if num_classes is not None and np.ndim(Y) == 2 and np.shape(Y)[1] != num_classes:
            raise ConfigError.invalid("num_classes", num_classes, f"the targets Y have K = {np.shape(Y)[1]} "
                                                                  "columns", quoted=False)
        return Y
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer)
                                    or num_classes < 1):
        raise ConfigError.invalid("num_classes", num_classes, "give the number of classes K, an integer >= 1")
    if labels.size and labels.min() < 0:
        raise ConfigError.invalid("Y", int(labels.min()), "class labels must be in 0..K-1 (found a negative "
                                                          "label)", quoted=False)
    K = int(num_classes) if num_classes is not None else (int(labels.max()) + 1 if labels.size else 1)
    if labels.size and labels.max() >= K:
        raise ConfigError.invalid("Y", int(labels.max()), f"class labels must be in 0..K-1 with K = num_classes "
                                                          f"= {K}", quoted=False)
    out = np.zeros((labels.size, K))
    out[np.arange(labels.size), labels] = 1.0
    return out


def _is_jax_array(a) -> bool:
    """Whether ``a`` is a JAX array (one exists only once JAX is imported: asked without importing it)."""
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(a, jax.Array)


def _check_data(X, Y, loss, num_classes=None):
    for name, value in (("X", X), ("Y", Y)):
        if np.iscomplexobj(value):
            raise ConfigError.about(name, "complex values: ranks are defined here for real data; give the real "
                                          "and imaginary parts as separate real features")
    Y = one_hot_labels(Y, num_classes)
    arrays = {}
    for name, value in (("X", X), ("Y", Y)):
        try:
            arrays[name] = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            what = "inputs" if name == "X" else "targets"
            raise ConfigError.about(name, f"{what} must be a numeric array ({err})") from None
    X, Y = arrays["X"], arrays["Y"]
    if X.ndim < 1 or X.shape[0] < 1:
        raise ConfigError.invalid("X", X.shape, "need at least one sample along the first axis", quoted=False)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ConfigError.invalid("Y", Y.shape, f"need targets of shape (n, K) or integer class labels (n,) with "
                                                f"n = {X.shape[0]}", quoted=False)
    for name, value in (("X", X), ("Y", Y)):
        if not np.all(np.isfinite(value)):
            bad = np.argwhere(~np.isfinite(value))[0]
            raise ConfigError.about(name, f"{'inputs' if name == 'X' else 'targets'} must be finite: "
                                          f"{value[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    if loss == "cross" and Y.shape[1] < 2:
        raise ConfigError.invalid("loss", loss, "softmax cross-entropy needs K >= 2 outputs (with one the loss "
                                                "is constant)")
    return X, Y


