"""`hessian-rank train --model FILE.py:build` with a torch.nn.Module: torch.optim against a loop written
out by hand, ranks at a checkpoint against hessian_ranks of the module loaded from its state_dict, a
resumed run against an uninterrupted one, and `run --params FILE.pt` with good and bad files."""

import copy
import csv
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from torch_reference import loss_sum, torch

import hessrank
from hessrank.cli.main import main
from hessrank.data import load_dataset
from hessrank.models.user import load_user_model
from hessrank.training import TrainConfig, batch_indices, run_training

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "my_torch_model.py"

#: a network with BatchNorm1d between its layers: trained in training mode, its running
#: statistics move with every batch and are part of the checkpoints
BATCHNORM_MODEL = '''
import torch

def build(d, K, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, 6, bias=False), torch.nn.BatchNorm1d(6), torch.nn.Tanh(),
                               torch.nn.Linear(6, K))

def build_eval(d, K, seed):
    return build(d, K, seed).eval()
'''
N, D, K = 12, 4, 3


@pytest.fixture(scope="module")
def bn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "bn_model.py"
    path.write_text(textwrap.dedent(BATCHNORM_MODEL))
    return path


@pytest.fixture
def bn_spec(bn_file):
    return f"{bn_file}:build"


def _config(spec, loss="mse", **kw):
    return hessrank.RunConfig(dataset="gaussian", n=N, dim=D, K=K, model=spec, loss=loss, method="dense",
                              **kw).validate()


def _rows(outcome):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in outcome.rows]


def _by_hand(spec, cfg, optimizer, lr, batch, steps):
    """A torch.optim loop written out: the module's state_dict after each step 0..steps."""
    data = load_dataset(cfg)
    module, _ = load_user_model(spec, D, K, cfg.seed)
    net = copy.deepcopy(module).double()
    if optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9 if optimizer == "momentum" else 0.0)
    X, Y = torch.as_tensor(data.X), torch.as_tensor(data.Y)
    states = [copy.deepcopy(net.state_dict())]
    for step in range(steps):
        idx = batch_indices(step, N, batch, cfg.seed)
        Xb, Yb = (X, Y) if idx is None else (X[idx], Y[idx])
        opt.zero_grad()
        (loss_sum(net(Xb), Yb, cfg.loss) / Xb.shape[0]).backward()
        opt.step()
        states.append(copy.deepcopy(net.state_dict()))
    return data, module, states


def _saved(outcome, step):
    return torch.load(outcome.table.folder / f"{outcome.table.stem}_params" / f"step{step}.pt", weights_only=True)


@pytest.mark.parametrize("optimizer,loss,mode", [("sgd", "mse", "train"), ("momentum", "cosh", "train"),
                                                  ("adam", "cross", "train"), ("sgd", "cosh", "eval")])
def test_training_a_module_follows_a_hand_written_torch_optim_loop(optimizer, loss, mode, bn_file, tmp_path):
    bn_spec = f"{bn_file}:build" if mode == "train" else f"{bn_file}:build_eval"
    cfg = _config(bn_spec, loss=loss)
    tc = TrainConfig(optimizer=optimizer, lr=0.05, steps=6, train_batch=5, checkpoints=(0, 3, 6))
    outcome = run_training(cfg, tc, out=tmp_path, blocks="layers")
    assert outcome.params_suffix == ".pt"
    data, module, states = _by_hand(bn_spec, cfg, optimizer, 0.05, 5, 6)
    X, Y = torch.as_tensor(data.X), torch.as_tensor(data.Y)
    for row in outcome.rows:
        step = int(row["step"])
        saved, want = _saved(outcome, step), states[step]
        assert list(saved) == list(want)
        for k, v in want.items():  # parameters and BatchNorm's running statistics
            assert saved[k].dtype == v.dtype
            np.testing.assert_allclose(saved[k].numpy(), v.numpy(), rtol=1e-12, atol=1e-14, err_msg=k)
        # the mean loss over all n and its gradient norm, in training mode (batch statistics of all n)
        net = copy.deepcopy(module).double()
        net.load_state_dict(want)
        value = loss_sum(net(X), Y, loss) / N
        grads = torch.autograd.grad(value, list(net.parameters()))
        assert float(row["loss"]) == pytest.approx(value.item(), rel=1e-10)
        assert float(row["grad_norm"]) == pytest.approx(float(torch.sqrt(sum((g ** 2).sum() for g in grads))),
                                                        rel=1e-9)
        if step != 6:
            continue
        # the row's ranks: those of hessian_ranks on the module loaded from the saved state_dict
        net = copy.deepcopy(module)
        net.load_state_dict(saved)
        ref = hessrank.hessian_ranks(net, None, data.X, data.Y, loss=loss, method="dense")
        assert ref.mode == mode
        assert [int(row[f"rank_{s}"]) for s in "LoF"] == [ref.ranks[m].rank for m in ("H_L", "H_o", "H_F")]
        assert float(row["tol_L"]) == pytest.approx(ref.ranks["H_L"].tol, rel=1e-9)
    assert [int(r["step"]) for r in outcome.rows] == [0, 3, 6]
    # BatchNorm's running statistics move in training mode only
    assert torch.equal(states[6]["1.running_mean"], states[0]["1.running_mean"]) == (mode == "eval")
    described = json.loads(outcome.table.json_path.read_text())["training"]
    assert (described["front_end"], described["mode"]) == ("torch", mode)
    assert float(outcome.rows[-1]["loss"]) < float(outcome.rows[0]["loss"])
    blocks = list(csv.DictReader(open(outcome.table.folder / f"{outcome.table.stem}_blocks.csv")))
    assert {b["block"] for b in blocks} == {"0", "1", "3"}  # Linear, BatchNorm1d, Linear


def test_a_resumed_run_equals_an_uninterrupted_one(bn_spec, tmp_path):
    cfg = _config(bn_spec)
    long = TrainConfig(optimizer="adam", lr=0.05, steps=20, train_batch=5, checkpoints=(0, 10, 20))
    whole = run_training(cfg, long, out=tmp_path / "a")
    first = run_training(cfg, TrainConfig(optimizer="adam", lr=0.05, steps=10, train_batch=5, checkpoints=(0, 10)),
                         out=tmp_path / "b")
    assert first.table.stem == whole.table.stem  # steps and checkpoints are not part of the run's identity
    resumed = run_training(cfg, long, out=tmp_path / "b")
    assert resumed.resumed_from == 10 and resumed.computed == [20]
    assert _rows(resumed) == _rows(whole)
    for k, v in _saved(whole, 20).items():
        assert torch.equal(_saved(resumed, 20)[k], v), k
    opt_whole = torch.load(whole.table.folder / f"{whole.table.stem}_params" / "step20.optstate.pt",
                           weights_only=True)
    opt_resumed = torch.load(resumed.table.folder / f"{resumed.table.stem}_params" / "step20.optstate.pt",
                             weights_only=True)
    for i, st in opt_whole["state"].items():
        for name, value in st.items():
            assert torch.equal(opt_resumed["state"][i][name], value), (i, name)


def test_a_damaged_checkpoint_is_passed_over_on_resuming_and_a_divergence_is_one_line(bn_spec, tmp_path, capsys):
    cfg = _config(bn_spec)
    short = TrainConfig(optimizer="momentum", lr=0.05, steps=4, train_batch=5, checkpoints=(0, 2, 4))
    whole = run_training(cfg, TrainConfig(optimizer="momentum", lr=0.05, steps=6, train_batch=5,
                                          checkpoints=(0, 2, 4, 6)), out=tmp_path / "a")
    first = run_training(cfg, short, out=tmp_path / "b")
    folder = first.table.folder / f"{first.table.stem}_params"
    (folder / "step4.optstate.pt").write_bytes(b"damaged")
    resumed = run_training(cfg, TrainConfig(optimizer="momentum", lr=0.05, steps=6, train_batch=5,
                                            checkpoints=(0, 2, 4, 6)), out=tmp_path / "b")
    assert resumed.resumed_from == 2 and _rows(resumed) == _rows(whole)
    argv = ["train", "--dataset", "gaussian", "--n", str(N), "--dim", str(D), "--K", str(K), "--model", bn_spec,
            "--lr", "1e300", "--steps", "3", "--checkpoints", "0,3", "--out", str(tmp_path / "c")]
    assert main(argv) == 2
    last = capsys.readouterr().err.splitlines()[-1]  # after the progress lines of step 0
    assert last.startswith("hessian-rank train: error: --lr 1e+300: training diverged: the loss is inf at step 1")


RUN = ["run", "--dataset", "gaussian", "--n", str(N), "--dim", str(D), "--K", str(K), "--json"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A short run of the example module: the folder of its checkpoints and its rows."""
    out = tmp_path_factory.mktemp("train")
    outcome = run_training(_config(f"{EXAMPLE}:build"), TrainConfig(optimizer="sgd", lr=0.1, steps=4,
                                                                     checkpoints=(0, 4)), out=out)
    return outcome.table.folder / f"{outcome.table.stem}_params", outcome.rows


def test_run_params_reads_a_saved_state_dict_and_measures_there(trained, capsys):
    folder, rows = trained
    code = main([*RUN, "--model", f"{EXAMPLE}:build", "--params", str(folder / "step4.pt")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert [out["ranks"][m] for m in ("H_L", "H_o", "H_F")] == [int(rows[-1][f"rank_{s}"]) for s in "LoF"]
    module, _ = load_user_model(f"{EXAMPLE}:build", D, K, 1)
    module.load_state_dict(torch.load(folder / "step4.pt", weights_only=True))
    data = load_dataset(_config(f"{EXAMPLE}:build"))
    ref = hessrank.hessian_ranks(module, None, data.X, data.Y, method="dense")
    assert [out["ranks"][m] for m in ("H_L", "H_o", "H_F")] == [ref.ranks[m].rank for m in ref.ranks]
    assert (out["front_end"], out["mode"]) == ("torch", "train")
    assert out["tolerance"]["H_L"] == pytest.approx(ref.ranks["H_L"].tol, rel=1e-9)
    start = main([*RUN, "--model", f"{EXAMPLE}:build", "--params", str(folder / "step0.pt")])
    assert start == 0 and json.loads(capsys.readouterr().out)["tolerance"]["H_L"] != out["tolerance"]["H_L"]


def _bad_files(folder, tmp_path):
    state = torch.load(folder / "step4.pt", weights_only=True)
    out = {}

    def save(name, obj):
        torch.save(obj, tmp_path / name)
        out[name] = tmp_path / name

    save("missing.pt", {k: v for k, v in state.items() if k != "out.weight"})
    save("extra.pt", {**state, "head.bias": torch.zeros(3)})
    save("shape.pt", {**state, "hidden.bias": torch.zeros(5)})
    save("nan.pt", {**state, "hidden.bias": torch.full_like(state["hidden.bias"], float("nan"))})
    save("tensor.pt", state["hidden.bias"])
    save("module.pt", torch.nn.Linear(2, 2))
    (tmp_path / "corrupt.pt").write_bytes((folder / "step4.pt").read_bytes()[:200])
    out["corrupt.pt"] = tmp_path / "corrupt.pt"
    (tmp_path / "text.pt").write_text("hello")
    out["text.pt"] = tmp_path / "text.pt"
    np.savez(tmp_path / "arrays.npz", W1=np.zeros((4, 16)))
    out["arrays.npz"] = tmp_path / "arrays.npz"
    return out


@pytest.mark.parametrize("name,needle", [
    ("missing.pt", "no tensor out.weight"),
    ("extra.pt", "a tensor head.bias the module does not have"),
    ("shape.pt", "hidden.bias has shape (5,) but the module needs (16,)"),
    ("nan.pt", "hidden.bias holds NaN or inf"),
    ("tensor.pt", "holds a Tensor, not a state_dict"),
    ("module.pt", "holds Python objects besides tensors"),
    ("corrupt.pt", "not a torch.save file, or a damaged one"),
    ("text.pt", "not a torch.save file, or a damaged one"),
    ("arrays.npz", "an .npz of arrays (the checkpoint of a JAX network), but the model is a PyTorch module"),
    ("nothing.pt", "no such file"),
])
def test_run_params_refuses_a_file_that_is_not_the_modules_state_dict_in_one_line(name, needle, trained, tmp_path,
                                                                                 capsys):
    path = _bad_files(trained[0], tmp_path).get(name, tmp_path / name)
    assert main([*RUN, "--model", f"{EXAMPLE}:build", "--params", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"hessian-rank run: error: --params {path}: "), captured.err
    assert needle in captured.err and captured.err.count("\n") == 1, captured.err


def test_a_state_dict_given_to_a_jax_network_is_refused_in_one_line(trained, capsys):
    path = trained[0] / "step4.pt"
    assert main([*RUN, "--units", "4", "--params", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--params {path}: a PyTorch file (torch.save), but the network is a JAX one" in err
    assert err.count("\n") == 1


def test_dropout_in_training_mode_is_refused_and_off_in_eval_mode(tmp_path, capsys):
    spec = tmp_path / "drop.py"
    spec.write_text("import torch\n\ndef build(d, K, seed):\n    torch.manual_seed(seed)\n"
                    "    return torch.nn.Sequential(torch.nn.Linear(d, 5), torch.nn.Tanh(), torch.nn.Dropout(0.5),"
                    " torch.nn.Linear(5, K))\n")
    argv = ["train", "--dataset", "gaussian", "--n", "8", "--dim", "3", "--K", "2", "--model", f"{spec}:build",
            "--steps", "2", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--model: the module is in training mode with Dropout(p=0.5) at '2': its outputs are random" in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()
    module = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Dropout(0.5), torch.nn.Linear(5, 2))
    X, Y = np.random.default_rng(0).standard_normal((8, 3)), np.random.default_rng(1).standard_normal((8, 2))
    with pytest.raises(hessrank.ConfigError, match=r"f: the module is in training mode with Dropout\(p=0.5\)"):
        hessrank.hessian_ranks(module, None, X, Y)
    res = hessrank.hessian_ranks(module.eval(), None, X, Y, method="dense")  # dropout off: the network without it
    plain = hessrank.hessian_ranks(torch.nn.Sequential(module[0], module[1], module[3]), None, X, Y, method="dense")
    assert res.mode == "eval" and {m: r.rank for m, r in res.ranks.items()} == {m: r.rank for m, r in
                                                                               plain.ranks.items()}
