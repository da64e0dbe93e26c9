"""Figures from the result store: rank against sample size, width or depth, and spectra.

* :func:`sweep_figure`: measured ranks of H_L, H_o, H_F as lines, one fixed colour per
  matrix, with the predictions by kind: exact ones as dots, proven bounds as dashed
  lines, estimates as thin dotted lines; y is the rank or rank / #params.
* :func:`spectrum_figure`: the sorted |eigenvalues| of H_L, H_o, H_F on a log scale,
  each with its tolerance (dashed) and its cut (dotted, at the rank): why a rank is
  that rank.
* :func:`density_figure`: their eigenvalue densities on a symmetric-log axis;
  :func:`block_density_figure`: the densities of their diagonal blocks, one panel per matrix.

Figures are drawn with Matplotlib's object-oriented API on the Agg canvas (no
pyplot state, no display, no LaTeX: mathtext only) and saved as PNG and PDF beside
the data they show. The matrices appear in the order of the tables (H_L, H_o, H_F),
legends stand below the data, titles are broken to fit the figure, the tick labels of a
symmetric-log axis are thinned so that none overprints another, and a matrix or block of
rank 0 (every eigenvalue at 0) is drawn as a spike at 0 (:mod:`.style`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomicio import read_regular_bytes
from ..config import NORMALIZED_TASKS
from ..errors import ConfigError, StoreError
from ..matrices import SUFFIX
from ..store import ResultTable, row_kinds
from .style import (
    COLOURS,
    FIGSIZE,
    MATRIX_ORDER,
    RC,
    TEX,
    TITLE_SIZE,
    X_LABEL,
    fit_text,
    legend_below,
    legend_right,
    new_figure,
    save_figure,
    set_title,
    thin_ticks,
)

#: how a prediction is drawn, by kind: exact ones as dots, proven bounds as dashed
#: lines, estimates as a thin dotted reference line
PREDICTION_STYLE = {
    "exact": {"ls": "none", "marker": "o", "ms": 5, "mec": "black", "mew": 0.6},
    "bound": {"ls": "--", "lw": 1.3},
    "estimate": {"ls": ":", "lw": 0.9},
}
PREDICTION_LABEL = {"exact": "predicted (exact)", "bound": "bound (rank ≤)", "estimate": "estimate"}


def default_normalize(task: str) -> bool:
    """rank / #params for width and depth (as in the paper), plain rank for sample size."""
    return task in NORMALIZED_TASKS


def sweep_title(meta: dict) -> str:
    """Two lines naming the sweep's configuration."""
    c, s = meta["config"], meta["sweep"]
    d, K = meta["dataset"]["d"], c["K"]
    if c.get("model"):
        net = f"model {c['model']}, n = {s['batch_size']}…{s['n_max']}"
    elif c.get("arch") == "cnn" and meta["task"] == "samplesize":
        net = f"cnn {c['conv']}, n = {s['batch_size']}…{s['n_max']}"
    elif meta["task"] == "channels":
        net = f"cnn c:{',c:'.join(map(str, s['kernels']))}, n = {c['n']}"
    elif meta["task"] == "samplesize":
        net = f"network {'-'.join(map(str, (d, *s['units'], K)))}, n = {s['batch_size']}…{s['n_max']}"
    elif meta["task"] == "width":
        net = f"network {d}-w-w-{K}, n = {c['n']}"
    else:
        net = f"network {d}-{s['width']}-…-{s['width']}-{K}, n = {c['n']}"
    what = {"samplesize": "sample size"}.get(meta["task"], meta["task"])
    line1 = f"rank vs {what}: {c['dataset']}, {c['loss']} loss, {net}"
    tol = "default tolerance" if c.get("rtol") is None and c.get("atol") is None else \
        f"rtol = {c.get('rtol')}, atol = {c.get('atol')}"
    line2 = (f"{c.get('activation', '-')}, {'bias' if c.get('bias') else 'no bias'}, {c.get('init', '-')} init, "
             f"seed {c['seed']}, "
             f"batch size {c['batch_size']}, {tol}")
    return line1 + "\n" + line2


def draw_ranks(ax, x, rows, kinds, *, scale=1.0, styles=None, zorder: int = 2, **measured) -> None:
    """Per matrix, the measured ranks of ``rows`` against ``x`` (a line; ``measured``: more
    line styles) and the predictions, one series per kind (``styles``, default
    :data:`PREDICTION_STYLE`; a point of another kind is NaN, breaking the line), drawn
    above the measured line; ranks and predictions divided by ``scale``."""
    for name in MATRIX_ORDER:
        s = SUFFIX[name]
        ax.plot(x, rows[f"rank_{s}"].to_numpy(dtype=float) / scale, color=COLOURS[name], lw=1.8, zorder=zorder,
                label=f"rank {TEX[name]} measured", **measured)
        pred = rows[f"pred_{s}"].to_numpy(dtype=float) / scale
        for kind, style in (PREDICTION_STYLE if styles is None else styles).items():
            mine = np.array([k[name] == kind for k in kinds])
            if mine.any():
                ax.plot(x, np.where(mine, pred, np.nan), color=COLOURS[name], zorder=zorder + 1,
                        label=f"{TEX[name]} {PREDICTION_LABEL[kind]}", **style)


def sweep_figure(rows, meta: dict, *, normalize: bool | None = None):
    """The paper's figure from stored ``rows`` (a DataFrame of one sweep's CSV) and its
    ``meta`` (the JSON): per matrix a line (measured) and a series per kind of prediction
    in the rows (:data:`PREDICTION_STYLE`)."""
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    task, key = meta["task"], meta["key"]
    normalize = default_normalize(task) if normalize is None else bool(normalize)
    rows = rows.sort_values(key)
    x = rows[key].to_numpy(dtype=float)
    scale = rows["num_params"].to_numpy(dtype=float) if normalize else np.ones_like(x)
    kinds = [row_kinds(row) for row in rows.to_dict("records")]
    with matplotlib.rc_context(RC):
        fig = new_figure()
        ax = fig.add_subplot(1, 1, 1)
        draw_ranks(ax, x, rows, kinds, scale=scale)
        if x.size <= 16:
            ax.set_xticks(x)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(X_LABEL[task])
        ax.set_ylabel("rank / #params" if normalize else "rank")
        set_title(ax, sweep_title(meta))
        legend_below(ax, per_matrix=True)
    return fig


def plot_sweep(json_path, *, normalize: bool | None = None) -> list[Path]:
    """Draw the figure of the sweep stored at ``json_path`` (CSV beside it); write PNG and
    PDF beside the data as ``<stem>_rank`` or ``<stem>_rank_per_param``; return the paths."""
    import pandas as pd


    json_path = Path(json_path)
    csv_path = json_path.with_suffix(".csv")
    stored = ResultTable(json_path.parent, json_path.stem, ())
    meta = stored.read_meta() or {}
    if not csv_path.exists():
        raise ConfigError.invalid("task", meta.get('task'), quoted=False, detail="no rows stored yet in "
                                                                             f"{str(csv_path)!r}; run the sweep first")
    ResultTable(json_path.parent, json_path.stem, meta.get("columns", ())).read_rows()  # damaged: refused
    rows = pd.read_csv(csv_path, keep_default_na=False, dtype={"kind": str})
    if rows.empty:
        raise ConfigError.invalid("task", meta['task'], quoted=False, detail="no rows stored yet in "
                                                                             f"{str(csv_path)!r}; run the sweep first")
    normalize = default_normalize(meta["task"]) if normalize is None else bool(normalize)
    fig = sweep_figure(rows, meta, normalize=normalize)
    suffix = "rank_per_param" if normalize else "rank"
    return save_figure(fig, json_path.with_name(f"{json_path.stem}_{suffix}"))


def spectrum_figure(eigenvalues: dict, ranks: dict, tolerances: dict, *, title: str = "", size: int | None = None):
    """Sorted |eigenvalues| of each matrix (``{name: array}``) on a log scale, with its
    tolerance (dashed) and its cut after the ``rank``-th eigenvalue (dotted)."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = new_figure()
        ax = fig.add_subplot(1, 1, 1)
        for name in MATRIX_ORDER:
            mags = np.sort(np.abs(np.asarray(eigenvalues[name], dtype=float)))[::-1]
            idx = np.arange(1, mags.size + 1)
            shown = np.where(mags > 0, mags, np.nan)  # exact zeros have no place on a log axis
            rank, tol = int(ranks[name]), float(tolerances[name])
            gap = ""
            if 0 < rank < mags.size:
                below = mags[rank]
                gap = ", gap inf" if below == 0 else f", gap {np.log10(mags[rank - 1] / below):.1f} decades"
            ax.plot(idx, shown, color=COLOURS[name], lw=1.6, label=f"{TEX[name]}: rank {rank} of {mags.size}{gap}")
            ax.axhline(tol, color=COLOURS[name], ls="--", lw=0.9)
            ax.axvline(rank + 0.5, color=COLOURS[name], ls=":", lw=1.2)
        ax.set_yscale("log")
        ax.set_xlabel(r"index $i$ (eigenvalues sorted by $|\lambda|$)")
        ax.set_ylabel(r"$|\lambda_i|$")
        ax.plot([], [], color="grey", ls="--", lw=0.9, label="tolerance")
        ax.plot([], [], color="grey", ls=":", lw=1.2, label="cut (rank)")
        if size:
            ax.set_xlim(0, size + 1)
        set_title(ax, title)
        legend_below(ax, per_matrix=False)
    return fig


def spectrum_title(meta: dict) -> str:
    """The title of a spectrum figure, from the stored result's metadata."""
    c = meta["config"]
    net = meta.get("model") or "-".join(map(str, (meta["d"], *c.get("units", ()), c["K"])))
    tol = "default tolerance (max|λ|·p·eps)" if c.get("rtol") is None and c.get("atol") is None else \
        f"rtol = {c.get('rtol')}, atol = {c.get('atol')}"
    return (f"spectra: {c['dataset']}, n = {meta['n']}, {c['loss']} loss, network {net} (p = {meta['p']})\n"
            f"{c.get('activation', '-')}, {'bias' if c.get('bias') else 'no bias'}, {c.get('init', '-')} init, "
            f"seed {c['seed']}, {tol}")


def plot_spectrum(json_path) -> list[Path]:
    """Draw the spectra stored at ``json_path`` (the run's JSON, the spectrum CSV beside it)."""
    import pandas as pd

    json_path = Path(json_path)
    meta = _read_meta(json_path)
    table = pd.read_csv(json_path.with_suffix(".csv"))
    eig = {name: table[name].to_numpy(dtype=float) for name in ("H_L", "H_o", "H_F")}
    fig = spectrum_figure(eig, meta["ranks"], meta["tolerance"], title=spectrum_title(meta), size=meta["p"])
    return save_figure(fig, json_path.with_name(json_path.stem + "_spectrum"))


def _density_label(m: dict) -> str:
    """``rank r of p, k outliers (how the density was obtained)`` for a stored matrix summary."""
    den = m["density"]
    how = f"SLQ {den['probes']}×{den['lanczos_steps']}" if den["probes"] else \
        ("all at 0" if _all_at_zero(m) else "exact")
    return f"rank {m['rank']} of {m['size']}, {m['outliers']} outliers ({how})"


def _all_at_zero(m: dict) -> bool:
    """A matrix or block of rank 0 at the cut: every eigenvalue is 0, its density one point mass."""
    return m["rank"] == 0 or list(m["density"]["nodes"]) == [0.0]


#: the y range of a panel that holds only spikes (densities of rank 0): nothing else sets one
SPIKE_ONLY_YLIM = (1e-3, 1e1)


def _draw_density(ax, m: dict, cut: float, **style):
    """One density on the symmetric-log axis; a matrix of rank 0 is a point mass, drawn as a
    spike at 0 over the whole height (not smoothed into a bell). Returns the x range of the
    curve, or None for a spike."""
    if _all_at_zero(m):
        ax.axvline(0.0, lw=2.2, **style)
        return None
    from ..linalg.spectral import log_density

    x, y = log_density(m["density"]["nodes"], m["density"]["weights"], cut)
    seen = y > 1e-6
    ax.plot(x, np.where(seen, y, np.nan), lw=1.4, **style)
    return float(x[seen].min()), float(x[seen].max())


def density_figure(meta: dict, *, title: str = ""):
    """The eigenvalue density of H_L, H_o, H_F (``meta``: a stored spectrum JSON) on a
    symmetric-log x axis, linear within the smallest cut (the numerically zero eigenvalues);
    the density is smoothed in that coordinate (0.1 decade), so y is the fraction of
    eigenvalues per decade; each matrix's cut ``±tol`` is marked (dotted). A matrix of
    rank 0 (all eigenvalues at 0) is a spike at 0."""
    import matplotlib

    shown = [name for name in MATRIX_ORDER if meta[name].get("density")]
    cut = min(float(meta[name]["tol"]) for name in shown) if shown else 1e-12
    cut = cut if cut > 0 else 1e-12
    with matplotlib.rc_context(RC):
        fig = new_figure()
        ax = fig.add_subplot(1, 1, 1)
        lo, hi = -10 * cut, 10 * cut
        spans = []
        for name in shown:
            m = meta[name]
            spans.append(_draw_density(ax, m, cut, color=COLOURS[name], label=f"{TEX[name]}: {_density_label(m)}"))
            for sign in (-1, 1):
                ax.axvline(sign * float(m["tol"]), color=COLOURS[name], ls=":", lw=1.1)
        ax.set_xscale("symlog", linthresh=cut)
        curves = [span for span in spans if span is not None]
        ax.set_xlim(min([lo, *(a for a, _ in curves)]), max([hi, *(b for _, b in curves)]))
        ax.set_yscale("log")
        if not curves:
            ax.set_ylim(*SPIKE_ONLY_YLIM)
        ax.set_xlabel(r"eigenvalue $\lambda$ (symmetric log scale, linear within the smallest cut)")
        ax.set_ylabel("fraction of eigenvalues per decade")
        ax.plot([], [], color="grey", ls=":", lw=1.1, label=r"cut $\pm$tol (rank)")
        set_title(ax, title)
        legend_below(ax, per_matrix=False)
        thin_ticks(ax)
    return fig


def plot_density(json_path) -> list[Path]:
    """Draw the densities stored at ``json_path`` (a ``hessian-rank spectrum`` result) as
    ``<stem>_density.png``/``.pdf`` beside it."""
    json_path = Path(json_path)
    meta = _read_meta(json_path)
    fig = density_figure(meta, title=spectrum_title(meta).replace("spectra:", "eigenvalue density:", 1))
    return save_figure(fig, json_path.with_name(json_path.stem + "_density"))


#: line styles of the blocks in :func:`block_density_figure`, cycled with the colours
BLOCK_LINES = ("-", "--", "-.", (0, (1, 1)))
#: the block density figure is wider than the others: its legends stand to the right of the panels
BLOCK_FIGURE_WIDTH = 10.0


def block_density_figure(meta: dict, *, title: str = ""):
    """The eigenvalue densities of the diagonal blocks (``meta["blocks"]`` of a stored spectrum
    JSON): one panel per matrix, one line per block, on the symmetric-log x axis of
    :func:`density_figure` (linear within that matrix's cut, smoothed 0.1 decade in that
    coordinate); the cut ``±tol`` — the whole matrix's, at which the blocks' ranks are
    counted — is marked (dotted). A block of rank 0 is a spike at 0."""
    import matplotlib

    blocks = meta["blocks"]
    shown = [name for name in MATRIX_ORDER if any(b[name].get("density") for b in blocks.values())]
    colours = matplotlib.colormaps["tab10"]
    with matplotlib.rc_context(RC):
        fig = new_figure()
        fig.set_size_inches(BLOCK_FIGURE_WIDTH, 0.55 * FIGSIZE[1] * max(len(shown), 1) + 0.8)
        axes, spikes_only = [], []
        for row, name in enumerate(shown):
            ax = fig.add_subplot(len(shown), 1, row + 1)
            axes.append(ax)
            tol = float(meta[name]["tol"])
            cut = tol if tol > 0 else 1e-12
            lo, hi = -10 * cut, 10 * cut
            curves = 0
            for i, (bname, b) in enumerate(blocks.items()):
                if not b[name].get("density"):
                    continue
                # line styles cycle too: blocks with the same density (rank 0) would hide each other
                span = _draw_density(ax, b[name], cut, color=colours(i % 10), ls=BLOCK_LINES[i % len(BLOCK_LINES)],
                                     label=f"{bname}: {_density_label(b[name])}")
                if span is not None:
                    curves += 1
                    lo, hi = min(lo, span[0]), max(hi, span[1])
            if not curves:
                spikes_only.append(ax)
            for sign in (-1, 1):
                ax.axvline(sign * tol, color=COLOURS[name], ls=":", lw=1.1)
            ax.set_xscale("symlog", linthresh=cut)
            ax.set_xlim(lo, hi)
            ax.set_yscale("log")
            ax.set_ylabel(f"{TEX[name]} blocks\nper decade")
            if row == len(shown) - 1:
                ax.plot([], [], color="grey", ls=":", lw=1.1, label=r"cut $\pm$tol of the whole matrix")
                ax.set_xlabel(r"eigenvalue $\lambda$ (symmetric log scale, linear within the cut)")
            legend_right(ax)
        # a panel of spikes alone takes the other panels' y range (a spike has no height of its own)
        ranges = [ax.get_ylim() for ax in axes if ax not in spikes_only]
        for ax in spikes_only:
            ax.set_ylim(*((min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else SPIKE_ONLY_YLIM))
        fig.suptitle(fit_text(fig, title, fontsize=TITLE_SIZE, width=0.96), fontsize=TITLE_SIZE)
        fig.tight_layout()
        for ax in axes:
            thin_ticks(ax)
    return fig


def plot_block_density(json_path) -> list[Path]:
    """Draw the diagonal blocks' densities stored at ``json_path`` (a ``hessian-rank spectrum
    --blocks`` result) as ``<stem>_block_density.png``/``.pdf`` beside it."""
    json_path = Path(json_path)
    meta = _read_meta(json_path)
    if not meta.get("blocks"):
        raise ConfigError.about("blocks", f"{str(json_path)!r} holds no diagonal blocks")
    title = spectrum_title(meta).replace("spectra:", "eigenvalue density of the diagonal blocks:", 1)
    fig = block_density_figure(meta, title=title)
    return save_figure(fig, json_path.with_name(json_path.stem + "_block_density"))


def _read_meta(json_path: Path) -> dict:
    """The stored result's JSON object at ``json_path``; anything else is one line (:class:`StoreError`)."""
    try:
        meta = json.loads(read_regular_bytes(json_path).decode("utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # ValueError: not JSON, not UTF-8
        raise StoreError.about("out", f"cannot read {str(json_path)!r} as a stored result ({type(err).__name__}: "
                                      f"{err}); move it away") from None
    if not isinstance(meta, dict):
        raise StoreError.about("out", f"{str(json_path)!r} holds a {type(meta).__name__}, not a stored result's "
                                      "JSON object; move it away")
    return meta
