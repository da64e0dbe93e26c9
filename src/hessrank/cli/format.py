"""The text the command line prints for one run."""

from __future__ import annotations

import math

from ..linalg import RTOL_SCAN
from ..matrices import MATRICES


def format_rank_vs_rtol(result) -> str:
    """Each rank at rtol = 1e-16 … 1e-2: a plateau over many decades is a cliff in the
    spectrum; a rank that changes with every decade depends on the tolerance."""
    scan = result.rank_vs_rtol()
    lines = ["rank against the relative tolerance (tol = rtol · max|λ| of each matrix)",
             f"{'rtol':>7}" + "".join(f"{name:>8}" for name in scan)]
    for i, rtol in enumerate(RTOL_SCAN):
        cells = "".join(f"{'?' if col[i] is None else col[i]:>8}" for col in scan.values())
        lines.append(f"{rtol:>7.0e}{cells}")
    if any(v is None for col in scan.values() for v in col):
        lines.append("?: below 2δ of the matrix-free sketch, eigenvalues that small are not resolved")
    return "\n".join(lines)


def _fmt_gap(gap) -> str:
    if gap is None:
        return "-"
    return "inf" if math.isinf(gap) else f"{gap:.1f}"


def format_result(result) -> str:
    """The human-readable table of one run."""
    c = result.config
    pred = result.prediction
    net = "-".join(map(str, (result.d, *c.units, c.K)))
    lines = [
        f"data     {c.dataset} ({result.dataset_source}): n = {result.n}, d = {result.d}, r = rank(Σ xxᵀ) = {result.r}",
        f"network  {net}, {c.activation}, {'bias' if c.bias else 'no bias'}, {c.init} init, seed {c.seed}; "
        f"loss {c.loss}; p = {result.p}",
        f"theory   K' = {pred.K_eff}, q = {pred.q}, s = {pred.s}, M = {pred.M}, L = {pred.L} "
        f"({'exact for this network' if pred.kind == 'exact' else 'linear formula, an estimate only'})",
        "",
        f"{'matrix':<7}{'rank':>8}{'predicted':>11}  {'kind':<9}{'tolerance':>11}{'gap (decades)':>15}",
    ]
    for name in MATRICES:
        info = result.ranks[name]
        mark = "" if info.rank == getattr(pred, name) else "  ≠"
        lines.append(f"{name:<7}{info.rank:>8}{getattr(pred, name):>11}  {pred.kind:<9}{info.tol:>11.2e}"
                     f"{_fmt_gap(info.gap_decades):>15}{mark}")
    lines += ["", f"method {result.method} ({result.method_reason}); {result.seconds:.2f} s"]
    for name, det in result.method_details.items():
        if "residual_bound" in det:
            start = f" ({det['start']})" if "start" in det else ""
            lines.append(f"  {name}: {det['status']}, basis of {det['columns']} vectors{start}, {det['matvecs']} "
                         f"products, ‖(I−P)H‖ ≤ {det['residual_bound']:.1e}")
        else:
            lines.append(f"  {name}: {det['how']}")
    if result.uncertified:
        lines.append(f"warning: {', '.join(result.uncertified)} not certified within the memory cap: each rank "
                     "shown is a lower bound; free memory, or use --method dense where it fits")
    return "\n".join(lines)


def _num(x, fmt=".4g") -> str:
    return "-" if x is None else format(x, fmt)


def format_spectrum(result) -> str:
    """The human-readable table of ``hessian-rank spectrum``: per matrix its rank, the
    largest eigenvalues, trace (± standard error), outliers, condition, and how they were found."""
    c = result.config
    net = "-".join(map(str, (result.d, *c.units, c.K)))
    k = result.options.top
    lines = [f"data     {c.dataset}: n = {result.n}, d = {result.d}",
             f"network  {net}, {c.activation}, {'bias' if c.bias else 'no bias'}, {c.init} init, seed {c.seed}; "
             f"loss {c.loss}; p = {result.p}",
             f"method   {result.method} ({result.method_reason}); {result.seconds:.2f} s", "",
             f"{'matrix':<7}{'rank':>8}{'λ_max':>12}{'trace':>14}{'± s.e.':>10}{'outliers':>10}{'condition':>12}"]
    for name, m in result.matrices.items():
        value, stderr = (None, None) if m.trace is None else (m.trace.value, m.trace.stderr)
        lines.append(f"{name:<7}{m.rank:>8}{_num(m.top[0] if m.top.size else None, '.5g'):>12}"
                     f"{_num(value, '.7g'):>14}{_num(stderr, '.2g'):>10}"
                     f"{m.outliers:>10}{_num(m.condition, '.3g'):>12}")
    lines += ["", f"top {k} eigenvalues by magnitude (each within the bound shown of an eigenvalue):"]
    for name, m in result.matrices.items():
        vals = " ".join(f"{v:.5g}" for v in m.top)
        lines.append(f"  {name} (± {m.top_bound:.1e}; {m.source}): {vals}")
    lines.append("")
    for name, m in result.matrices.items():
        how = []
        if m.trace is not None:
            how.append(f"trace: {m.trace.method}" + (f", {m.trace.products} products" if m.trace.products else ""))
        if m.density is not None:
            den = m.density
            how.append(f"density: {den.method}" + (f", {den.probes} probes × {den.lanczos_steps} Lanczos steps"
                                                   if den.probes else "") + f", σ = {den.sigma:.2g}")
        lines.append(f"  {name}: " + "; ".join(how))
    lines.append("outliers: eigenvalues with log10|λ| more than 3 robust standard deviations (1.4826·MAD) above "
                 "the median over the non-zero spectrum")
    return "\n".join(lines)
