"""Figure of a stored training run: rank of H_L, H_o, H_F against the step, with the loss.

The step axis is symlog (linear below 1, logarithmic above) so that step 0, the
initialisation, is shown beside the log-spaced checkpoints. Measured ranks are lines
with dots; predictions are drawn by kind as in the sweep figures (exact: dots, bounds:
dashed, estimates: dotted); the training loss is the grey line on the right axis (log).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..store import ResultTable, row_kinds
from ..training import training_table_at
from .figures import draw_ranks
from .style import RC, legend_below, new_figure, save_figure, set_title

#: predictions along training: a dashed line per kind, so a flat prediction reads as a level
_PREDICTION_STYLE = {"exact": {"ls": "--", "lw": 1.2}, "bound": {"ls": "--", "lw": 1.2},
                     "estimate": {"ls": ":", "lw": 1.0}}


def training_title(meta: dict) -> str:
    """Two lines naming the training run."""
    c, t, d = meta["config"], meta["training"], meta["dataset"]["d"]
    if c.get("model"):
        net = f"model {c['model']}"
    elif c.get("arch") == "cnn":
        net = f"cnn {c['conv']}"
    else:
        net = "network " + "-".join(map(str, (d, *c["units"], c["K"])))
    line1 = f"rank along training: {c['dataset']}, n = {c['n']}, {c['loss']} loss, {net}"
    line2 = (f"{c.get('activation', '-')}, {'bias' if c.get('bias') else 'no bias'}, {c.get('init', '-')} init, "
             f"seed {c['seed']}; {t['optimizer']}, lr {t['lr']}, batch {t['train_batch']}")
    return line1 + "\n" + line2


def training_figure(rows, meta: dict):
    """The figure of one training run from its stored ``rows`` (a DataFrame) and ``meta`` (the JSON)."""
    import matplotlib

    rows = rows.sort_values("step")
    x = rows["step"].to_numpy(dtype=float)
    kinds = [row_kinds(row) for row in rows.to_dict("records")]
    with matplotlib.rc_context(RC):
        fig = new_figure()
        ax = fig.add_subplot(1, 1, 1)
        draw_ranks(ax, x, rows, kinds, styles=_PREDICTION_STYLE, zorder=3, marker="o", ms=3)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(left=0)
        ax.set_xlabel("training step (symlog: step 0 is the initialisation)")
        ax.set_ylabel("rank")
        ax.set_ylim(bottom=0)
        loss_ax = ax.twinx()
        loss = rows["loss"].to_numpy(dtype=float)
        loss_ax.plot(x, loss, color="0.35", lw=1.2, ls="-.", label="training loss (right axis)")
        if np.all(loss > 0):
            loss_ax.set_yscale("log")
        loss_ax.set_ylabel("training loss (mean over the n samples)")
        loss_ax.grid(False)
        handles, labels = ax.get_legend_handles_labels()
        h2, l2 = loss_ax.get_legend_handles_labels()
        set_title(ax, training_title(meta))
        legend_below(ax, per_matrix=True, fontsize=7, handles=handles + h2, labels=labels + l2)
    return fig


def plot_training(json_path) -> list[Path]:
    """Draw the training run stored at ``json_path`` (CSV beside it) as ``<stem>_rank.png``
    and ``.pdf`` beside the data; return the paths."""
    import pandas as pd

    json_path = Path(json_path)
    csv_path = json_path.with_suffix(".csv")
    meta = ResultTable(json_path.parent, json_path.stem, ()).read_meta() or {}
    if not csv_path.exists():
        raise ConfigError.invalid("task", "training", quoted=False,
                                  detail=f"no rows stored yet in {str(csv_path)!r}; run the training first")
    training_table_at(json_path).read_rows()  # a damaged table is refused here
    rows = pd.read_csv(csv_path, keep_default_na=False, dtype={"kind": str})
    if rows.empty:
        raise ConfigError.invalid("task", "training", quoted=False,
                                  detail=f"no rows stored yet in {str(csv_path)!r}; run the training first")
    return save_figure(training_figure(rows, meta), json_path.with_name(f"{json_path.stem}_rank"))
