"""The public surface: a lazy import, grouped names, each entry point's documented class, a
short repr, ``summary()`` equal to the command line's table and ``to_dict()`` to its ``--json``."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hessrank
from hessrank.cli import main

SRC = str(Path(hessrank.__file__).resolve().parents[1])
#: what differs between two runs of the same configuration: times, free memory
_VARYING = re.compile(r"\d+(\.\d+)? (ms|s|min|h|KiB|MiB|GiB)\b")
#: JSON keys that hold times, memory or the machine, not results
_RUN_SPECIFIC = ("seconds", "timings", "peak_rss_bytes", "provenance", "method_reason")


def _steady(text: str) -> str:
    return _VARYING.sub("#", text)


def test_import_loads_no_numerical_library_and_every_public_name_resolves():
    code = ("import sys, hessrank; heavy = [m for m in ('jax', 'numpy', 'scipy') if m in sys.modules]; "
            "print(heavy, hessrank.__version__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": SRC})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", hessrank.__version__]
    for name in hessrank.__all__:
        assert getattr(hessrank, name) is not None, name
    assert set(hessrank.__all__) <= set(dir(hessrank))
    assert "hessian_spectrum_mlp" not in hessrank.__all__ and hessrank.hessian_spectrum_mlp is not None
    assert hessrank.curvature.hessians is not None                      # subpackages load on first use too
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        hessrank.nothing  # noqa: B018


def test_run_summary_is_the_cli_table_and_to_dict_the_cli_json(tiny_config, tiny_flags, capsys):
    res = hessrank.run(tiny_config)
    assert isinstance(res, hessrank.Result) and isinstance(res.ranks["H_L"], hessrank.RankInfo)
    assert len(repr(res)) < 200 and "array" not in repr(res) and "H_L=" in repr(res)
    assert "eigenvalues" not in repr(res.ranks["H_L"])
    done = subprocess.run([sys.executable, "-m", "hessrank.cli", "run", *tiny_flags], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": SRC})
    assert done.returncode == 0, done.stderr
    assert _steady(res.summary()) == _steady(done.stdout.rstrip("\n"))
    text = res.summary()
    for legend in ("H_L: the loss Hessian", "H_o: its outer-product (Gauss–Newton) part", "H_F: its functional part",
                   "symbols: r = rank Σ xxᵀ, K' = K", "gap:     log10(|λ_r| / |λ_r+1|) in decades"):
        assert legend in text, legend
    method = next(line for line in text.splitlines() if line.startswith("method "))
    assert "0.0 s" not in method and re.search(r"took \d", method)

    assert main(["run", *tiny_flags, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    mine = json.loads(json.dumps(res.to_dict()))
    assert set(mine) == set(cli)
    for key in set(cli) - set(_RUN_SPECIFIC):
        assert mine[key] == cli[key], key
    assert _steady(mine["method_reason"]) == _steady(cli["method_reason"])
    assert mine["ranks"] == {m: mine["predictions"][m] for m in ("H_L", "H_o", "H_F")}   # linear: exact


def test_spectrum_of_a_config_and_of_a_function_share_one_class(tiny_config, net, samples):
    spec = hessrank.spectrum(tiny_config, top=3, density=False)
    assert isinstance(spec, hessrank.SpectrumResult) and spec.model == ""
    assert isinstance(spec.matrices["H_L"], hessrank.MatrixSpectrum)
    assert len(repr(spec)) < 200 and len(repr(spec.matrices["H_L"])) < 200
    assert spec.summary().startswith("data     gaussian: n = 10, d = 4")
    assert spec.to_dict()["H_L"]["rank"] == spec.ranks["H_L"].rank == hessrank.run(tiny_config).ranks["H_L"].rank
    f, params = net()
    X, labels = samples(8, 3, 3)
    res = hessrank.hessian_spectrum(f, params, X, labels, top=3, density=False)
    assert type(res) is type(spec) and res.config is None and res.p == 31
    assert "model    f(params, X); loss mse; p = 31" in res.summary()
    ranks = hessrank.hessian_ranks(f, params, X, labels)
    assert isinstance(ranks, hessrank.ModelResult) and len(repr(ranks)) < 200
    assert {m: s.rank for m, s in res.matrices.items()} == {m: r.rank for m, r in ranks.ranks.items()}
    assert "H_o: its outer-product" in ranks.summary() and ranks.to_dict()["p"] == 31


def test_spectrum_of_a_cnn_config_equals_the_function_path():
    # the CNN of a RunConfig, measured by spectrum(), against the same network as a function
    from hessrank.data import load_dataset
    from hessrank.models import build_cnn

    cfg = hessrank.RunConfig(dataset="gaussian", n=6, dim=16, K=2, arch="cnn", conv="2:3", activation="relu")
    spec = hessrank.spectrum(cfg, top=4, density=False, trace=False)
    assert spec.model == "cnn 2:3 on 4×4 images, stride 1, valid, pool none, relu, no bias, seed 1"
    data = load_dataset(cfg)
    f, params = build_cnn(16, 2, cfg.conv_layers, activation="relu", bias=False, seed=cfg.seed)
    ref = hessrank.hessian_spectrum(f, params, data.X, data.Y, top=4, density=False, trace=False, seed=cfg.seed)
    for m in ("H_L", "H_o", "H_F"):
        assert spec.matrices[m].rank == ref.matrices[m].rank
        np.testing.assert_allclose(spec.matrices[m].top, ref.matrices[m].top, rtol=1e-10, atol=1e-12)


def test_predictions_data_and_the_rank_rule_return_their_classes(tiny_config):
    data = hessrank.load_dataset(tiny_config)
    assert isinstance(data, hessrank.Dataset) and repr(data).startswith("Dataset(name='gaussian', n=10, d=4, K=2")
    pred = hessrank.predict_ranks(r=4, K=2, units=(3,), n=10, d=4)
    assert isinstance(pred, hessrank.Prediction) and (pred.H_L, pred.H_o, pred.H_F) == (16, 8, 12)
    info = hessrank.numerical_rank(data.X.T @ data.X)
    assert isinstance(info, hessrank.RankInfo) and info.rank == np.linalg.matrix_rank(data.X) == 4
    assert isinstance(hessrank.operator_spectrum(lambda V: V @ (data.X.T @ data.X), hessrank.SpectrumOptions(
        top=2, trace=False, density=False), p=4), hessrank.MatrixSpectrum)


def test_durations_are_written_in_a_sensible_unit():
    from hessrank.cli.format import duration_text

    assert [duration_text(s) for s in (2e-4, 0.04, 3.14, 42.0, 150.0, 7200.0)] == \
        ["under 1 ms", "40 ms", "3.1 s", "42 s", "2.5 min", "2.0 h"]
