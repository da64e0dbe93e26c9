"""``run(config) -> Result``: the one place that ties data, model, curvature, rank and theory."""

from __future__ import annotations

import contextvars
import math
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .config import ConfigError, RunConfig
from .curvature import hessians
from .data import Dataset, load_dataset
from .losses import get_loss
from .matrixfree import matrix_free_ranks, plan_memory
from .models import MLP
from .operators import outer_product_factor
from .rank import (RTOL_SCAN, RankInfo, covariance_rank, numerical_rank, rank_from_eigenvalues, ranks_at_rtols,
                   spectrum)
from .theory import Prediction, predict_ranks

MATRICES = ("H_L", "H_o", "H_F")
#: p×p float64 matrices alive at the peak of a dense run: 3 accumulators, one
#: batch contribution, one LAPACK work copy
DENSE_MATRICES_HELD = 5
#: ``--method auto`` runs dense when its matrices take at most this share of the free memory
AUTO_DENSE_SHARE = 0.5
#: share of the free memory the matrix-free sketches may use
MATRIX_FREE_SHARE = 0.6
#: matrix-free refuses, before any work, a p whose basis could not hold this many vectors
MIN_SKETCH_VECTORS = 256


@dataclass
class Result:
    """What one run measured, predicted and how; ``to_dict`` gives the JSON form."""

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
    covariance: RankInfo | None = None
    timings: dict[str, float] = field(default_factory=dict)
    method_details: dict[str, dict] = field(default_factory=dict)

    @property
    def uncertified(self) -> tuple[str, ...]:
        """Matrices whose matrix-free rank was not certified (a lower bound only)."""
        return tuple(k for k in MATRICES if self.method_details.get(k, {}).get("certified") is False)

    @property
    def method_label(self) -> str:
        """``dense``, ``matrix-free``, or ``matrix-free (not certified: H_L, H_F)``."""
        bad = self.uncertified
        return f"{self.method} (not certified: {', '.join(bad)})" if bad else self.method

    def rank_vs_rtol(self, rtols=RTOL_SCAN) -> dict[str, list[int | None]]:
        """Each matrix's rank at each relative tolerance (``None`` where a matrix-free
        sketch did not resolve eigenvalues that small: below ``2δ``)."""
        return {k: ranks_at_rtols(v, rtols, resolved_below=2 * self._residual_bound(k)) for k, v in self.ranks.items()}

    def _residual_bound(self, name: str) -> float:
        return float(self.method_details.get(name, {}).get("residual_bound", 0.0))

    @property
    def spectra(self) -> dict[str, np.ndarray]:
        """Eigenvalues of each matrix, sorted by decreasing magnitude."""
        return {k: v.eigenvalues for k, v in self.ranks.items()}

    def to_dict(self) -> dict:
        return {
            "p": self.p,
            "n": self.n,
            "d": self.d,
            "r": self.r,
            "config": self.config.to_dict(),
            "ranks": {k: v.rank for k, v in self.ranks.items()},
            "predictions": {
                "H_L": self.prediction.H_L,
                "H_o": self.prediction.H_o,
                "H_F": self.prediction.H_F,
                "kind": self.prediction.kind,
            },
            "theory": self.prediction.to_dict(),
            "tolerance": {k: v.tol for k, v in self.ranks.items()},
            "gap_decades": {k: _finite_or_none(v.gap_decades) for k, v in self.ranks.items()},
            "seconds": self.seconds,
            "timings": self.timings,
            "peak_rss_bytes": peak_rss_bytes(),
            "method": self.method,
            "method_reason": self.method_reason,
            "method_details": self.method_details,
            "certified": not self.uncertified,
            "rank_vs_rtol": {"rtol": list(RTOL_SCAN), **self.rank_vs_rtol()},
            "dataset_source": self.dataset_source,
            "provenance": provenance(),
        }


def _finite_or_none(x):
    return None if x is None or not math.isfinite(x) else float(x)


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def provenance() -> dict:
    """Package versions and machine, so that every number can be traced and recomputed."""
    import jax
    import scipy

    from . import __version__

    return {
        "hessrank": __version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_count": os.cpu_count(),
    }


_MEMORY_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("hessrank_memory_limit", default=None)


@contextmanager
def memory_limit(nbytes: int | None):
    """Within this block (this thread), plan memory as if at most ``nbytes`` were free
    (``None``: no cap) — e.g. a Dask worker's memory limit."""
    token = _MEMORY_LIMIT.set(int(nbytes) if nbytes else None)
    try:
        yield
    finally:
        _MEMORY_LIMIT.reset(token)


def available_memory_bytes() -> int:
    """Memory the OS can give us now (``MemAvailable``, else total physical memory),
    capped by an enclosing :func:`memory_limit`."""
    have = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    have = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if have is None:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cap = _MEMORY_LIMIT.get()
    return have if cap is None else min(have, cap)


def dense_memory_bytes(p: int) -> int:
    """Peak bytes of a dense run with ``p`` parameters."""
    return DENSE_MATRICES_HELD * p * p * 8


def check_dense_memory(p: int) -> None:
    """Refuse, before any work, a dense problem that cannot fit in memory."""
    need, have = dense_memory_bytes(p), available_memory_bytes()
    if need > 0.9 * have:
        raise ConfigError(
            f"--units/--dim: p = {p} parameters needs about {need / 2**30:.1f} GiB for dense Hessians "
            f"({DENSE_MATRICES_HELD} p×p float64 matrices) but {have / 2**30:.1f} GiB is available; "
            "use --method matrix-free, or smaller --units or --dim"
        )


def choose_method(method: str, p: int, n: int, K: int) -> tuple[str, str]:
    """The method a run uses (``dense`` or ``matrix-free``) and why, for ``--method method``.

    ``auto`` runs dense when its p×p matrices fit comfortably (at most
    ``AUTO_DENSE_SHARE`` of the free memory), matrix-free otherwise.
    """
    what = "p×p matrices" if n * K > p else f"p×p H_L, H_F; H_o from the {n * K}×{n * K} Gram matrix"
    if method == "dense":
        return "dense", f"dense {what}"
    have = available_memory_bytes()
    need = dense_memory_bytes(p)
    if method == "auto" and need <= AUTO_DENSE_SHARE * have:
        return "dense", f"auto: dense {what}, at most {_gib(need)} of {_gib(have)} free"
    plan = plan_memory(p, n, K, MATRIX_FREE_SHARE * have)
    if plan.capacity < min(p, MIN_SKETCH_VECTORS):
        raise ConfigError(
            f"--method {method}: p = {p} parameters leaves room for only {plan.capacity} sketch vectors in "
            f"{MATRIX_FREE_SHARE * have / 2**30:.1f} GiB (dense would need {need / 2**30:.1f} GiB); "
            "use smaller --units or --dim"
        )
    why = "auto: dense would need" if method == "auto" else "--method matrix-free; dense would need"
    return "matrix-free", f"{why} {_gib(need)} of {_gib(have)} free; {plan.describe(p, n * K)}"


def _gib(nbytes: float) -> str:
    gib = nbytes / 2**30
    if gib < 0.1:
        return f"{nbytes / 2**20:.1f} MiB"
    return f"{gib:.2f} GiB" if gib < 10 else f"{gib:.0f} GiB"


def build(config: RunConfig) -> tuple[Dataset, MLP, np.ndarray]:
    """Validate ``config`` and make its data, network and initial parameters."""
    config.validate()
    data = load_dataset(config)
    if config.batch_size is not None and config.batch_size > data.n:
        raise ConfigError(f"--batch_size {config.batch_size}: larger than the sample size n = {data.n}; use 1..{data.n}")
    model = MLP(widths=(data.d, *config.units, data.K), activation=config.activation, bias=config.bias)
    theta = model.init(seed=config.seed, scheme=config.init)
    return data, model, theta


def run(config: RunConfig) -> Result:
    """Compute H_L, H_o, H_F for ``config``, their numerical ranks, and the predictions."""
    t0 = time.perf_counter()
    data, model, theta = build(config)
    config = config.replace(n=data.n, dim=data.d)  # record what the defaults resolved to
    p = model.num_params
    method, reason = choose_method(config.method, p, data.n, data.K)
    loss = get_loss(config.loss)

    ranks, timings, details = measure_ranks(method, model, loss, theta, data.X, data.Y, config)
    cov = covariance_rank(data.X, rtol=config.rtol, atol=config.atol)

    prediction = predict_ranks(r=cov.rank, K=data.K, units=config.units, loss=config.loss,
                               activation=config.activation, bias=config.bias)
    return Result(
        config=config, p=p, n=data.n, d=data.d, r=cov.rank, ranks=ranks, prediction=prediction,
        seconds=time.perf_counter() - t0, method=method, method_reason=reason,
        dataset_source=data.source, covariance=cov, timings=timings, method_details=details,
    )


def measure_ranks(method: str, model: MLP, loss, theta, X, Y, config: RunConfig):
    """Ranks of H_L, H_o, H_F on the samples ``X, Y`` by ``method`` (``dense`` or
    ``matrix-free``): ``(ranks, timings, method_details)``."""
    p = model.num_params
    batch_size = config.effective_batch_size(X.shape[0])
    if method == "dense":
        check_dense_memory(p)
        nK = X.shape[0] * Y.shape[1]
        gram = nK <= p  # H_o = AᵀA has the non-zero eigenvalues of the smaller A Aᵀ
        t = time.perf_counter()
        mats = hessians(model, loss, theta, X, Y, batch_size=batch_size,
                        which=("H_L", "H_F") if gram else MATRICES)
        if gram:
            A = outer_product_factor(model, loss, theta, X, Y, batch_size=batch_size)
            gram_matrix = A @ A.T
            del A
        timings = {"hessians": time.perf_counter() - t}
        t = time.perf_counter()
        ranks = {}
        for name in MATRICES:
            if name == "H_o" and gram:
                ranks[name] = rank_from_eigenvalues(spectrum(gram_matrix, overwrite=True), p,
                                                    rtol=config.rtol, atol=config.atol)
            else:
                ranks[name] = numerical_rank(mats.pop(name), rtol=config.rtol, atol=config.atol, overwrite=True)
        timings["eigen"] = time.perf_counter() - t
        return ranks, timings, {}
    mf = matrix_free_ranks(model, loss, theta, X, Y, batch_size=batch_size, rtol=config.rtol, atol=config.atol,
                           memory_bytes=MATRIX_FREE_SHARE * available_memory_bytes(), seed=config.seed)
    return mf.ranks, dict(mf.timings), mf.details
