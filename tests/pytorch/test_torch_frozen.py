"""Parameters with ``requires_grad=False`` (a frozen layer) are held fixed, as buffers are: θ is the
trainable parameters, the Hessians are the trainable block of the whole one (a principal submatrix of the
reference over every parameter), the result names what was held fixed, given values of frozen
parameters are used, training leaves them alone, and a module with nothing to differentiate is refused
in one line."""

import json
import textwrap

import numpy as np
import pytest
from reference import count_above, default_tol
from torch_reference import data, mlp, ref_torch_matrices, torch

import hessrank
from hessrank import ConfigError, hessian_ranks, hessian_spectrum
from hessrank.cli.main import main
from hessrank.training import TrainConfig, run_training


def _frozen_mlp():
    module = mlp(4, (5,), 3, activation="tanh", bias=True)   # 0.weight 0.bias 2.weight 2.bias
    module[0].weight.requires_grad_(False)
    return module


def _trainable_block(module, H):
    """The rows and columns of the trainable parameters in H over every parameter."""
    idx, start = [], 0
    for _, v in module.named_parameters():
        if v.requires_grad:
            idx.extend(range(start, start + v.numel()))
        start += v.numel()
    return H[np.ix_(idx, idx)]


@pytest.mark.parametrize("method", ["dense", "matrix-free"])
def test_the_hessians_are_the_trainable_block_and_the_result_names_what_was_held(method):
    module = _frozen_mlp()
    X, Y = data(9, (4,), 3, "cross")
    H_L, H_o, _, _ = ref_torch_matrices(module, X, Y, "cross")             # over every parameter
    want = {m: _trainable_block(module, H) for m, H in {"H_L": H_L, "H_o": H_o, "H_F": H_L - H_o}.items()}
    res = hessian_ranks(module, None, X, Y, loss="cross", method=method, blocks="leaves")
    assert res.p == 5 + 15 + 3 == want["H_L"].shape[0]
    for m, H in want.items():
        assert res.ranks[m].rank == count_above(H, default_tol(H)), m
    assert list(res.blocks) == ["0.bias", "2.weight", "2.bias"]
    assert res.frozen == ("0.weight",) and res.to_dict()["frozen"] == ["0.weight"]
    assert "held fixed (requires_grad=False): 0.weight" in res.summary()
    assert not module[0].weight.requires_grad and module[2].weight.requires_grad   # the user's flags as they were
    op = hessrank.as_linear_operator(module, None, X, Y, matrix="H_F", loss="cross")
    V = np.random.default_rng(0).standard_normal((res.p, 2))
    np.testing.assert_allclose(op @ V, want["H_F"] @ V, rtol=0, atol=1e-11 * np.abs(want["H_F"]).max())
    spec = hessian_spectrum(module, None, X, Y, loss="cross")
    assert spec.p == res.p and spec.frozen == ("0.weight",) and "0.weight" in spec.summary()


def test_given_values_of_a_frozen_parameter_are_used_and_it_may_be_left_out():
    module = _frozen_mlp()
    X, Y = data(9, (4,), 3, "mse")
    trainable = {k: v.detach().clone() for k, v in module.named_parameters() if v.requires_grad}
    other = torch.randn(5, 4, generator=torch.Generator().manual_seed(5))        # float32, as the module holds it
    shifted = mlp(4, (5,), 3, activation="tanh", bias=True)
    with torch.no_grad():
        shifted[0].weight.copy_(other)
    shifted[0].weight.requires_grad_(False)
    V = np.random.default_rng(1).standard_normal((sum(v.numel() for v in trainable.values()), 3))
    for params, reference in (({**trainable}, module), ({**trainable, "0.weight": other}, shifted)):
        H_L, _, _, _ = ref_torch_matrices(reference, X, Y, "mse")
        H = _trainable_block(reference, H_L)
        op = hessrank.as_linear_operator((module, params), None, X, Y, matrix="H_L")
        np.testing.assert_allclose(op @ V, H @ V, rtol=0, atol=1e-11 * np.abs(H).max())


def test_a_module_with_nothing_to_differentiate_is_refused_in_one_line(tmp_path, capsys):
    module = mlp(4, (5,), 3)
    for q in module.parameters():
        q.requires_grad_(False)
    X, Y = data(6, (4,), 3, "mse")
    with pytest.raises(ConfigError, match=r"^f: .*no parameter that requires gradients \(all 4 have"):
        hessian_ranks(module, None, X, Y)
    model = tmp_path / "frozen.py"
    model.write_text(textwrap.dedent('''
        import torch

        def build(d, K, seed):
            net = torch.nn.Linear(d, K)
            net.requires_grad_(False)
            return net
    '''))
    assert main(["run", "--dataset", "gaussian", "--n", "8", "--dim", "3", "--K", "2", "--model",
                 f"{model}:build"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--model" in err and "requires gradients" in err


def test_training_leaves_a_frozen_layer_alone_and_its_checkpoints_measure_the_trainable_part(tmp_path, capsys):
    model = tmp_path / "partly_frozen.py"
    model.write_text(textwrap.dedent('''
        import torch

        def build(d, K, seed):
            torch.manual_seed(seed)
            net = torch.nn.Sequential(torch.nn.Linear(d, 5), torch.nn.Tanh(), torch.nn.Linear(5, K))
            net[0].requires_grad_(False)
            return net
    '''))
    cfg = hessrank.RunConfig(dataset="gaussian", n=10, dim=4, K=3, model=f"{model}:build", method="dense").validate()
    outcome = run_training(cfg, TrainConfig(optimizer="adam", lr=0.05, steps=4, checkpoints=(0, 4)), out=tmp_path)
    folder = outcome.table.folder / f"{outcome.table.stem}_params"
    first, last = (torch.load(folder / f"step{t}.pt", weights_only=True) for t in (0, 4))
    for k in ("0.weight", "0.bias"):
        assert torch.equal(first[k], last[k]), k
    assert not torch.equal(first["2.weight"], last["2.weight"])
    assert {int(r["num_params"]) for r in outcome.rows} == {5 * 3 + 3}
    capsys.readouterr()
    assert main(["run", "--dataset", "gaussian", "--n", "10", "--dim", "4", "--K", "3", "--model",
                 f"{model}:build", "--method", "dense", "--params", str(folder / "step4.pt"), "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert (measured["p"], measured["frozen"]) == (18, ["0.weight", "0.bias"])
    row = outcome.rows[-1]
    assert [int(row[f"rank_{s}"]) for s in "LoF"] == [measured["ranks"][m] for m in ("H_L", "H_o", "H_F")]
