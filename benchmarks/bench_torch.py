"""A PyTorch module through hessrank, next to the curvlinops route and power iteration, on the same module.

    python3 benchmarks/bench_torch.py [--sizes 4560,8040] [--large] [--repeat 3]

For each size (p = 4560: widths 40,40; p = 8040: widths 60,60; Gaussian n = 100, d = 64,
K = 10, mse, no bias) the data and initial weights of ``hessian-rank run`` are written to
``NET.npz`` (by a child process: the parent itself loads no JAX and computes nothing while a
route runs), and each route below runs as a fresh process on the torch ``nn.Sequential``
built from them (``peer_curvlinops.network``'s layout, float64):

* ``hessrank torch``: ``hessrank.hessian_ranks(module, None, X, Y)`` (PyTorch front end),
  ``method="matrix-free"`` (the baseline of the ratios) and ``auto`` (dense where it fits:
  without a predicted rank, auto cannot tell that the sketch is faster);
* ``… OPENBLAS_THREAD_TIMEOUT=4``: the first route with NumPy's idle BLAS threads put to sleep at
  once (OpenBLAS lets them spin for a while after each call, where they compete for the cores
  with PyTorch's products; not a default of hessrank, a setting of the user's environment);
* ``hessrank JAX``: the same network and weights as hessrank's own MLP (JAX front end, matrix-free);
* ``curvlinops route``: ``peer_curvlinops.py NET.npz`` when curvlinops is installed (dense
  Hessian and GGN operators applied to the identity, H_F = H_L − GGN, rank(H_o) from the nK×nK
  Gram matrix, ``torch.linalg.eigvalsh``); without curvlinops the same steps written with
  ``torch.func`` here (``--child torch-dense``);
* ``power iteration``: PyHessian's method for the top eigenvalue of H_L (Hessian-vector
  products by double backward, at most 100 iterations, relative tolerance 1e-3) — it gives
  no rank, so it is timed only for what it computes.

``--large`` adds p = 110,100 (widths 300,300, K = 3): hessrank's torch and JAX front ends,
matrix-free (the dense routes would need 97 GB per p×p matrix).

Wall time is the whole child process (Python start-up, imports, exit); calculation time is the
child's own measurement from the data in memory to the ranks, after the imports at the top of
the route (what the call imports on first use is in it); CPU = user + system and the peak
resident set of the child itself (``wait4``). OpenBLAS pins (``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``) are
unset in the children only. At the small sizes every route runs ``--repeat`` times (3), the
routes in turn, and the medians are shown; the large size runs once. The machine may be
shared: the load average is printed. Exit
status 1 if any ranks differ between the routes.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _report import cpu_model  # noqa: E402
from bench_speed import _load, timed  # noqa: E402

SIZES = {4560: ("40,40", 10), 8040: ("60,60", 10)}
LARGE = ("300,300", 3)
MATRICES = ("H_L", "H_o", "H_F")


# --------------------------------------------------------------------------- children (one route each)
def _module_and_data(path: str):
    import torch
    from peer_curvlinops import network

    with np.load(path, allow_pickle=False) as npz:
        return network(npz), torch.from_numpy(npz["X"]), torch.from_numpy(npz["Y"]), dict(npz)


def child_hessrank_torch(path: str, method: str) -> dict:
    import hessrank

    module, X, Y, _ = _module_and_data(path)
    t = time.perf_counter()
    res = hessrank.hessian_ranks(module, None, X, Y, loss="mse", method=method)
    return {"ranks": {m: res.ranks[m].rank for m in MATRICES}, "seconds": time.perf_counter() - t,
            "method": res.method, "certified": not res.uncertified}


def child_hessrank_jax(path: str, method: str) -> dict:
    import hessrank
    from hessrank.measure import measure_model

    with np.load(path, allow_pickle=False) as npz:
        widths = tuple(int(w) for w in npz["widths"])
        theta = np.concatenate([npz[f"W{l}"].ravel() for l in range(1, len(widths))])
        X, Y = npz["X"], npz["Y"]
    t = time.perf_counter()
    res = measure_model(hessrank.MLP(widths=widths), theta, X, Y, loss="mse", method=method)
    return {"ranks": {m: res.ranks[m].rank for m in MATRICES}, "seconds": time.perf_counter() - t,
            "method": res.method, "certified": not res.uncertified}


def child_torch_dense(path: str, chunk: int = 256) -> dict:
    """The curvlinops route's steps with torch.func: H = ∇²L @ I, G = JᵀΛJ @ I (MSELoss(sum): Λ = 2I),
    H_F = H − G, rank(H_o) from 2 J Jᵀ, eigenvalues by torch.linalg.eigvalsh."""
    import torch
    from torch.func import functional_call, grad, jacrev, jvp, vjp, vmap

    module, X, Y, _ = _module_and_data(path)
    t0 = time.perf_counter()
    names = [k for k, _ in module.named_parameters()]
    params = {k: v.detach() for k, v in module.named_parameters()}
    p = sum(v.numel() for v in params.values())
    eps = float(np.finfo(np.float64).eps)

    def unflat(t):
        out, start = {}, 0
        for k in names:
            out[k] = t[start:start + params[k].numel()].view_as(params[k])
            start += params[k].numel()
        return out

    theta = torch.cat([params[k].reshape(-1) for k in names])
    f = lambda t: functional_call(module, unflat(t), (X,))                       # noqa: E731
    loss = lambda t: ((f(t) - Y) ** 2).sum()                                      # noqa: E731
    _, jv = vjp(lambda t: f(t), theta)
    hvp = vmap(lambda v: jvp(grad(loss), (theta,), (v,))[1])
    ggn = vmap(lambda v: jv(2.0 * jvp(f, (theta,), (v,))[1])[0])

    def dense(op):
        out = torch.empty(p, p, dtype=torch.float64)
        for lo in range(0, p, chunk):
            hi = min(lo + chunk, p)
            out[lo:hi] = op(torch.eye(p, dtype=torch.float64)[lo:hi])
        return out

    def rank(lam, size):
        mags = lam.abs()
        return int((mags > mags.max() * size * eps).sum())

    H = dense(hvp)
    ranks = {"H_L": rank(torch.linalg.eigvalsh(H), p)}
    H -= dense(ggn)
    J = jacrev(f)(theta).reshape(-1, p)
    ranks["H_o"] = rank(torch.linalg.eigvalsh(2.0 * (J @ J.T)), p)
    ranks["H_F"] = rank(torch.linalg.eigvalsh(H), p)
    return {"ranks": ranks, "seconds": time.perf_counter() - t0}


def child_power(path: str, max_iter: int = 100, tol: float = 1e-3) -> dict:
    """PyHessian's power iteration for the top eigenvalue of H_L (double backward)."""
    import torch

    module, X, Y, _ = _module_and_data(path)
    t0 = time.perf_counter()
    params = [q for q in module.parameters()]
    loss = 0.5 * ((module(X) - Y) ** 2).sum()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    torch.manual_seed(0)
    v = [torch.randn_like(q) for q in params]
    eig, steps = None, 0
    while steps < max_iter:
        steps += 1
        norm = torch.sqrt(sum((a * a).sum() for a in v))
        v = [a / norm for a in v]
        Hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        new = float(sum((a * b).sum() for a, b in zip(Hv, v)))
        v = [h.detach() for h in Hv]
        if eig is not None and abs(new - eig) / (abs(eig) + 1e-6) < tol:
            eig = new
            break
        eig = new
    return {"top_H_L": eig, "iterations": steps, "seconds": time.perf_counter() - t0}


def child(argv) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("route", choices=("export", "hessrank-torch", "hessrank-jax", "torch-dense", "power"))
    ap.add_argument("npz")
    ap.add_argument("--method", default="auto")
    ap.add_argument("--net", default="", help="export: UNITS:K")
    a = ap.parse_args(argv)
    if a.route == "export":   # in a process of its own: the parent loads no JAX and leaves no busy threads
        from bench_peers import config, export

        units, K = a.net.split(":")
        print(json.dumps({"p": export(config(units, int(K)), Path(a.npz))}))
        return 0
    if a.route != "hessrank-jax":
        import torch
        torch.set_default_dtype(torch.float64)
    if a.route == "hessrank-torch":
        out = child_hessrank_torch(a.npz, a.method)
    elif a.route == "hessrank-jax":
        out = child_hessrank_jax(a.npz, a.method)
    elif a.route == "torch-dense":
        out = child_torch_dense(a.npz)
    else:
        out = child_power(a.npz)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out))
    return 0


# --------------------------------------------------------------------------- the parent
def _row(label, wall, cpu, rss, out, base=None):
    """One route's line (printed) and its report row; ``base`` = (wall, in-process) of the first route."""
    ranks = out.get("ranks")
    shown = " / ".join(str(ranks[m]) for m in MATRICES) if ranks else f"top λ(H_L) {out['top_H_L']:.6g}"
    inside = out["seconds"]
    ratios = (f"{wall / base[0]:.2f}", f"{inside / base[1]:.2f}") if base else ("1", "1")
    extra = f"  {out['method']}{'' if out.get('certified', True) else ' (not certified)'}" if "method" in out else ""
    print(f"{label:28}{wall:>8.1f}{inside:>8.1f}{cpu:>8.1f}{rss / 2**20:>10.0f}{ratios[0]:>8}x{ratios[1]:>7}x"
          f"   {shown}{extra}", flush=True)
    return [label, f"{wall:.1f}", f"{inside:.1f}", f"{cpu:.1f}", f"{rss / 2**20:.0f}", *ratios, shown + extra]


REPORT_ROWS: list[list[str]] = []


def compare(label: str, units: str, K: int, routes, folder: Path, me: list[str], repeat: int = 1) -> bool:
    """Each route ``repeat`` times, the routes in turn (a drift of the machine's speed reaches every
    route alike); per route the medians of wall, calculation and CPU time and of peak memory."""
    path = folder / f"{units.replace(',', '-')}-{K}.npz"
    p = json.loads(timed([*me, "export", str(path), "--net", f"{units}:{K}"])[3].strip().splitlines()[-1])["p"]
    times = "" if repeat == 1 else f"; medians of {repeat} runs"
    print(f"\n{label}: p = {p} (Gaussian n 100, d 64, widths {units}, K {K}, mse){times}; load {_load()}",
          flush=True)
    print(f"{'':28}{'wall s':>8}{'calc s':>8}{'CPU s':>8}{'peak MiB':>10}{'wall/':>9}{'calc/':>8}"
          "   ranks H_L / H_o / H_F (ratios: to hessrank torch)")
    runs = {name: [] for name, _ in routes(path)}
    for _ in range(repeat):
        for name, cmd in routes(path):
            wall, cpu, rss, out = timed(cmd)
            runs[name].append((wall, cpu, rss, json.loads(out.strip().splitlines()[-1])))
    ranks, base = [], None
    for name, results in runs.items():
        wall, cpu, rss = (statistics.median(r[i] for r in results) for i in range(3))
        outs = [r[3] for r in results]
        out = {**outs[0], "seconds": statistics.median(o["seconds"] for o in outs)}
        REPORT_ROWS.append([f"{p}", *_row(name, wall, cpu, rss, out, base)])
        if base is None:
            base = (wall, out["seconds"])
        ranks += [o["ranks"] for o in outs if "ranks" in o]
    print(f"load after: {_load()}")
    same = all(r == ranks[0] for r in ranks)
    if not same:
        print("RANKS DIFFER between the routes")
    return same


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4560,8040", help="of 4560, 8040 (default both; '' for none)")
    ap.add_argument("--large", action="store_true", help="also p = 110,100, matrix-free (about 5 GB, minutes)")
    ap.add_argument("--report", action="store_true", help="write the table to docs/performance/torch.md")
    ap.add_argument("--net", default="", help="UNITS:K, one more network for a quick check (e.g. 10,10:3)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each route at the small sizes (medians shown; "
                                                          "the large size runs once)")
    a = ap.parse_args(argv)
    if a.repeat < 1:
        ap.error(f"--repeat {a.repeat}: give a whole number of runs >= 1")
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    have_curvlinops = find_spec("curvlinops") is not None
    print(f"CPU: {cpu_model()}; Python {platform.python_version()}")
    import torch
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads); curvlinops "
          f"{'installed' if have_curvlinops else 'not installed: its route written with torch.func'}")

    def small_routes(path):
        peer = ([sys.executable, str(HERE / "peer_curvlinops.py"), str(path)] if have_curvlinops
                else [*me, "torch-dense", str(path)])
        return [("hessrank torch (matrix-free)", [*me, "hessrank-torch", str(path), "--method", "matrix-free"]),
                ("… OPENBLAS_THREAD_TIMEOUT=4", ["env", "OPENBLAS_THREAD_TIMEOUT=4", *me, "hessrank-torch", str(path),
                                                 "--method", "matrix-free"]),
                ("hessrank torch (auto)", [*me, "hessrank-torch", str(path)]),
                ("hessrank JAX (matrix-free)", [*me, "hessrank-jax", str(path), "--method", "matrix-free"]),
                ("curvlinops route" if have_curvlinops else "curvlinops route (torch.func)", peer),
                ("power iteration (top λ)", [*me, "power", str(path)])]

    def large_routes(path):
        return [("hessrank torch (matrix-free)", [*me, "hessrank-torch", str(path), "--method", "matrix-free"]),
                ("hessrank JAX (matrix-free)", [*me, "hessrank-jax", str(path), "--method", "matrix-free"])]

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(s) for s in a.sizes.split(",") if s.strip()]:
            units, K = SIZES[size]
            ok &= compare(f"[p = {size}]", units, K, small_routes, Path(tmp), me, a.repeat)
        if a.net:
            units, K = a.net.split(":")
            ok &= compare("[--net]", units, int(K), small_routes, Path(tmp), me, a.repeat)
        if a.large:
            ok &= compare("[large]", *LARGE, large_routes, Path(tmp), me)
    if a.report:
        from _report import command_line, markdown_table, write_report

        table = markdown_table(["p", "route", "wall s", "calculation s", "CPU s", "peak MiB",
                                "wall / hessrank torch", "calculation / hessrank torch", "ranks H_L / H_o / H_F"],
                               REPORT_ROWS, "rlrrrrrrl")
        write_report("torch", command_line(__file__), table,
                     notes="One torch module (float64) per size, every route a fresh process. Wall: the whole "
                           "process, from the interpreter's start to its exit (the imports its route needs: torch; "
                           "JAX for the JAX front end only; curvlinops for its route; the garbage collection at "
                           "exit). Calculation: inside the process, after the imports at "
                           "the top of the route, from the data in memory to the ranks (a first call: what the "
                           "call itself imports on first use is in it). CPU = user + system time of the process. "
                           "Power iteration gives the top eigenvalue of H_L only. At p = 4560 and 8040 each route ran "
                           f"{a.repeat} times, in turn, and the medians are shown; the large size ran once.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
