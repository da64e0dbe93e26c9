"""`hessian-rank run` against the best peer (the curvlinops route), whole processes.

    python3 benchmarks/bench_peers.py --peer-python /tmp/peerenv/bin/python [--sizes 4560,8040]
    python3 benchmarks/bench_peers.py --export-only DIR [--sizes ...]      # the .npz files only

For each size (p = 4560: widths 40,40; p = 8040: widths 60,60; both Gaussian n = 100,
d = 64, K = 10, mse — ``--net UNITS:K`` adds any other, e.g. ``10,10:3`` for a quick check):

1. writes ``NET.npz`` — X, Y, the widths and the leaves W1, W2, … of hessrank's own
   ``build(cfg)``, the data and initial parameters ``hessian-rank run`` uses;
2. times ``peer_curvlinops.py NET.npz`` under ``--peer-python`` (an interpreter with torch
   and curvlinops-for-pytorch; the project never imports torch): Hessian and GGN operators
   applied to the identity, H_F = H_L − GGN, rank(H_o) from the Gram matrix, ``eigvalsh``;
3. times ``hessian-rank run … --json`` with the default method (``auto``), ``--method dense``
   and ``--method matrix-free``, each first with an empty compilation cache folder
   (``HESSRANK_COMPILE_CACHE=DIR``; the run that fills it, printed as "cold") and then warm.

Every timed command is a fresh process (``bench_speed.timed``: wall time including Python
start-up and imports, CPU = user + system and the peak resident set of the child itself,
from ``wait4``). OpenBLAS pins (``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``) are unset in
the children only. The machine may be shared: the load average is printed before and after
each size. The ratio is curvlinops' wall time over ours (warm cache). Exit status 1 if any ranks
differ between curvlinops, the three methods and the predictions; 2 if the peer
interpreter is missing or lacks torch or curvlinops.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _report import command_line, markdown_table, write_report  # noqa: E402
from bench_speed import _load, timed  # noqa: E402  (the same timing as bench_speed.py)

import hessrank  # noqa: E402
from hessrank.measure import build  # noqa: E402
from hessrank.models.params import named_arrays, save_arrays  # noqa: E402

SIZES = {4560: ("40,40", 10), 8040: ("60,60", 10)}
N, DIM, LOSS = 100, 64, "mse"
MATRICES = ("H_L", "H_o", "H_F")


def config(units: str, K: int) -> hessrank.RunConfig:
    """The run of ``hessian-rank run --dataset gaussian --n 100 --dim 64 --units UNITS --K K --loss mse``."""
    return hessrank.RunConfig(dataset="gaussian", n=N, dim=DIM, K=K, units=hessrank.parse_units(units),
                              loss=LOSS).validate()


def export(cfg: hessrank.RunConfig, path: Path) -> int:
    """Write the data and initial network of ``cfg`` to ``path`` (``.npz``, peer_curvlinops's
    input: X, Y, widths, activation, bias and the leaves W1, b1, W2, …); return p."""
    data, model, theta = build(cfg)
    save_arrays(path, {"X": np.asarray(data.X, dtype=np.float64), "Y": np.asarray(data.Y, dtype=np.float64),
                       "widths": np.asarray(model.widths), "activation": np.asarray(model.activation),
                       "bias": np.asarray(model.bias), **named_arrays(model, theta)})
    return model.num_params


def _hessrank_cmd(units: str, K: int, method: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "hessrank.cli", "run", "--dataset", "gaussian", "--n", str(N), "--dim", str(DIM),
           "--units", units, "--K", str(K), "--loss", LOSS, "--json"]
    return cmd + (["--method", method] if method else [])


def peer_versions(python: str) -> dict | None:
    """torch's and curvlinops' versions and torch's BLAS under ``python``, or None if it lacks them."""
    try:
        done = subprocess.run([python, str(HERE / "peer_curvlinops.py"), "--versions"], capture_output=True,
                              text=True, timeout=300)
    except OSError:
        return None
    return json.loads(done.stdout) if done.returncode == 0 else None


def _ranks(r: dict) -> str:
    return " / ".join(str(r[m]) for m in MATRICES)


def compare(units: str, K: int, peer: str, workdir: Path, ok: list[bool], table: list[list]) -> None:
    """Time the curvlinops route and the three methods of ``run`` on one network; print rows."""
    npz = workdir / f"net-{units.replace(',', '-')}-{K}.npz"
    p = export(config(units, K), npz)
    print(f"\np = {p} (Gaussian n {N}, d {DIM}, widths {units}, K {K}, {LOSS}); load average {_load()}", flush=True)
    print(f"{'':34}{'wall s':>8}{'CPU s':>8}{'peak MiB':>10}{'cold wall s':>13}{'curvlinops/ours':>17}"
          f"   ranks H_L / H_o / H_F   method")
    wall, cpu, rss, out = timed([peer, str(HERE / "peer_curvlinops.py"), str(npz)])
    theirs = json.loads(out)
    peer_wall = wall
    table.append([f"{p}", "curvlinops", f"{wall:.1f} s", f"{cpu:.1f} s", f"{rss / 2**30:.2f} GiB", "",
                  _ranks(theirs["ranks"])])
    print(f"{'curvlinops (Hessian, GGN @ I)':34}{wall:>8.1f}{cpu:>8.1f}{rss / 2**20:>10.0f}{'':>13}{'':>17}   "
          f"{_ranks(theirs['ranks'])}", flush=True)
    for method in (None, "dense", "matrix-free"):
        with tempfile.TemporaryDirectory() as cache:
            cold = timed(_hessrank_cmd(units, K, method), cache)[0]  # fills the cache
            wall, cpu, rss, out = timed(_hessrank_cmd(units, K, method), cache)
        res = json.loads(out)
        same = res["ranks"] == theirs["ranks"] and all(res["ranks"][m] == res["predictions"][m] for m in MATRICES)
        ok.append(same)
        name = f"hessrank {method or 'default (auto)'}, warm"
        print(f"{name:34}{wall:>8.1f}{cpu:>8.1f}{rss / 2**20:>10.0f}{cold:>13.1f}{peer_wall / wall:>16.1f}×   "
              f"{_ranks(res['ranks'])}{'' if same else ' (DIFFERENT)'}   {res['method']}", flush=True)
        label = {None: f"default (auto → {res['method']})", "dense": "`--method dense`",
                 "matrix-free": "`--method matrix-free`"}[method]
        table.append([f"{p}", label, f"{wall:.1f} s ({cold:.1f})", f"{cpu:.1f} s", f"{rss / 2**30:.2f} GiB",
                      f"{peer_wall / wall:.1f}×", "same" if same else f"{_ranks(res['ranks'])} (different)"])
    pred = res["predictions"]
    print(f"predicted {_ranks(pred)}; curvlinops in-process {theirs['seconds']:.1f} s: "
          + ", ".join(f"{k} {v:.1f}" for k, v in theirs["steps"].items()), flush=True)
    print(f"load average after p = {p}: {_load()} (a run that another job overlapped is not a quiet measurement)",
          flush=True)


def _nets(args) -> list[tuple[str, int]]:
    nets = [SIZES[int(s)] for s in args.sizes.split(",") if s] if args.sizes else []
    for spec in args.net:
        units, _, K = spec.partition(":")
        nets.append((units, int(K or 10)))
    return nets


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-python", help="an interpreter with torch and curvlinops-for-pytorch")
    ap.add_argument("--sizes", default="4560,8040", help=f"p of the networks to compare, of {sorted(SIZES)} "
                                                         "(default both; '' for none)")
    ap.add_argument("--net", action="append", default=[], metavar="UNITS:K",
                    help="another network, e.g. 10,10:3 (repeatable)")
    ap.add_argument("--export-only", metavar="DIR", help="only write the .npz of each network into DIR")
    args = ap.parse_args(argv)
    unknown = [s for s in args.sizes.split(",") if s and int(s) not in SIZES]
    if unknown:
        ap.error(f"--sizes {unknown[0]}: not one of {', '.join(map(str, sorted(SIZES)))} (use --net UNITS:K)")
    if args.export_only:
        for units, K in _nets(args):
            path = Path(args.export_only) / f"net-{units.replace(',', '-')}-{K}.npz"
            print(f"{path}: p = {export(config(units, K), path)}")
        return 0
    found = peer_versions(args.peer_python) if args.peer_python else None
    if found is None:
        print(f"no peer: --peer-python {args.peer_python or '(not given)'} is not an interpreter with torch and "
              "curvlinops-for-pytorch")
        return 2
    print(f"load average {_load()}; OpenBLAS pins unset in the timed processes; peer: torch {found['torch']}, "
          f"curvlinops {found['curvlinops']}, {found['blas']}, {found['threads']} threads")
    ok: list[bool] = []
    table: list[list] = []
    started = datetime.datetime.now(datetime.UTC)
    with tempfile.TemporaryDirectory() as workdir:
        for units, K in _nets(args):
            compare(units, K, args.peer_python, Path(workdir), ok, table)
    print(f"\nall ranks identical and as predicted: {all(ok)}")
    write_report("peers", command_line(__file__, argv), markdown_table(
        ["p", "what", "wall", "CPU", "peak", "curvlinops / ours", "ranks H_L / H_o / H_F"], table, "rlrrrrl"),
        started=started, notes=f"The peer: torch {found['torch']}, curvlinops {found['curvlinops']}, "
        f"{found['blas']}, {found['threads']} threads, in its own environment. Whole fresh processes; hessrank with "
        "its compilation cache warm (the cold run that filled it in brackets). All ranks identical and equal to "
        f"the predictions: {'yes' if all(ok) else 'NO'}.")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
