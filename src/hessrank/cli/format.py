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


# --------------------------------------------------------------------------- #
# Any model and per-block ranks (issue 12)

def format_blocks(blocks) -> str:
    """The per-block table: each block's size and the ranks (gap in decades) of its diagonal
    blocks of H_L, H_o, H_F, counted at the tolerance of the whole matrix."""
    width = max([len("block")] + [len(name) for name in blocks]) + 2
    lines = ["diagonal blocks, ranks counted at the tolerance of the whole matrix (gap in decades)",
             f"{'block':<{width}}{'size':>7}" + "".join(f"{name:>16}" for name in MATRICES)]
    for name, b in blocks.items():
        cells = "".join(f"{b.ranks[m].rank:>8} ({_fmt_gap(b.ranks[m].gap_decades):>5})" for m in MATRICES)
        lines.append(f"{name:<{width}}{b.size:>7}{cells}")
    return "\n".join(lines)


def format_model_result(result, *, data: str, model: str) -> str:
    """The table of one :func:`hessrank.hessian_ranks` result: ``data`` and ``model`` describe them."""
    lines = [f"data     {data}", f"model    {model}; loss {result.loss}; p = {result.p}",
             "bounds   rank H_o ≤ min(p, nK'), each rank ≤ p (no formula for this network)", "",
             f"{'matrix':<7}{'rank':>8}{'bound':>9}  {'kind':<7}{'tolerance':>11}{'gap (decades)':>15}  how"]
    for name in MATRICES:
        info = result.ranks[name]
        mark = "  > bound!" if info.rank > result.bounds[name] else ""
        lines.append(f"{name:<7}{info.rank:>8}{result.bounds[name]:>9}  {'bound':<7}{info.tol:>11.2e}"
                     f"{_fmt_gap(info.gap_decades):>15}  {result.how(name)}{mark}")
    lines += ["", f"method {result.method} ({result.method_reason}); {result.seconds:.2f} s"]
    if result.uncertified:
        lines.append(f"warning: {', '.join(result.uncertified)} not certified within the memory cap: each rank "
                     "shown is a lower bound")
    return "\n".join(lines)
