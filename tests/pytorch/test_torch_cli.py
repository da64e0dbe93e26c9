"""--model FILE.py:build returning a torch.nn.Module: `run` and `spectrum` measure it through the PyTorch
front end, with the ranks hessian_ranks gives for the same module and data."""

import importlib.util
import json
from pathlib import Path

from torch_reference import torch  # noqa: F401  (skips, or fails under CI, without PyTorch)

import hessrank
from hessrank.cli.main import main
from hessrank.data import load_dataset

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "my_torch_model.py"
SPEC = f"{EXAMPLE}:build"


def _build():
    spec = importlib.util.spec_from_file_location("my_torch_model", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build


def test_run_and_spectrum_with_a_torch_model_file_equal_hessian_ranks_of_the_module(capsys, tmp_path):
    cfg = hessrank.RunConfig(dataset="gaussian", n=12, dim=5, K=3, model=SPEC, method="matrix-free").validate()
    res = hessrank.run(cfg, blocks="layers")
    data = load_dataset(cfg)
    want = hessrank.hessian_ranks(_build()(5, 3, cfg.seed), None, data.X, data.Y, method="dense", blocks="layers")
    assert res.p == want.p == 5 * 16 + 16 + 16 * 3
    assert {k: v.rank for k, v in res.ranks.items()} == {k: v.rank for k, v in want.ranks.items()}
    assert {b: {m: r.rank for m, r in blk.ranks.items()} for b, blk in res.blocks.items()} == \
        {b: {m: r.rank for m, r in blk.ranks.items()} for b, blk in want.blocks.items()}
    assert list(res.blocks) == ["hidden", "out"]
    code = main(["spectrum", "--dataset", "gaussian", "--n", "12", "--dim", "5", "--K", "3", "--model", SPEC,
                 "--json", "--top", "3", "--out", str(tmp_path)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert {m: out[m]["rank"] for m in ("H_L", "H_o", "H_F")} == {k: v.rank for k, v in want.ranks.items()}
    assert out["mode"] == "train" and out["front_end"] == "torch"
