"""The curvlinops route: ranks of H_L, H_o, H_F with PyTorch and curvlinops, the peer of bench_peers.py.

    /tmp/peerenv/bin/python benchmarks/peer_curvlinops.py NET.npz [--chunk C] [--ho-from gram|ggn]
    /tmp/peerenv/bin/python benchmarks/peer_curvlinops.py --versions

Run by an interpreter that has ``torch`` and ``curvlinops-for-pytorch`` — never the
project's: torch is no dependency of hessrank, and this script imports nothing of it.
``bench_peers.py`` writes ``NET.npz`` from hessrank's own data and initial parameters:
``X`` (n, d), ``Y`` (n, K), ``widths`` (d, M_1, …, K), ``activation``, ``bias`` and the
leaves ``W1, b1, W2, …`` in hessrank's layout (``W_l`` of shape (M_l, M_{l-1}), which is
``torch.nn.Linear.weight``'s), so the torch network computes the same
:math:`f_\\theta(x) = W_L\\,\\sigma(\\cdots\\sigma(W_1 x + b_1)\\cdots) + b_L`.

What a competent curvlinops user writes for the three ranks, all in float64:

* the loss is ``MSELoss(reduction="sum")``, :math:`\\sum_n \\lVert f_n - y_n\\rVert^2`:
  twice hessrank's :math:`\\sum_n \\tfrac12\\lVert f_n - y_n\\rVert^2`, so every matrix
  below is exactly twice hessrank's and every rank the same (the cut is relative).
  ``GGNLinearOperator`` supports only torch's own losses, hence this form, not a custom ½;
* H_L: ``HessianLinearOperator @ I`` (dense p×p), H_o's matrix ``G = GGNLinearOperator @ I``
  (:math:`\\sum_n J_n^\\top (\\nabla^2\\ell) J_n`), H_F = H_L − G; the identity is applied
  ``--chunk`` columns at a time (vmap over all p columns at once needs several GB more);
* rank(H_o) from the nK×nK Gram matrix :math:`2 J J^\\top` (``--ho-from gram``, the
  default: ``TransposedJacobianLinearOperator @ I_{nK}`` gives :math:`J^\\top`; its non-zero
  eigenvalues are G's, and an nK×nK eigenproblem instead of a third p×p one is what a user
  who knows H_o = JᵀΛJ does) or from G itself (``--ho-from ggn``);
* eigenvalues by ``torch.linalg.eigvalsh``; rank = #{|λ| > max|λ|·p·eps} (NumPy's
  ``matrix_rank`` rule, hessrank's default; the Gram matrix's missing p − nK eigenvalues
  are zeros, and its cut uses p, as hessrank's does).

Only documented curvlinops APIs (the operators' constructors and ``@``), with
``check_deterministic=False``: the network and data are deterministic, and the default
check would add products to the peer's time. Prints one JSON object: ranks, p, seconds
(in-process, after imports; and per step), peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import time
from importlib.metadata import version

import numpy as np
import torch

EPS = float(np.finfo(np.float64).eps)
ACTIVATIONS = {"linear": torch.nn.Identity, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh,
               "sigmoid": torch.nn.Sigmoid, "elu": torch.nn.ELU, "leaky_relu": lambda: torch.nn.LeakyReLU(0.01)}


def network(npz) -> torch.nn.Sequential:
    """The MLP of ``npz`` with its weights: Linear, σ, …, Linear (no σ after the last)."""
    widths = [int(w) for w in npz["widths"]]
    bias, activation = bool(npz["bias"]), str(npz["activation"])
    layers = []
    for l, (m_in, m_out) in enumerate(zip(widths[:-1], widths[1:]), start=1):
        linear = torch.nn.Linear(m_in, m_out, bias=bias, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(npz[f"W{l}"]))
            if bias:
                linear.bias.copy_(torch.from_numpy(npz[f"b{l}"]))
        layers.append(linear)
        if l < len(widths) - 1:
            layers.append(ACTIVATIONS[activation]())
    return torch.nn.Sequential(*layers)


def dense(op, size: int, chunk: int) -> torch.Tensor:
    """``op @ I`` as a dense (op.shape[0], size) matrix, ``chunk`` columns of I at a time."""
    out = torch.empty(op.shape[0], size, dtype=torch.float64)
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        cols = torch.zeros(size, stop - start, dtype=torch.float64)
        cols[start:stop] = torch.eye(stop - start, dtype=torch.float64)
        out[:, start:stop] = op @ cols
    return out


def rank(eigenvalues: torch.Tensor, size: int) -> int:
    """#{|λ| > max|λ|·size·eps}: hessrank's default rule (eigenvalues not given are zeros)."""
    mags = eigenvalues.abs()
    return int((mags > mags.max() * size * EPS).sum())


def curvlinops_ranks(path: str, *, chunk: int, ho_from: str) -> dict:
    """Ranks of H_L, H_o, H_F of the network and data in ``path``, the curvlinops route."""
    # imported here: the other routes of bench_torch.py build their network with ``network`` alone
    from curvlinops import GGNLinearOperator, HessianLinearOperator, TransposedJacobianLinearOperator

    t0 = time.perf_counter()
    steps = {}
    with np.load(path, allow_pickle=False) as npz:
        model = network(npz)
        X, Y = torch.from_numpy(npz["X"]), torch.from_numpy(npz["Y"])
    params = [q for q in model.parameters() if q.requires_grad]
    p, nK = sum(q.numel() for q in params), Y.numel()
    data = [(X, Y)]  # one batch: the whole data set
    loss = torch.nn.MSELoss(reduction="sum")

    def step(name, t):
        steps[name] = round(time.perf_counter() - t, 3)
        return time.perf_counter()

    t = time.perf_counter()
    H = dense(HessianLinearOperator(model, loss, params, data, check_deterministic=False), p, chunk)
    t = step("H_L = Hessian @ I", t)
    ranks = {"H_L": rank(torch.linalg.eigvalsh(H), p)}
    t = step("eigvalsh of H_L", t)
    G = dense(GGNLinearOperator(model, loss, params, data, check_deterministic=False), p, chunk)
    t = step("G = GGN @ I", t)
    H_F = H.sub_(G)  # H_F = H_L − G in H_L's memory: H_L's eigenvalues are already taken
    if ho_from == "gram":
        del G
        Jt = dense(TransposedJacobianLinearOperator(model, params, data, check_deterministic=False), nK, chunk)
        ranks["H_o"] = rank(torch.linalg.eigvalsh(2.0 * (Jt.T @ Jt)), p)  # G = 2 JᵀJ: its non-zero spectrum
        t = step("H_o: Jᵀ = TransposedJacobian @ I, eigvalsh of 2 J Jᵀ", t)
    else:
        ranks["H_o"] = rank(torch.linalg.eigvalsh(G), p)
        del G
        t = step("H_o: eigvalsh of G", t)
    ranks["H_F"] = rank(torch.linalg.eigvalsh(H_F), p)
    step("eigvalsh of H_F", t)
    return {"ranks": {m: ranks[m] for m in ("H_L", "H_o", "H_F")}, "p": p,
            "seconds": time.perf_counter() - t0, "steps": steps}


def versions() -> dict:
    """torch's and curvlinops' versions, torch's BLAS and LAPACK, its thread count."""
    config = torch.__config__.show()
    infos = re.findall(r"\b(?:BLAS|LAPACK)_INFO=\w+", config)
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", config)
    blas = ", ".join(infos) + (f" (MKL {mkl.group(1)})" if mkl else "")
    return {"torch": torch.__version__, "curvlinops": version("curvlinops-for-pytorch"),
            "blas": blas or "unknown", "threads": torch.get_num_threads()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("npz", nargs="?", help="the network and data, as bench_peers.py writes them")
    ap.add_argument("--chunk", type=int, default=1024, help="columns of the identity per product (default 1024)")
    ap.add_argument("--ho-from", choices=("gram", "ggn"), default="gram",
                    help="rank(H_o) from the nK×nK Gram matrix (default) or the p×p GGN matrix")
    ap.add_argument("--versions", action="store_true", help="print torch's and curvlinops' versions and BLAS, exit")
    a = ap.parse_args(argv)
    if a.versions:
        print(json.dumps(versions()))
        return 0
    if a.npz is None:
        ap.error("give NET.npz (or --versions)")
    torch.set_default_dtype(torch.float64)
    out = curvlinops_ranks(a.npz, chunk=a.chunk, ho_from=a.ho_from)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
