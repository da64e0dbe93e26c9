"""Figures of a grid: measured against predicted rank, per matrix and per value of one option."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..grid import Grid, text_value
from ..matrices import MATRICES, SUFFIX
from ..store import row_kinds
from .style import COLOURS, DPI, RC, TEX, TITLE_SIZE, fit_text, legend_at_bottom, save_figure

#: the marker of a point by the kind of its prediction
_MARKERS = {"exact": {"marker": "o"}, "bound": {"marker": "v", "mfc": "none"},
            "estimate": {"marker": "s", "mfc": "none"}}
_LABELS = {"exact": "exact prediction", "bound": "bound (measured ≤ bound)", "estimate": "estimate"}


def grid_figure(rows, grid: Grid, *, facet: str | None = None):
    """Measured against predicted rank, one panel per matrix (columns) and per value of
    ``facet`` (rows; default the first grid option with several values). Points on the
    diagonal equal their prediction; filled dots are exact predictions, hollow
    downward triangles proven bounds (on or below the diagonal: measured ≤ bound),
    hollow squares estimates."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    done = rows[rows["status"] == "done"]
    if facet is None:
        facet = next((k for k, vals in zip(grid.keys, grid.values) if len(vals) > 1), None)
    if facet is not None and facet not in grid.keys:
        raise ConfigError.invalid("facet", facet, f"not a grid option; use one of {', '.join(grid.keys)}")
    levels = [text_value(v) for v in grid.values[grid.keys.index(facet)]] if facet else [None]
    names = MATRICES
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(3.0 * len(names) + 0.6, 2.6 * len(levels) + 0.8), dpi=DPI)
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(levels), len(names), squeeze=False)
        for i, level in enumerate(levels):
            part = done if level is None else done[done[facet].astype(str) == level]
            for j, name in enumerate(names):
                ax = axes[i][j]
                s = SUFFIX[name]
                pred = part[f"pred_{s}"].astype(float).to_numpy()
                meas = part[f"rank_{s}"].astype(float).to_numpy()
                kind = np.array([row_kinds(row)[name] or "-" for row in part.to_dict("records")], dtype=object)
                top = max([1.0, *pred, *meas]) * 1.05
                ax.plot([0, top], [0, top], color="grey", lw=0.8, ls="--", label="measured = predicted")
                for k, style in _MARKERS.items():
                    mine = kind == k
                    ax.plot(pred[mine], meas[mine], ls="none", ms=5, color=COLOURS[name], label=_LABELS[k], **style)
                ax.set_xlim(0, top)
                ax.set_ylim(0, top)
                title = f"rank {TEX[name]}" + (f" — {facet} = {level}" if level is not None else "")
                ax.set_title(title, fontsize=TITLE_SIZE)
                ax.set_xlabel("predicted")
                ax.set_ylabel("measured")
        fig.suptitle(fit_text(fig, f"grid {grid.name}: {len(done)} of {len(grid.points)} points done", fontsize=9,
                              width=0.96), fontsize=9)
        # one legend for every panel, in black: the colour is the panel's matrix, the marker the kind
        keys = [Line2D([], [], color="grey", lw=0.8, ls="--")] + \
            [Line2D([], [], ls="none", ms=5, color="black", **style) for style in _MARKERS.values()]
        legend_at_bottom(fig, keys, ["measured = predicted", *(_LABELS[k] for k in _MARKERS)], ncol=len(keys),
                         fontsize=7)
    return fig


def plot_grid(grid: Grid, *, out="results", facet: str | None = None) -> list[Path]:
    """Draw the stored rows of ``grid`` (:func:`grid_figure`) as PNG and PDF beside its CSV."""
    import pandas as pd

    table = grid.table(out)
    if not table.exists():
        raise ConfigError.invalid("grid", str(grid.path), f"nothing stored yet at {str(table.csv_path)!r}; "
                          "run hessian-rank grid first")
    table.read_rows()  # a damaged table is refused, one line naming file and line
    rows = pd.read_csv(table.csv_path, keep_default_na=False, dtype=str)
    fig = grid_figure(rows, grid, facet=facet)
    return save_figure(fig, table.csv_path.with_name(table.stem + "_grid"))
