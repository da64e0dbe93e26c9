"""``run(config) -> Result``: the one place that ties data, model, curvature, rank and theory."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from .._torch import load_torch_checkpoint
from ..config import RunConfig
from ..curvature import CurvatureSource, in_float64, jax_source
from ..data import Dataset, expected_shape, load_dataset
from ..errors import ConfigError
from ..linalg import (
    RTOL_SCAN,
    RankInfo,
    covariance_rank,
)
from ..models import MLP, Model, get_loss
from ..models.function import check_outputs
from ..models.params import flat_params, load_arrays
from ..theory import Deficiency, Prediction, at_point, explain_deficiency, predict_ranks, trivial_prediction
from ..theory_cnn import CNNDataRanks, cnn_data_ranks, explain_cnn_deficiency, predict_cnn_ranks
from .blocks import Block, BlockRanks, resolve_blocks
from .engine import measure_source_ranks
from .network import build_network, network_label
from .plan import MethodPlan, expected_basis, plan_before_loading, plan_method
from .provenance import peak_rss_bytes, provenance
from .report import run_summary, torch_fields
from .residuals import residual_state
from .results import RankedResult


@dataclass(repr=False)
class Result(RankedResult):
    """What :func:`run` measured, predicted and how.

    Attributes:
        config: the :class:`~hessrank.RunConfig`, with ``n`` and ``dim`` as the data resolved them.
        p, n, d, r: parameters, samples, input dimension, ``rank Σ xxᵀ``.
        ranks: per matrix (``H_L``, ``H_o``, ``H_F``) a :class:`~hessrank.RankInfo`: rank,
            tolerance, gap at the cut in decades, eigenvalues.
        prediction: the :class:`~hessrank.Prediction` (exact, bound or estimate per matrix).
        method, method_reason: ``dense`` or ``matrix-free``, and why.
        method_details: per matrix, how a matrix-free rank was certified.
        blocks: per diagonal block (``run(config, blocks=...)``) its ranks.

    ``summary()`` is the table ``hessian-rank run`` prints; ``to_dict()`` its ``--json``.
    """

    config: RunConfig
    p: int
    n: int
    d: int
    r: int
    ranks: dict[str, RankInfo]
    prediction: Prediction
    seconds: float
    method: str = "dense"
    method_reason: str = ""
    dataset_source: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    method_details: dict[str, dict] = field(default_factory=dict)
    #: peak resident memory of the process and package versions/machine, captured when the run ended
    peak_rss_bytes: int = 0
    provenance: dict = field(default_factory=dict)
    #: per-block ranks (``run(config, blocks=...)``), in the JSON only when asked for
    blocks: dict[str, BlockRanks] = field(default_factory=dict)
    #: the BLAS threads the eigenvalues and the sketch's orthogonalisation ran on
    threads: int | None = None
    #: the devices matrix-free bases were sharded over (0: host memory)
    devices: int = 0
    #: the built-in CNN: the data's patch ranks its predictions use
    cnn_ranks: CNNDataRanks | None = None
    #: a PyTorch module: the mode it was evaluated in (``train`` or ``eval``); empty for JAX
    mode: str = ""
    #: a PyTorch module: its parameters with ``requires_grad=False``, held fixed (not in θ)
    frozen: tuple[str, ...] = ()

    def explain(self) -> dict[str, Deficiency]:
        """``p - rank`` of each measured matrix split into the parts the theory accounts
        for and the unexplained rest (:func:`~hessrank.theory.explain_deficiency`)."""
        c = self.config
        if c.network == "cnn" and self.cnn_ranks is not None:
            return explain_cnn_deficiency(ranks={k: v.rank for k, v in self.ranks.items()},
                                          prediction=self.prediction, d=self.d, K=c.K, conv=c.conv_layers, n=self.n,
                                          loss=c.loss, activation=c.activation, bias=c.bias, stride=c.stride,
                                          padding=c.padding, pool=c.pool, data_ranks=self.cnn_ranks)
        if c.network != "mlp":  # no theory of this network's null spaces
            return {}
        return explain_deficiency(ranks={k: v.rank for k, v in self.ranks.items()}, r=self.r, K=c.K,
                                  units=c.units, d=self.d, n=self.n, loss=c.loss, activation=c.activation,
                                  bias=c.bias, r_affine=self.prediction.r_affine)

    @property
    def spectra(self) -> dict[str, np.ndarray]:
        """Eigenvalues of each matrix, sorted by decreasing magnitude."""
        return {k: v.eigenvalues for k, v in self.ranks.items()}

    def summary(self) -> str:
        """The table ``hessian-rank run`` prints: data, network, theory, per matrix the rank,
        prediction, kind, tolerance and gap, what each matrix and symbol is, and the method
        (then the diagonal blocks' table, with blocks)."""
        return run_summary(self)

    def to_dict(self) -> dict:
        """The JSON form (``hessian-rank run --json``); the same dict every time it is called."""
        out = {
            **self._shared_dict(),
            "d": self.d,
            "r": self.r,
            "config": self.config.to_dict(),
            "predictions": {
                "H_L": self.prediction.H_L,
                "H_o": self.prediction.H_o,
                "H_F": self.prediction.H_F,
                "kind": self.prediction.kind,
            },
            "kinds": dict(self.prediction.kinds),
            "bounds": dict(self.prediction.bounds),
            "explain": {k: {"deficiency": e.deficiency, "parts": dict(e.parts), "unexplained": e.unexplained}
                        for k, e in self.explain().items()},
            "theory": self.prediction.to_dict(),
            "peak_rss_bytes": self.peak_rss_bytes,
            "rank_vs_rtol": {"rtol": list(RTOL_SCAN), **self.rank_vs_rtol()},
            "dataset_source": self.dataset_source,
            "provenance": self.provenance,
        }
        if self.config.network != "mlp":
            out["model"] = network_label(self.config, self.d)
        out.update(torch_fields(self))
        return {**out, **self._blocks_dict()}


def build(config: RunConfig) -> tuple[Dataset, Model, np.ndarray]:
    """Validate ``config`` and make its data, network (the MLP, the CNN or a user's model,
    :func:`~hessrank.measure.network.build_network`) and initial parameters; a user's
    model whose outputs on the data are not finite (n, K) arrays is refused naming ``model``."""
    config.validate()
    plan_before_loading(config, **expected_shape(config))  # sizes first: nothing is allocated yet
    data = load_dataset(config)
    if config.batch_size is not None and config.batch_size > data.n:
        raise ConfigError.invalid("batch_size", config.batch_size,
                                  f"larger than the sample size n = {data.n}; use 1..{data.n}")
    if config.network == "mlp":
        plan_method(config.method, MLP(widths=(data.d, *config.units, data.K)).num_params, data.n, data.K)
    model, theta = build_network(config, data.d, data.K)  # the MLP's p was planned before θ exists
    plan_method(config.method, model.num_params, data.n, data.K)
    if config.network != "mlp" and not hasattr(model, "curvature_source"):  # a module's source checks its own
        try:
            check_outputs(model, theta, data.X, data.K, config.effective_batch_size(data.n))
        except ConfigError as err:
            if config.network != "model":
                raise
            raise ConfigError.invalid("model", config.model, str(err)) from None
    return data, model, theta


def make_result(config: RunConfig, data: Dataset, n: int, p: int, ranks: dict[str, RankInfo], plan: MethodPlan,
                *, seconds: float, timings: dict, details: dict,
                predicted: tuple[int, Prediction] | None = None, theta=None) -> Result:
    """The one constructor of a :class:`Result`: ``ranks`` measured on the first ``n``
    samples of ``data``, with r and the predictions computed from the same samples
    (``predicted``: the ``(r, prediction)`` of :func:`predict_for` when already computed;
    ``theta``: the parameters measured at, when not the initialisation)."""
    config = config.replace(n=n, dim=data.d)  # record what the defaults resolved to
    r, prediction = predict_for(config, data, n, p, theta=theta) if predicted is None else predicted
    cnn_ranks = _cnn_ranks(config, data, n, theta) if config.network == "cnn" else None
    return Result(config=config, p=p, n=n, d=data.d, r=r, ranks=ranks, prediction=prediction, seconds=seconds,
                  method=plan.method, method_reason=plan.reason, dataset_source=data.source, timings=timings,
                  method_details=details, peak_rss_bytes=peak_rss_bytes(), provenance=provenance(),
                  threads=plan.threads, devices=plan.devices, cnn_ranks=cnn_ranks)


def _cnn_ranks(config: RunConfig, data: Dataset, n: int, theta=None) -> CNNDataRanks:
    """The patch ranks of the built-in CNN on the first ``n`` samples, with the rank of
    its first layer's features at ``theta`` (default: the initialisation of ``config``)."""
    model, theta0 = build_network(config, data.d, data.K)
    kernels = model.unravel(theta0 if theta is None else theta)["conv1"]["w"]
    return cnn_data_ranks(data.X[:n], config.conv_layers, stride=config.stride, padding=config.padding,
                          pool=config.pool, kernels=np.asarray(kernels), rtol=config.rtol, atol=config.atol)


def predict_for(config: RunConfig, data: Dataset, n: int, p: int, *, theta=None) -> tuple[int, Prediction]:
    """``(r, prediction)`` for ``config`` (``p`` parameters) on the first ``n`` samples of
    ``data``: r from the same rank rule as the Hessians, the predictions of
    :func:`hessrank.theory.predict_ranks` (the built-in CNN: :func:`hessrank.theory_cnn.predict_cnn_ranks`,
    with the features at ``theta``, default the initialisation; a user's model: the
    trivial bounds). With ``theta`` the point is checked (:func:`~.residuals.residual_state`)
    and the predictions of a linear MLP are those at it (:func:`hessrank.theory.at_point`);
    without it the point is assumed generic (a random initialisation)."""
    X = data.X[:n]
    r = covariance_rank(X, rtol=config.rtol, atol=config.atol).rank
    if config.network == "cnn":
        ranks = _cnn_ranks(config, data, n, theta)
        return r, predict_cnn_ranks(d=data.d, K=data.K, conv=config.conv_layers, loss=config.loss,
                                    activation=config.activation, bias=config.bias, stride=config.stride,
                                    padding=config.padding, pool=config.pool, n=n, ranks=ranks)
    if config.network != "mlp":  # no formula: the bounds every network obeys
        return r, trivial_prediction(p=p, n=n, K=data.K, loss=config.loss, r=r)
    r_affine = _affine_rank(X, r, rtol=config.rtol, atol=config.atol) if config.bias else None
    prediction = predict_ranks(r=r, K=data.K, units=config.units, loss=config.loss, activation=config.activation,
                               bias=config.bias, n=n, d=data.d, r_affine=r_affine)
    if theta is not None and config.activation == "linear":
        model = MLP(widths=(data.d, *config.units, data.K), activation=config.activation, bias=config.bias)
        state = residual_state(model, get_loss(config.loss), theta, X, data.Y[:n], bias=config.bias,
                               generic_rank=min(r_affine if config.bias else r, prediction.K_eff))
        prediction = at_point(prediction, state, activation=config.activation)
    return r, prediction


def _affine_rank(X, r: int, *, rtol, atol) -> int:
    """``rank [X, 1]`` (what the first layer sees with biases) by the same rule as ``r``.

    In exact arithmetic it lies in ``[r, min(n, r + 1)]``; the eigenvalues of the augmented
    Gram matrix interlace the original's, but its larger tolerance can drop an eigenvalue
    that sat at the cut, so the count is kept in that range."""
    n = X.shape[0]
    measured = covariance_rank(np.hstack([X, np.ones((n, 1))]), rtol=rtol, atol=atol).rank
    return min(max(measured, r), min(n, r + 1))


@in_float64
def run(config: RunConfig, *, blocks=None, params=None, params_source: str = "", threads: int | None = None,
        devices=None) -> Result:
    """Compute H_L, H_o, H_F for ``config``, their numerical ranks, and the predictions.

    Args:
        config: the data, network (the MLP, ``arch="cnn"`` or ``model="FILE.py:FUNCTION"``), loss,
            method, tolerance and seed (:class:`~hessrank.RunConfig`).
        blocks: ``"leaves"``, ``"layers"`` or a mapping name → leaf names (``W1``, ``b1``, …):
            also the ranks of these diagonal blocks, in ``Result.blocks``.
        params: ``{leaf name: array}``, or the path of a checkpoint saved by ``hessian-rank
            train`` (``step<t>.npz``; for a PyTorch module a ``state_dict`` file, ``step<t>.pt``,
            whose buffers are used too): measure at these parameters instead of the initialisation.
        params_source: where ``params`` came from, for messages.
        threads: BLAS threads for the eigenvalues and the sketch (default: the cores this process
            may use, by its CPU affinity and cgroup quota), in ``Result.threads``.
        devices: the JAX devices a matrix-free run shards its bases over and splits its samples over for
            the Hessian-vector products (default: every device, or host memory on one process of CPUs; a
            number: the first N), in ``Result.devices``.

    Returns:
        a :class:`Result`: ``summary()`` is the table of ``hessian-rank run``, ``to_dict()`` its ``--json``.

    Raises:
        ConfigError: a bad setting, a size that does not fit in memory, or ``params`` with a
            leaf missing or of another shape (naming ``params`` and ``params_source``).
        DataError: a data set that cannot be read.
    """
    t0 = time.perf_counter()
    data, model, theta = build(config)
    if params is not None:
        model, theta = _at_params(model, params, params_source)
    p = model.num_params
    resolved = resolve_blocks(model, blocks)
    # the predicted ranks (exact or bounds) let auto choose the faster method, not only one that fits
    predicted = predict_for(config, data, data.n, p, theta=theta)
    plan = plan_method(config.method, p, data.n, data.K, basis=expected_basis(predicted[1]), threads=threads,
                       devices=devices, jax_devices=not hasattr(model, "curvature_source"))
    ranks, timings, details, block_ranks = measure_model_ranks(
        plan, model, get_loss(config.loss), theta, data.X, data.Y, batch_size=config.effective_batch_size(data.n),
        rtol=config.rtol, atol=config.atol, seed=config.seed, blocks=resolved)
    result = make_result(config, data, data.n, p, ranks, plan, seconds=time.perf_counter() - t0, timings=timings,
                         details=details, predicted=predicted, theta=theta)
    result.blocks = block_ranks
    result.mode, result.frozen = getattr(model, "mode", ""), getattr(model, "frozen", ())
    return result


def _at_params(model, params, source: str):
    """``(model, θ)`` at ``params``: a ``{leaf name: array}`` mapping, or the path of a checkpoint
    file (an ``.npz`` for a JAX network; a ``state_dict`` saved with ``torch.save`` for a
    PyTorch module, whose buffers come with it)."""
    if isinstance(params, str | os.PathLike):
        source = source or str(params)
        if hasattr(model, "curvature_source"):
            return load_torch_checkpoint(model, params)
        params = load_arrays(params)
    return model, flat_params(model, params, source=source)


def measure_ranks(plan: MethodPlan, model: Model, loss, theta, X, Y, config: RunConfig):
    """Ranks of H_L, H_o, H_F on the samples ``X, Y`` as ``plan`` says (dense, or matrix-free
    within its budget): ``(ranks, timings, method_details)``."""
    return measure_model_ranks(plan, model, loss, theta, X, Y, batch_size=config.effective_batch_size(X.shape[0]),
                               rtol=config.rtol, atol=config.atol, seed=config.seed)[:3]


def measure_model_ranks(plan: MethodPlan, model: Model, loss, theta, X, Y, *, batch_size: int,
                        rtol: float | None = None, atol: float | None = None, seed: int = 0,
                        blocks: dict[str, Block] | None = None):
    """The one measurement behind ``run``, the sweeps and :func:`hessrank.hessian_ranks`:
    ``(ranks, timings, method_details, block_ranks)``, ``block_ranks`` holding the
    :class:`BlockRanks` of each of ``blocks`` (diagonal blocks at the whole matrix's tolerance)."""
    return measure_source_ranks(plan, curvature_source(model, loss, theta, X, Y, batch_size=batch_size),
                                rtol=rtol, atol=atol, seed=seed, blocks=blocks)


def curvature_source(model: Model, loss, theta, X, Y, *, batch_size: int | None) -> CurvatureSource:
    """The front end of ``model``: its own source when it has one (a PyTorch module built from a
    model file), the JAX one otherwise."""
    if hasattr(model, "curvature_source"):
        return model.curvature_source(loss.name, theta, X, Y, batch_size=batch_size)
    return jax_source(model, loss, theta, X, Y, batch_size=batch_size)
