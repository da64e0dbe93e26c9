"""The look shared by every figure: one colour per matrix, sizes, titles that fit, legends
beside the data, readable ticks, and saving as PNG and PDF."""

from __future__ import annotations

from pathlib import Path

from ..atomicio import atomic_output
from ..matrices import MATRICES

#: one colour per matrix, the same in every figure
COLOURS = {"H_L": "#6a3d9a", "H_o": "#ff7f00", "H_F": "#e31a1c"}
#: the order of the matrices in every legend and panel: that of the tables (H_L, H_o, H_F)
MATRIX_ORDER = MATRICES
TEX = {"H_L": r"$H_L$", "H_o": r"$H_o$", "H_F": r"$H_F$"}
#: figure size in inches and resolution: PNGs are FIGSIZE × DPI pixels
FIGSIZE = (7.0, 4.8)
DPI = 150
X_LABEL = {"samplesize": "sample size n", "width": "minimal width (2 hidden layers of this width)",
           "depth": "depth (number of hidden layers)", "channels": "channels of every conv layer"}
#: the font size of every title
TITLE_SIZE = 8.5
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


def fit_text(fig, text: str, *, fontsize: float, width: float = 0.92) -> str:
    """``text`` with each line broken at spaces so that, drawn at ``fontsize``, no line is
    wider than ``width`` × the figure's width (measured with the figure's renderer)."""
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    limit = width * fig.bbox.width

    def wide(line: str) -> bool:
        return Text(text=line, fontsize=fontsize, figure=fig).get_window_extent(renderer).width > limit

    def pieces(word: str) -> list[str]:
        """A word wider than the line (a long path), cut after a separator where one fits."""
        if not wide(word):
            return [word]
        out, start = [], 0
        while start < len(word):
            end = start + 1
            while end < len(word) and not wide(word[start:end + 1]):
                end += 1
            if end < len(word):
                cut = max(word.rfind(sep, start, end) for sep in "/\\_-,.:") + 1
                end = cut if cut > start else end
            out.append(word[start:end])
            start = end
        return out

    lines = []
    for line in text.split("\n"):
        current = ""
        for word in (p for w in line.split(" ") for p in pieces(w)):
            trial = f"{current} {word}" if current else word
            if current and wide(trial):
                lines.append(current)
                current = word
            else:
                current = trial
        lines.append(current)
    return "\n".join(lines)


def set_title(ax, text: str, *, fontsize: float = TITLE_SIZE) -> None:
    """Title ``ax`` with ``text`` broken into lines that fit inside the figure: an axes title is
    centred on the axes, so each line may be at most twice the distance from that centre to
    the nearer edge of the figure (measured after a layout pass)."""
    fig = ax.figure
    fig.tight_layout()
    box = ax.get_position()
    centre = (box.x0 + box.x1) / 2
    ax.set_title(fit_text(fig, text, fontsize=fontsize, width=0.96 * 2 * min(centre, 1 - centre)), fontsize=fontsize)


def legend_below(ax, *, per_matrix: bool, fontsize: float = 7.5, handles=None, labels=None):
    """The legend of ``ax`` at the bottom of the figure, under the x label and off the data,
    laid out so that the matrices read H_L, H_o, H_F both across and down: ``per_matrix``,
    one column per matrix (its entries one below the other); otherwise the matrices one
    below the other in the first column. Entries that name no matrix (tolerance, loss…)
    take the last column; short columns are padded with blank entries. Lays the figure out
    (``tight_layout`` above the legend): call it last."""
    from matplotlib.lines import Line2D

    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    groups = {name: [] for name in MATRIX_ORDER}
    rest = []
    for handle, label in zip(handles, labels):
        name = next((m for m in MATRIX_ORDER if TEX[m] in label), None)
        (groups[name] if name else rest).append((handle, label))
    matrices = [g for g in groups.values() if g]
    columns = (matrices if per_matrix else [[e for g in matrices for e in g]]) + ([rest] if rest else [])
    depth = max(len(c) for c in columns)
    blank = (Line2D([], [], alpha=0.0), "")
    entries = [e for c in columns for e in c + [blank] * (depth - len(c))]
    return legend_at_bottom(ax.figure, [h for h, _ in entries], [lab for _, lab in entries], ncol=len(columns),
                            fontsize=fontsize)


def legend_at_bottom(fig, handles, labels, *, ncol: int, fontsize: float = 7.5):
    """A figure legend at the bottom, with the panels laid out above it (``tight_layout``):
    nothing of the legend covers data. Call it last."""
    legend = fig.legend(handles, labels, ncol=ncol, fontsize=fontsize, loc="lower center",
                        bbox_to_anchor=(0.5, 0.01), framealpha=0.85)
    height = legend.get_window_extent(fig.canvas.get_renderer()).height / fig.bbox.height
    fig.tight_layout(rect=(0.0, height + 0.015, 1.0, 1.0))
    return legend


def legend_right(ax, *, fontsize: float = 6.5):
    """The legend of ``ax`` to its right, outside the data (``tight_layout`` makes room)."""
    return ax.legend(fontsize=fontsize, loc="center left", bbox_to_anchor=(1.01, 0.5), framealpha=0.85,
                     borderaxespad=0.0)


def thin_ticks(ax, *, pad: float = 3.0) -> None:
    """Keep only x ticks whose labels do not overprint each other: from 0 outward, a tick is
    kept when its label clears every label kept so far by ``pad`` points (a symmetric-log
    axis puts 0, ±cut and the first decades a few points apart). Call after the layout."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    limits = ax.get_xlim()
    lo, hi = sorted(limits)
    ticks = [float(t) for t in ax.xaxis.get_majorticklocs() if lo <= t <= hi]
    if len(ticks) < 2:
        return
    formatter = ax.xaxis.get_major_formatter()
    formatter.set_locs(ticks)
    label = ax.xaxis.get_major_ticks()[0].label1
    gap = pad * fig.dpi / 72.0
    kept, spans = [], []
    for t in sorted(ticks, key=abs):
        x = ax.transData.transform((t, 0.0))[0]
        text = label.__class__(text=formatter(t), fontproperties=label.get_fontproperties(), figure=fig)
        half = text.get_window_extent(renderer).width / 2 + gap / 2
        if all(x + half <= a or x - half >= b for a, b in spans):
            kept.append(t)
            spans.append((x - half, x + half))
    ax.set_xticks(sorted(kept))
    ax.set_xlim(limits)
