"""Build ``hessian_rank.ipynb`` from the cells below and execute it in place (nbclient).

    python3 tools/build_notebook.py          # rewrite and run the notebook, saving its outputs
    python3 tools/build_notebook.py --no-run # only rewrite the cells

Every theory step sits beside the one library call that computes it; the notebook
re-implements nothing. Cells that assert a rank compare a computed rank with its
prediction, so running it is a test (tests/test_notebook.py does, in CI).
"""

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "hessian_rank.ipynb"

CELLS = [
    ("md", r"""# The rank of neural-network Hessian maps, step by step

This notebook walks through the theory of the rank of the loss Hessian $H_L$, its
outer-product (Gauss–Newton) part $H_o$ and its functional part $H_F$, and computes each
piece with **hessrank**'s public API. It runs offline (scikit-learn's bundled digits) in
well under three minutes on a laptop CPU.

**Setup.** A network $f_\theta : \mathbb{R}^d \to \mathbb{R}^K$ with parameters
$\theta \in \mathbb{R}^p$, data $x_1,\dots,x_n$ with targets $y_i$, and the loss
$L(\theta) = \sum_i \ell(f_\theta(x_i), y_i)$ (a sum: ranks do not care, values do).
Everything is float64: in float32 the eigenvalues that should vanish sit at $10^{-7}$ of
the largest, the ones that should not can be smaller, and the ranks come out wrong.
Every hessrank call computes in float64 (a scoped `jax.enable_x64`) and leaves JAX's
configuration as it was; this notebook also switches its own JAX code to float64."""),
    ("code", r"""import numpy as np
import pandas as pd
import jax
import hessrank
from hessrank import RunConfig

jax.config.update("jax_enable_x64", True)   # for this notebook's own JAX code; hessrank needs no switch
print("float64 enabled:", jax.config.jax_enable_x64)
cfg = RunConfig(dataset="digits", n=100, dim=64, K=10, units=(10, 10), loss="mse", seed=1)
data = hessrank.load_dataset(cfg)          # first n samples of the first K classes, one-hot targets
print(f"n = {data.n}, d = {data.d}, K = {data.K}; X in [{data.X.min()}, {data.X.max()}]")"""),
    ("md", r"""## The input covariance and its rank $r$

$\Sigma = \sum_i x_i x_i^\top \in \mathbb{R}^{d\times d}$. Its rank $r$ enters every formula.
The digits are $8\times 8$ images whose border pixels are often zero in all samples, so
$r < d$ here. The rank is the number of eigenvalues above the tolerance
$\max|\lambda| \cdot d \cdot \varepsilon$ (NumPy's `matrix_rank` rule)."""),
    ("code", r"""cov = hessrank.covariance_rank(data.X)
r = cov.rank
print(f"r = rank(Σ) = {r} of d = {data.d}; tolerance {cov.tol:.2e}; gap at the cut {cov.gap_decades:.1f} decades")"""),
    ("md", r"""## The network and its parameter count $p$

A linear network without bias, $f(x) = W_3 W_2 W_1 x$ with $W_1 \in \mathbb{R}^{10\times 64}$,
$W_2 \in \mathbb{R}^{10\times 10}$, $W_3 \in \mathbb{R}^{10 \times 10}$: $L = 3$ weight
matrices, hidden widths $M_1 = M_2 = 10$, $p = 64\cdot 10 + 10 \cdot 10 + 10\cdot 10$."""),
    ("code", r"""model = hessrank.MLP(widths=(data.d, *cfg.units, data.K), activation="linear", bias=False)
theta = model.init(seed=cfg.seed, scheme="glorot")
loss = hessrank.get_loss(cfg.loss)
p = model.num_params
print("layers:", [shape for _, shape in model.shapes], " p =", p)"""),
    ("md", r"""## The decomposition $H_L = H_o + H_F$

With $J_i = \partial f_\theta(x_i)/\partial\theta \in \mathbb{R}^{K\times p}$,
$\Lambda_i = \nabla_f^2 \ell(f_i, y_i)$ and $g_i = \nabla_f \ell(f_i, y_i)$:

$$H_L = \nabla^2_\theta L, \qquad H_o = \sum_i J_i^\top \Lambda_i J_i, \qquad
H_F = \sum_i \sum_k [g_i]_k \,\nabla^2_\theta [f_\theta(x_i)]_k .$$

For the mean-squared error $\Lambda_i = I$ and $g_i = f_i - y_i$. The library computes each
matrix on its own — $H_L$ as the Hessian of the loss, $H_o$ from per-sample Jacobians,
$H_F$ as the Hessian of $\sum_i \langle g_i, f_\theta(x_i)\rangle$ with $g_i$ frozen — so
the identity is a check, not a definition."""),
    ("code", r"""H_L = hessrank.loss_hessian(model, loss, theta, data.X, data.Y, batch_size=50)
H_o = hessrank.outer_product_hessian(model, loss, theta, data.X, data.Y, batch_size=50)
H_F = hessrank.functional_hessian(model, loss, theta, data.X, data.Y, batch_size=50)
rel = np.abs(H_L - H_o - H_F).max() / np.abs(H_L).max()
print(f"max |H_L - H_o - H_F| / max |H_L| = {rel:.1e}")
assert rel < 1e-10"""),
    ("md", r"""## Their numerical ranks

A symmetric eigensolver gives each spectrum; the rank counts eigenvalues with
$|\lambda| > \max|\lambda|\cdot p\cdot\varepsilon$, and the gap
$\log_{10}(|\lambda_r|/|\lambda_{r+1}|)$ says how sharp the cut is."""),
    ("code", r"""ranks = {name: hessrank.numerical_rank(M) for name, M in (("H_L", H_L), ("H_o", H_o), ("H_F", H_F))}
for name, info in ranks.items():
    print(f"{name}: rank {info.rank} of {info.size}, tolerance {info.tol:.2e}, gap {info.gap_decades:.1f} decades")"""),
    ("md", r"""## The predictions

$K' = K$ for mse and log-cosh ($K - 1$ for softmax cross-entropy, which ignores a common
shift of the logits), $s = \min(r, K')$, $q = \min(r, K', M_1, \dots, M_{L-1})$,
$M = \sum_l M_l$:

$$\operatorname{rank} H_o = q\,(r + K' - q), \quad
\operatorname{rank} H_F = 2qM + 2qs - Lq^2, \quad
\operatorname{rank} H_L = 2qM - Lq^2 + q\,(r + K').$$"""),
    ("code", r"""pred = hessrank.predict_ranks(r=r, K=data.K, units=cfg.units, loss=cfg.loss)
print(f"K' = {pred.K_eff}, s = {pred.s}, q = {pred.q}, M = {pred.M}, L = {pred.L}  ->  kind: {pred.kind}")"""),
    ("md", "## Measured against predicted"),
    ("code", r"""table = pd.DataFrame({
    "measured rank": {k: ranks[k].rank for k in ranks},
    "predicted": {k: getattr(pred, k) for k in ranks},
    "p": p,
    "gap (decades)": {k: round(ranks[k].gap_decades, 1) for k in ranks},
})
print(table.to_string())
for k in ranks:   # a computed rank against its prediction: running the notebook is a test
    assert ranks[k].rank == getattr(pred, k), (k, ranks[k].rank, getattr(pred, k))"""),
    ("md", r"""## Why the rank is that rank: the spectrum

Sorted $|\lambda|$ of each matrix on a log scale, with the tolerance (dashed) and the cut
(dotted). For a linear network the spectrum falls off a cliff of many decades exactly at
the predicted rank."""),
    ("code", r"""%matplotlib inline
from hessrank.plotting import spectrum_figure

fig = spectrum_figure({k: v.eigenvalues for k, v in ranks.items()}, {k: v.rank for k, v in ranks.items()},
                      {k: v.tol for k, v in ranks.items()}, title="digits, 64-10-10-10 linear, mse", size=p)
fig"""),
    ("md", r"""## A width sweep, as in the paper

Two hidden layers of width $m$; rank divided by $p$ against $m$. Measured ranks are
lines, predictions are dots. `run_sweep` stores every point (CSV + JSON, atomic writes,
resumable) under `results/store/width/mse/digits/`."""),
    ("code", r"""from hessrank.sweeps import make_sweep, run_sweep
from hessrank.plotting import sweep_figure
import json

sweep = make_sweep("width", RunConfig(dataset="digits", n=50, dim=16, K=10, loss="mse", seed=1, batch_size=10),
                   widths="2:14:2")
outcome = run_sweep(sweep, out="results")
rows = pd.read_csv(outcome.table.csv_path)
print(rows[["width", "num_params", "rank_L", "pred_L", "rank_o", "pred_o", "rank_F", "pred_F"]].to_string(index=False))
assert (rows.rank_L == rows.pred_L).all() and (rows.rank_o == rows.pred_o).all() and (rows.rank_F == rows.pred_F).all()
fig = sweep_figure(rows, json.loads(outcome.table.json_path.read_text()), normalize=True)
fig"""),
    ("md", r"""## Beyond the theory: a ReLU network

With a non-linear activation no formula is known; the tool predicts proven upper
bounds instead (`kind = "bound"`, see `docs/theory.md`): every hidden ReLU neuron can be
rescaled without changing f (one null direction of $H_o$ each), and first-layer weights
orthogonal to the data change nothing. A measured rank may fall below a bound, never
above it. Worse, the spectrum may have no cliff, and then the rank depends on the
tolerance. Ranks at several relative tolerances make that visible: a rank stays
put while the tolerance moves inside its gap, and moves once the tolerance leaves it."""),
    ("code", r"""relu = hessrank.run(RunConfig(dataset="digits", n=100, dim=64, K=10, units=(10, 10), activation="relu", seed=1))
print(f"kinds: {relu.prediction.kinds}, bounds: {relu.prediction.bounds}")
for k, info in relu.ranks.items():  # a measured rank against its proven bound
    print(f"{k}: rank {info.rank} <= bound {getattr(relu.prediction, k)}")
    assert info.rank <= getattr(relu.prediction, k), (k, info.rank, getattr(relu.prediction, k))
rtols = [1e-15, 1e-13, 1e-11, 1e-9, 1e-7, 1e-5]
scan = pd.DataFrame({
    f"{net} {name}": [hessrank.linalg.rank_from_eigenvalues(info.eigenvalues, info.size, rtol=t).rank for t in rtols]
    for net, res in (("linear", ranks), ("relu", relu.ranks)) for name, info in res.items()
}, index=[f"rtol={t:g}" for t in rtols])
print(scan.T.to_string())
print("gap at the default cut (decades):", {k: None if v.gap_decades is None else round(v.gap_decades, 1)
                                             for k, v in relu.ranks.items()})"""),
    ("code", r"""fig = spectrum_figure(relu.spectra, {k: v.rank for k, v in relu.ranks.items()},
                      {k: v.tol for k, v in relu.ranks.items()}, title="digits, 64-10-10-10 ReLU, mse", size=relu.p)
fig"""),
    ("md", r"""**Reading it.** The linear network's ranks equal the formulas at the default tolerance.
On digits their gaps are about 5 decades for $H_L$ and $H_o$ (a few pixels barely vary
across the samples), so those ranks hold up to `rtol` ≈ 1e-13 and drop beyond; $H_F$,
with a 10-decade cliff, does not move at all. The ReLU network's ranks stay below their bounds
and drift with the tolerance. A rank is only meaningful with its
tolerance and its gap, which is why `hessian-rank run` always prints both.

Regenerate this notebook with its outputs: `python3 tools/build_notebook.py`."""),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    return nb


def execute(nb, cwd, timeout=600):
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-run", action="store_true", help="write the cells without executing them")
    args = ap.parse_args(argv)
    nb = build()
    if not args.no_run:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:  # the sweep's results go to a scratch folder
            execute(nb, tmp)
    nbformat.write(nb, NOTEBOOK)
    print(f"wrote {NOTEBOOK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
