"""The text tables of results: what ``summary()`` returns and the command line prints.

Internal: the stable API is ``hessrank.*`` (each result's :meth:`summary`). One place per
table: the ``run`` table (:func:`format_result`) with a legend saying what H_L, H_o, H_F,
the symbols and the gap are; the table of any model (:func:`format_model_result`); the
spectrum tables; per-block tables. Times are written in the unit that suits them
(:func:`duration_text`).
"""

from __future__ import annotations

import math

from ..linalg import RTOL_SCAN
from ..matrices import MATRICES
from ..theory import DEFICIENCY_PARTS, compare_rank
from ..theory_cnn import CNN_BOUND_TEXTS
from .network import network_label

#: what each matrix is, one line each, under every table of ranks
MATRIX_LEGEND = (
    "H_L: the loss Hessian ∇²L, L = Σ_i ℓ(f(x_i), y_i) summed over the n samples",
    "H_o: its outer-product (Gauss–Newton) part Σ_i J_iᵀ Λ_i J_i, J_i = ∂f(x_i)/∂θ, Λ_i = ∇²_f ℓ",
    "H_F: its functional part Σ_i Σ_k ∂ℓ/∂f_k · ∇²_θ f_k(x_i); H_L = H_o + H_F",
)
#: the symbols of the theory line of the built-in network
SYMBOLS_MLP = ("symbols: r = rank Σ xxᵀ, K' = K (K − 1 for cross-entropy), s = min(r, K'), "
               "q = min(r, K', hidden widths),\n"
               "         M = sum of hidden widths, L = number of weight matrices, p = number of parameters")
#: the symbols of the theory line of the built-in CNN
SYMBOLS_CNN = ("symbols: r_in = rank of the data as the first conv layer sees it, K' = K (K − 1 for cross-entropy), "
               "s = min(r_in, K'),\n"
               "         M = sum of the conv channels, L = number of conv layers + 1, p = number of parameters")
#: the symbols of the bounds of any other network
SYMBOLS_ANY = "symbols: K' = K (K − 1 for cross-entropy), n = number of samples, p = number of parameters"
#: what the tolerance and the gap columns mean
GAP_LEGEND = ("gap:     log10(|λ_r| / |λ_r+1|) in decades, the drop in |eigenvalue| at the cut (rank = the number "
              "of |λ| > tolerance);\n"
              "         many decades: a clear cliff; under about 2: the rank depends on the tolerance")


def duration_text(seconds: float) -> str:
    """``seconds`` in the unit that suits it: ``"under 1 ms"``, ``"40 ms"``, ``"3.1 s"``, ``"12 s"``,
    ``"2.5 min"``, ``"1.2 h"``."""
    s = float(seconds)
    if not math.isfinite(s):
        return "-"
    if s < 1e-3:
        return "under 1 ms"
    if s < 1.0:
        return f"{s * 1e3:.0f} ms"
    if s < 10.0:
        return f"{s:.1f} s"
    if s < 60.0:
        return f"{s:.0f} s"
    if s < 3600.0:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def about_text(seconds: float) -> str:
    """An expected time: ``"~40 ms"``, ``"~3.1 s"``, ``"under 1 ms"``."""
    text = duration_text(seconds)
    return text if text.startswith(("under", "-")) else f"~{text}"


def method_line(result) -> str:
    """``method dense (why, in plain words); 2 threads; took 3.1 s`` (and the devices a matrix-free
    basis was sharded over, when it was)."""
    where = [] if result.threads is None else [f"{result.threads} thread{'s' * (result.threads != 1)}"]
    if result.devices:
        where.append(f"bases on {result.devices} device{'s' * (result.devices != 1)}")
    return "; ".join([f"method {result.method} ({result.method_reason})", *where,
                      f"took {duration_text(result.seconds)}"])


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


#: what each null space in a bound's name is, for the ``theory`` line
_BOUND_PARTS = {
    "data-span": "data span",
    "softmax-shift": "softmax shift",
    "rescaling": "rescaling symmetry (one per hidden neuron or channel)",
}
#: the columns of ``--explain``, in the order the deficiency is attributed
_EXPLAIN_HEADS = {"data_span": "data span", "softmax_shift": "softmax shift", "rescaling": "rescaling",
                  "sample_count": "sample count", "linear_structure": "linear structure"}


def _bound_text(name: str) -> str:
    """``"p − rescaling symmetry (…)"``, ``"nK' (sample count)"``, ``"p"``."""
    if name == "nK'":
        return "nK' (sample count)"
    if name == "p":
        return "p (no symmetry applies)"
    if name in CNN_BOUND_TEXTS:
        return CNN_BOUND_TEXTS[name]
    return "p − " + " − ".join(_BOUND_PARTS.get(part, part) for part in name.split("+"))


def describe_predictions(pred) -> list[str]:
    """Phrases saying what the predictions of ``pred`` are (the ``theory`` lines)."""
    kinds = pred.kinds
    point = getattr(pred, "point", "generic")
    at = {"generic": "", "zero": " at this point (residual matrix Ω = 0: H_F = 0, H_L = H_o)",
          "special": " (H_F, H_L: the residual matrix Ω is not generic at this point)"}.get(point, "")
    if all(kinds.get(m) == "exact" for m in MATRICES):
        return [f"exact for this network (linear, no bias){at}"]
    phrases = [at.strip(" ()")] if at else []
    exact = [m for m in MATRICES if kinds.get(m) == "exact"]
    if exact:
        phrases.append(f"{', '.join(exact)} exact")
    bounds = {}
    for m in MATRICES:
        if kinds.get(m) == "bound":
            bounds.setdefault(pred.bounds.get(m, "p"), []).append(m)
    if bounds:
        phrases += [f"bound: {', '.join(ms)} ≤ {_bound_text(name)}" for name, ms in bounds.items()]
    estimates = [m for m in MATRICES if kinds.get(m) == "estimate"]
    if estimates:
        phrases.append(f"{', '.join(estimates)} estimate{'s' if len(estimates) > 1 else ''} only (no guarantee)")
    return phrases


def _mark(comparison: str | None) -> str:
    return {"violated": "  > bound!", "differs": "  ≠"}.get(comparison, "")


def format_result(result) -> str:
    """The human-readable table of one run: per matrix the measured rank, the prediction
    (``≤ b`` for a bound), its kind, the tolerance and the gap at the cut; ``≠`` marks a
    rank that differs from an exact prediction or an estimate, ``> bound!`` one above a
    proven bound (never expected: the bound or the measurement would be wrong)."""
    c = result.config
    pred = result.prediction
    r_aff = f", r̃ = rank [X, 1] = {pred.r_affine}" if pred.r_affine is not None else ""
    if c.network == "mlp":
        theory = [f"theory   K' = {pred.K_eff}, q = {pred.q}, s = {pred.s}, M = {pred.M}, L = {pred.L}",
                  *(f"         {phrase}" for phrase in describe_predictions(pred))]
    elif c.network == "cnn":
        theory = [f"theory   K' = {pred.K_eff}, s = {pred.s}, M = {pred.M}, L = {pred.L}",
                  *(f"         {phrase}" for phrase in describe_predictions(pred))]
    else:
        theory = [f"bounds   rank H_o ≤ min(p, nK') with K' = {pred.K_eff}, each rank ≤ p (no formula for this "
                  "network)"]
    lines = [
        f"data     {c.dataset} ({result.dataset_source}): n = {result.n}, d = {result.d}, r = rank(Σ xxᵀ) = "
        f"{result.r}{r_aff}",
        f"network  {network_label(c, result.d)}, seed {c.seed}; loss {c.loss}; p = {result.p}"
        + torch_note(result),
        *theory,
        "",
        f"{'matrix':<7}{'rank':>8}{'predicted':>11}  {'kind':<9}{'tolerance':>11}{'gap (decades)':>15}",
    ]
    for name in MATRICES:
        info = result.ranks[name]
        kind, value = pred.kinds.get(name), getattr(pred, name)
        shown = "-" if value is None else (f"≤ {value}" if kind == "bound" else str(value))
        lines.append(f"{name:<7}{info.rank:>8}{shown:>11}  {kind or '-':<9}{info.tol:>11.2e}"
                     f"{_fmt_gap(info.gap_decades):>15}{_mark(compare_rank(info.rank, value, kind))}")
    symbols = {"mlp": SYMBOLS_MLP, "cnn": SYMBOLS_CNN}.get(c.network, SYMBOLS_ANY)
    lines += ["", *MATRIX_LEGEND, symbols, GAP_LEGEND]
    lines += ["", method_line(result)]
    for name, det in result.method_details.items():
        if "residual_bound" in det:
            start = f" ({det['start']})" if "start" in det else ""
            lines.append(f"  {name}: {det['status']}, basis of {det['columns']} vectors{start}, {det['matvecs']} "
                         f"products, ‖(I−P)H‖ ≤ {det['residual_bound']:.1e}")
        else:
            lines.append(f"  {name}: {det['how']}")
    lines += _uncertified_warning(result)
    return "\n".join(lines)


def format_explain(result) -> str:
    """``p − rank`` of each matrix split into the parts the theory accounts for, in the
    order they are attributed (each part is what it removes after the ones before it),
    and the unexplained rest: 0 where an exact formula holds, ≥ 0 under a bound."""
    explained = result.explain()
    heads = [_EXPLAIN_HEADS[k] for k in DEFICIENCY_PARTS]
    widths = [max(len(h), 6) for h in heads]
    lines = [f"p − rank explained (p = {result.p}; each part counts what it removes after the parts left of it)",
             f"{'matrix':<7}{'p − rank':>9}  " + "  ".join(f"{h:>{w}}" for h, w in zip(heads, widths))
             + f"  {'unexplained':>11}"]
    for name in MATRICES:
        if name not in explained:
            continue
        e = explained[name]
        cells = "  ".join(f"{e.parts[k]:>{w}}" for k, w in zip(DEFICIENCY_PARTS, widths))
        note = "  (measured above the theory)" if e.unexplained < 0 else ""
        lines.append(f"{name:<7}{e.deficiency:>9}  {cells}  {e.unexplained:>11}{note}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# any model and per-block ranks

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


def torch_note(result) -> str:
    """``; PyTorch module in <mode> mode`` (and the frozen parameters held fixed) for a module's
    result; empty for a JAX model."""
    if not getattr(result, "mode", ""):
        return ""
    frozen = getattr(result, "frozen", ())
    held = f"; held fixed (requires_grad=False): {', '.join(frozen)}" if frozen else ""
    return f"; PyTorch module in {result.mode} mode{held}"


def torch_fields(result) -> dict:
    """``front_end``, ``mode`` and ``frozen`` of a module's result for its JSON form; empty for JAX."""
    if not getattr(result, "mode", ""):
        return {}
    return {"front_end": "torch", "mode": result.mode, "frozen": list(getattr(result, "frozen", ()))}


def format_model_result(result, *, data: str | None = None, model: str | None = None) -> str:
    """The table of one :func:`hessrank.hessian_ranks` result: ``data`` and ``model`` describe
    them (default: the sample count and ``f(params, X)``, or ``module(X)`` for a PyTorch module)."""
    data = data or f"n = {result.n} samples, K = {result.K} outputs"
    model = model or ("module(X)" if getattr(result, "mode", "") else "f(params, X)")
    lines = [f"data     {data}", f"model    {model}; loss {result.loss}; p = {result.p}{torch_note(result)}",
             "bounds   rank H_o ≤ min(p, nK'), each rank ≤ p (no formula for this network)", "",
             f"{'matrix':<7}{'rank':>8}{'bound':>9}  {'kind':<7}{'tolerance':>11}{'gap (decades)':>15}  how"]
    for name in MATRICES:
        info = result.ranks[name]
        mark = "  > bound!" if info.rank > result.bounds[name] else ""
        lines.append(f"{name:<7}{info.rank:>8}{result.bounds[name]:>9}  {'bound':<7}{info.tol:>11.2e}"
                     f"{_fmt_gap(info.gap_decades):>15}  {result.how(name)}{mark}")
    lines += ["", *MATRIX_LEGEND, SYMBOLS_ANY, GAP_LEGEND]
    lines += ["", method_line(result)]
    lines += _uncertified_warning(result)
    return "\n".join(lines)


def _uncertified_warning(result) -> list[str]:
    """One warning per matrix whose matrix-free rank is not certified, with the sketch's own reason."""
    out = []
    for name in result.uncertified:
        status = result.method_details.get(name, {}).get("status", "not certified")
        remedy = "free memory, or use the dense method where it fits" if "memory cap" in status else \
            "the cut lies in the sketch's uncertainty; compare with the dense method where it fits, or set the " \
            "tolerance (rtol, atol)"
        out.append(f"warning: {name} {status}: the rank shown is a lower bound; {remedy}")
    return out


def _num(x, fmt=".4g") -> str:
    return "-" if x is None else format(x, fmt)


_SPECTRUM_HEADER = (f"{'matrix':<7}{'rank':>8}{'λ_max':>12}{'trace':>14}{'± s.e.':>10}{'outliers':>10}"
                    f"{'condition':>12}")


def _spectrum_row(name: str, m) -> str:
    value, stderr = (None, None) if m.trace is None else (m.trace.value, m.trace.stderr)
    return (f"{name:<7}{m.rank:>8}{_num(m.top[0] if m.top.size else None, '.5g'):>12}"
            f"{_num(value, '.7g'):>14}{_num(stderr, '.2g'):>10}{m.outliers:>10}{_num(m.condition, '.3g'):>12}")


def format_block_spectra(blocks) -> str:
    """The per-block table of ``hessian-rank spectrum --blocks``: for each diagonal block of
    H_L, H_o, H_F its rank (at the whole matrix's tolerance), λ_max, trace, outliers, condition."""
    width = max([len("block")] + [len(name) for name in blocks]) + 2
    lines = ["diagonal blocks (rank at the whole matrix's tolerance; trace exact when dense or from the Gram "
             "matrix, else ± its standard error)",
             f"{'block':<{width}}{'size':>7}  " + _SPECTRUM_HEADER]
    for name, b in blocks.items():
        for i, (m, spec) in enumerate(b.matrices.items()):
            lines.append(f"{name if i == 0 else '':<{width}}{b.size if i == 0 else '':>7}  " + _spectrum_row(m, spec))
    return "\n".join(lines)


def matrix_spectrum_summary(m) -> str:
    """The table of one :class:`~hessrank.MatrixSpectrum`: its row of the ``spectrum`` table,
    its top eigenvalues and how the rank was cut."""
    gap = _fmt_gap(m.gap_decades)
    vals = " ".join(f"{v:.5g}" for v in m.top)
    return "\n".join([_SPECTRUM_HEADER, _spectrum_row(m.name, m), "",
                      f"size {m.size}, tolerance {m.tol:.2e}, gap {gap} decades"
                      + ("" if m.certified else " (not certified: the rank is a lower bound)"),
                      f"top {m.top.size} eigenvalues (± {m.top_bound:.1e}; {m.source}): {vals}"])


def format_spectrum(result) -> str:
    """The human-readable table of ``hessian-rank spectrum``: per matrix its rank, the
    largest eigenvalues, trace (± standard error), outliers, condition, and how they were found."""
    c = result.config
    k = result.options.top
    loss = result.loss if c is None else c.loss
    if c is None:
        data = f"data     n = {result.n} samples, d = {result.d}, K = {result.K} outputs"
        about = f"model    {result.model or 'f(params, X)'}; loss {loss}; p = {result.p}{torch_note(result)}"
    else:
        data = f"data     {c.dataset}: n = {result.n}, d = {result.d}"
        if result.model:
            about = f"model    {result.model}; loss {loss}; p = {result.p}"
        else:
            about = f"network  {network_label(c, result.d)}, seed {c.seed}; loss {loss}; p = {result.p}"
    lines = [data, about, method_line(result).replace("method ", "method   ", 1), "", _SPECTRUM_HEADER]
    lines += [_spectrum_row(name, m) for name, m in result.matrices.items()]
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
    lines += MATRIX_LEGEND
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# what each result's summary() returns: its table, then its blocks' table when it has blocks

def run_summary(result) -> str:
    """The ``run`` table of a :class:`~hessrank.Result`, then its diagonal blocks' table."""
    return _with_blocks(format_result(result), result.blocks, format_blocks)


def model_summary(result) -> str:
    """The table of a :class:`~hessrank.ModelResult`, then its diagonal blocks' table."""
    return _with_blocks(format_model_result(result), result.blocks, format_blocks)


def spectrum_summary(result) -> str:
    """The ``spectrum`` table of a :class:`~hessrank.SpectrumResult`, then its blocks' table."""
    return _with_blocks(format_spectrum(result), result.blocks, format_block_spectra)


def _with_blocks(text: str, blocks, table) -> str:
    return f"{text}\n\n{table(blocks)}" if blocks else text
