"""The look shared by every figure: one colour per matrix, sizes, and saving as PNG and PDF."""

from __future__ import annotations

from pathlib import Path

from ..atomicio import atomic_output

#: one colour per matrix, the same in every figure
COLOURS = {"H_L": "#6a3d9a", "H_F": "#e31a1c", "H_o": "#ff7f00"}
MATRIX_ORDER = ("H_L", "H_F", "H_o")
TEX = {"H_L": r"$H_L$", "H_o": r"$H_o$", "H_F": r"$H_F$"}
#: figure size in inches and resolution: PNGs are FIGSIZE × DPI pixels
FIGSIZE = (7.0, 4.8)
DPI = 150
X_LABEL = {"samplesize": "sample size n", "width": "minimal width (2 hidden layers of this width)",
           "depth": "depth (number of hidden layers)", "channels": "channels of every conv layer"}
RC = {"text.usetex": False, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}


def new_figure():
    """An empty figure of FIGSIZE on the Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, stem) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` (atomically: temporary file, then rename)."""
    import matplotlib

    stem = Path(stem)
    paths = []
    with matplotlib.rc_context(RC):
        for ext in ("png", "pdf"):
            path = stem.with_name(f"{stem.name}.{ext}")
            with atomic_output(path, "wb") as fh:
                fig.savefig(fh, format=ext, dpi=DPI)
            paths.append(path)
    return paths
