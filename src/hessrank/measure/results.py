"""What every result of a measurement shares: ranks with their certificate, the method, the JSON form.

Internal: the stable API is ``hessrank.*``. :class:`RankedResult` is the base of
:class:`~hessrank.Result` (``run``), :class:`~hessrank.ModelResult` (``hessian_ranks``) and
:class:`~hessrank.SpectrumResult` (``spectrum``, ``hessian_spectrum``): the keys they share in
``to_dict()`` are written here once, and so is their short ``repr`` (sizes, ranks and the
method; never an array).
"""

from __future__ import annotations

import math

from ..linalg import RTOL_SCAN, RankInfo, ranks_at_rtols
from ..matrices import MATRICES


class RankedResult:
    """The shared part of the result classes.

    A subclass has the fields ``p``, ``n``, ``method``, ``method_reason``, ``method_details``
    (per matrix how a matrix-free rank was certified), ``seconds``, ``timings`` and ``blocks``,
    and gives its ranks through :meth:`rank_infos`; it adds its own keys to :meth:`to_dict`
    and its own table in :meth:`summary`.
    """

    #: the BLAS threads and the devices (0: host memory) the measurement ran on; results that record them
    #: have them as fields
    threads: int | None = None
    devices: int = 0

    def rank_infos(self) -> dict[str, RankInfo]:
        """Each matrix's :class:`~hessrank.RankInfo` (rank, tolerance, gap, eigenvalues)."""
        return self.ranks

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
        return {k: ranks_at_rtols(v, rtols, resolved_below=2 * self._residual_bound(k))
                for k, v in self.rank_infos().items()}

    def _residual_bound(self, name: str) -> float:
        return float(self.method_details.get(name, {}).get("residual_bound", 0.0))

    def _shared_dict(self) -> dict:
        """The keys every result's JSON has: sizes, ranks, cut, gap, method and timing."""
        infos = self.rank_infos()
        return {
            "p": self.p,
            "n": self.n,
            "ranks": {k: v.rank for k, v in infos.items()},
            "tolerance": {k: v.tol for k, v in infos.items()},
            "gap_decades": {k: finite_or_none(v.gap_decades) for k, v in infos.items()},
            "seconds": self.seconds,
            "timings": self.timings,
            "method": self.method,
            "method_reason": self.method_reason,
            "threads": self.threads,
            "devices": self.devices,
            "method_details": self.method_details,
            "certified": not self.uncertified,
        }

    def _blocks_dict(self) -> dict:
        """``{"blocks": {...}}`` when the result has diagonal blocks, else ``{}``."""
        return {"blocks": {name: b.to_dict() for name, b in self.blocks.items()}} if self.blocks else {}

    def __repr__(self) -> str:
        ranks = ", ".join(f"{k}={v.rank}" for k, v in self.rank_infos().items())
        blocks = f", blocks={len(self.blocks)}" if self.blocks else ""
        return (f"{type(self).__name__}(p={self.p}, n={self.n}, ranks({ranks}), method={self.method_label!r}"
                f"{blocks}, seconds={self.seconds:.3g})")


def finite_or_none(x):
    """``x`` as a float, or ``None`` when it is ``None`` or not finite (JSON has no inf)."""
    return None if x is None or not math.isfinite(x) else float(x)
