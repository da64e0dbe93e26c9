"""Run as a script with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before JAX
starts): the agreement battery on the host path and on 1, 2 and 4 devices, and the products of
operators whose samples are split over 1, 2 and 4 devices against the host's, as JSON on stdout."""

import contextlib
import csv
import io
import json
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

from hessrank import RunConfig
from hessrank.curvature import CurvatureOperator, JaxSource, jax_source
from hessrank.linalg import sketch_rank
from hessrank.matrices import MATRICES
from hessrank.measure import build, matrix_free_ranks
from hessrank.measure.blocks import resolve_blocks
from hessrank.models import get_loss

CASES = {  # a linear and a non-linear MLP, and a CNN with per-layer blocks
    "linear-mse": RunConfig(dataset="gaussian", n=12, dim=5, units=(6, 6), K=3, loss="mse"),
    "tanh-cross-bias": RunConfig(dataset="gaussian", n=10, dim=5, units=(5, 4), K=3, loss="cross",
                                 activation="tanh", bias=True),
    "cnn": RunConfig(dataset="gaussian", n=10, dim=36, K=3, arch="cnn", conv="2:3", activation="tanh"),
}
BLOCKS = {"cnn": "layers"}
#: the cases whose operators' products are compared with the host's, and on how many devices
PRODUCTS = {"tanh-cross-bias": (1, 4), "cnn": (1, 2, 4)}


def _summary(res) -> dict:
    return {"ranks": {m: r.rank for m, r in res.ranks.items()}, "tol": {m: r.tol for m, r in res.ranks.items()},
            "status": {m: d["status"] for m, d in res.details.items()},
            "blocks": {b: {m: r.rank for m, r in br.ranks.items()} for b, br in res.blocks.items()},
            "block_status": {b: {m: d["status"] for m, d in br.details.items()} for b, br in res.blocks.items()},
            "devices": res.devices, "product_devices": res.product_devices}


def _products(model, loss, theta, X, Y, counts) -> dict:
    """Per device count and operator: the largest difference of the rows ``V H`` from the host's (relative
    to their largest entry), and where the operator's data lives: per array the shards' shapes and
    devices, and the samples (weight 1) each device holds."""
    source = jax_source(model, loss, theta, X, Y)
    V = np.random.default_rng(1).standard_normal((5, source.p))
    out = {}
    for name in ("H_L", "H_F", "H_o"):
        ref = source.operator(name)(V)
        for n in counts:
            op = source.on_devices(jax.devices()[:n]).operator(name)
            out[f"{name}/{n}"] = {
                "error": float(np.abs(op(V) - ref).max() / np.abs(ref).max()),
                "shapes": [[list(s.data.shape) for s in a.addressable_shards] for a in op.data],
                "devices": [sorted(str(s.device) for s in a.addressable_shards) for a in op.data],
                "samples": sorted(float(np.asarray(s.data).sum()) for s in op.data[2].addressable_shards),
                "full": list(op.data[0].shape)}
    return out


#: a small matrix-free problem for the commands on 2 devices, all at the configuration of ``run``: a
#: width sweep's point of width 4, a training's checkpoint at step 0 (the initialisation), a grid's point
SMALL = ["--dataset", "gaussian", "--n", "8", "--dim", "4", "--K", "2", "--activation", "tanh", "--method",
         "matrix-free", "--batch-size", "8"]
COMMANDS = {
    "run": ["run", *SMALL, "--units", "4,4", "--json"],
    "spectrum": ["spectrum", *SMALL, "--units", "4,4", "--json", "--top-eigenvalues", "3", "--no-density",
                 "--no-trace"],
    "sweep": ["sweep", "width", *SMALL, "--widths", "4"],
    "train": ["train", *SMALL, "--units", "4,4", "--steps", "1", "--checkpoints", "0"],
}


def _command(args: list, out: Path) -> dict:
    """``hessian-rank args --out out``: its exit status, and its ranks and cuts (from the JSON printed,
    or the row stored under ``out``)."""
    from hessrank.cli import main

    printed = io.StringIO()
    SPLIT.clear()
    with contextlib.redirect_stdout(printed):
        code = main([*args, *(["--out", str(out)] if args[0] != "run" else [])])
    found = {"code": code, "split": sorted(set(SPLIT))}
    if "--json" in args:
        got = json.loads(printed.getvalue())
        if args[0] == "spectrum":
            return {**found, "ranks": {m: got[m]["rank"] for m in MATRICES},
                    "tol": {m: got[m]["tol"] for m in MATRICES}}
        return {**found, "ranks": got["ranks"], "tol": got["tolerance"], "devices": got["devices"]}
    return {**found, **_row(out)}


#: the numbers of devices the products were split over, since the last command began
SPLIT = []


def _record_splits() -> None:
    """Record in :data:`SPLIT` each split of a source's samples over devices."""
    on_devices = JaxSource.on_devices

    def recorded(self, devices):
        SPLIT.append(len(devices))
        return on_devices(self, devices)

    JaxSource.on_devices = recorded


def _row(out: Path) -> dict:
    """The ranks and cuts of the one row stored under ``out``."""
    [row] = [r for f in sorted(out.rglob("*.csv")) for r in csv.DictReader(f.open())]
    return {"ranks": {m: int(row[f"rank_{s}"]) for m, s in zip(MATRICES, "LoF")},
            "tol": {m: float(row[f"tol_{s}"]) for m, s in zip(MATRICES, "LoF")}, "status": row.get("status")}


def _commands() -> dict:
    """``run`` on the host, and every command on 2 devices at ``run``'s configuration."""
    from distributed import Client, LocalCluster

    from hessrank.grid import load_grid, run_grid

    _record_splits()
    with tempfile.TemporaryDirectory() as tmp:
        found = {"host": _command(COMMANDS["run"], Path(tmp)),
                 **{name: _command([*args, "--devices", "2"], Path(tmp, name)) for name, args in COMMANDS.items()}}
        grid = Path(tmp, "grid.toml")
        grid.write_text("[grid]\ndataset = 'gaussian'\nn = 8\ndim = 4\nK = 2\nactivation = 'tanh'\n"
                        "method = 'matrix-free'\nbatch_size = 8\nunits = ['4,4']\n")
        with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cl, Client(cl) as client:
            SPLIT.clear()
            run_grid(load_grid(grid), out=Path(tmp, "grid"), client=client, devices=2)
        found["grid"] = {"code": 0, "split": sorted(set(SPLIT)), **_row(Path(tmp, "grid"))}
    return found


def main() -> None:
    out = {"devices": len(jax.devices()), "cases": {}}
    with jax.enable_x64(True):
        for name, cfg in CASES.items():
            data, model, theta = build(cfg)
            blocks = resolve_blocks(model, BLOCKS.get(name))
            runs = {"host": matrix_free_ranks(model, get_loss(cfg.loss), theta, data.X, data.Y, blocks=blocks,
                                              block=16, probes=16)}
            for n in (1, 2, 4):
                runs[str(n)] = matrix_free_ranks(model, get_loss(cfg.loss), theta, data.X, data.Y, blocks=blocks,
                                                 block=16, probes=16, devices=n)
            out["cases"][name] = {k: _summary(v) for k, v in runs.items()} | {"p": model.num_params}
            if name in PRODUCTS:
                out["cases"][name]["products"] = _products(model, get_loss(cfg.loss), theta, data.X, data.Y,
                                                           PRODUCTS[name])
        # the basis on 4 devices: each holds its own columns of every row
        rng = np.random.default_rng(0)
        B = rng.standard_normal((30, 203))
        H = B.T @ B
        res = sketch_rank(CurvatureOperator("H", 203, lambda V: np.asarray(V) @ H), devices=4, block=16)
        out["shards"] = [[list(s.data.shape) for s in blk.addressable_shards] for blk in res.subspace.blocks]
        out["shard_devices"] = [sorted(str(s.device) for s in blk.addressable_shards) for blk in res.subspace.blocks]
        out["sharding"] = [str(blk.sharding.spec) for blk in res.subspace.blocks]
        out["rank"] = res.info.rank
    out["commands"] = _commands()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
