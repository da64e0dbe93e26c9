"""Run as a script with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before JAX
starts): the agreement battery on the host path and on 1, 2 and 4 devices, as JSON on stdout."""

import json
import sys

import jax
import numpy as np

from hessrank import RunConfig
from hessrank.curvature import CurvatureOperator
from hessrank.linalg import sketch_rank
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


def _summary(res) -> dict:
    return {"ranks": {m: r.rank for m, r in res.ranks.items()}, "tol": {m: r.tol for m, r in res.ranks.items()},
            "status": {m: d["status"] for m, d in res.details.items()},
            "blocks": {b: {m: r.rank for m, r in br.ranks.items()} for b, br in res.blocks.items()},
            "block_status": {b: {m: d["status"] for m, d in br.details.items()} for b, br in res.blocks.items()},
            "devices": res.devices}


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
        # the basis on 4 devices: each holds its own columns of every row
        rng = np.random.default_rng(0)
        B = rng.standard_normal((30, 203))
        H = B.T @ B
        res = sketch_rank(CurvatureOperator("H", 203, lambda V: np.asarray(V) @ H), devices=4, block=16)
        out["shards"] = [[list(s.data.shape) for s in blk.addressable_shards] for blk in res.subspace.blocks]
        out["shard_devices"] = [sorted(str(s.device) for s in blk.addressable_shards) for blk in res.subspace.blocks]
        out["sharding"] = [str(blk.sharding.spec) for blk in res.subspace.blocks]
        out["rank"] = res.info.rank
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
