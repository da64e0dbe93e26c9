"""Hessian ranks of CNNs against their number of parameters, as the channels grow.

The channel sweep (``hessian-rank sweep channels``) of a two-layer CNN (3×3 kernels,
valid padding, global average pooling before the dense head, so that the conv layers'
m² weights dominate p) on Fashion-MNIST images downscaled to 8×8, linear and ReLU, stored under
``--out`` (points already stored are read, not measured again). Then, for each network
and matrix, a least-squares fit of log rank against log p over the sweep gives the
growth exponent (rank ∝ p^a; p grows like the channels squared), and the figure shows p,
the measured ranks and the predictions (exact: dots; bounds: dashed) on log–log axes
with a √p reference line.

    python3 benchmarks/cnn_channels.py                       # measure (about 3–5 min on 2 cores), fit, draw
    python3 benchmarks/cnn_channels.py --figure docs/cnn_channels.png

Equivalent commands for one network:

    hessian-rank sweep channels --arch cnn --conv 2:3,2:3 --pool global --activation linear \\
        --dataset FashionMNIST --dim 64 --K 10 --n 100 --channels 2,3,4,6,8,11,16
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from hessrank import RunConfig
from hessrank.store import row_kinds
from hessrank.sweeps import make_sweep, run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import cpu_model  # noqa: E402

MATRICES = (("H_L", "L"), ("H_o", "o"), ("H_F", "F"))
COLORS = {"H_L": "tab:blue", "H_o": "tab:orange", "H_F": "tab:green"}


def sweep_rows(activation: str, args) -> list[dict]:
    """The stored rows of the channel sweep of one network (measured where missing)."""
    base = RunConfig(arch="cnn", conv="2:3,2:3", pool="global", activation=activation, dataset=args.dataset,
                     dim=args.dim, K=args.K, n=args.n, loss=args.loss, seed=args.seed)
    sweep = make_sweep("channels", base, channels=args.channels)
    outcome = run_sweep(sweep, out=args.out)
    return outcome.rows


def fit_exponent(p, ranks) -> float:
    """Slope of log rank against log p (least squares)."""
    p, ranks = np.asarray(p, float), np.asarray(ranks, float)
    keep = ranks > 0
    return float(np.polyfit(np.log(p[keep]), np.log(ranks[keep]), 1)[0])


def draw(results: dict, path: Path, *, n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.2), sharey=True)
    for ax, (activation, rows) in zip(np.atleast_1d(axes), results.items()):
        p = np.array([int(r["num_params"]) for r in rows])
        ax.plot(p, p, color="0.6", lw=1, label="p")
        ax.plot(p, np.sqrt(p) * (int(rows[-1]["rank_F"]) / np.sqrt(p[-1])), color="0.3", ls=":", lw=1.2,
                label="∝ √p")
        for name, s in MATRICES:
            ranks = np.array([int(r[f"rank_{s}"]) for r in rows])
            a = fit_exponent(p, ranks)
            ax.plot(p, ranks, "o-", color=COLORS[name], ms=4, label=f"{name} measured (∝ p^{a:.2f})")
            kinds = [row_kinds(r)[name] for r in rows]
            pred = np.array([int(r[f"pred_{s}"]) for r in rows])
            exact = np.array([k == "exact" for k in kinds])
            if exact.any():
                ax.plot(p[exact], pred[exact], "o", mfc="none", mec=COLORS[name], ms=9, label=f"{name} exact")
            if (~exact).any():
                ax.plot(p[~exact], pred[~exact], "--", color=COLORS[name], lw=1, label=f"{name} bound")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters p (channels m = 2 … 16 in both 3×3 conv layers)")
        ax.set_title(f"{activation} CNN, Fashion-MNIST 8×8, n = {n}")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7, loc="upper left")
    np.atleast_1d(axes)[0].set_ylabel("rank")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results", help="the result store (default results)")
    ap.add_argument("--dataset", default="FashionMNIST")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--K", type=int, default=10)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--loss", default="mse")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--channels", default="2,3,4,6,8,11,16")
    ap.add_argument("--figure", default="docs/cnn_channels.png")
    args = ap.parse_args(argv)
    print(f"CPU: {cpu_model()}")
    results = {}
    for activation in ("linear", "relu"):
        t0 = time.perf_counter()
        rows = sweep_rows(activation, args)
        results[activation] = rows
        print(f"\n{activation} CNN ({time.perf_counter() - t0:.1f} s): channels, p, ranks H_L/H_o/H_F, "
              "predictions (kind)")
        for r in rows:
            kinds = row_kinds(r)
            preds = " ".join(f"{r[f'pred_{s}']}({(kinds[m] or '-')[0]})" for m, s in MATRICES)
            print(f"  {r['channels']:>3} {r['num_params']:>6}  {r['rank_L']:>5} {r['rank_o']:>5} {r['rank_F']:>5}"
                  f"   {preds}")
        p = [int(r["num_params"]) for r in rows]
        wide = [i for i, r in enumerate(rows) if int(r["channels"]) >= 6]
        for label, idx in (("all points", range(len(rows))), ("channels ≥ 6", wide)):
            if len(idx) < 2:
                continue
            exps = ", ".join(f"{m} {fit_exponent([p[i] for i in idx], [int(rows[i][f'rank_{s}']) for i in idx]):.2f}"
                             for m, s in MATRICES)
            print(f"  growth exponent a in rank ∝ p^a ({label}): {exps}")
    draw(results, Path(args.figure), n=args.n)
    print(f"\nfigure: {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
