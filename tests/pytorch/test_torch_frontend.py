"""The PyTorch front end's contract: the user's module left as it was, the mode recorded, buffers
fixed, parameters given by name, the losses equal to the JAX definitions, operators as SciPy
LinearOperators, and a clear line when PyTorch is missing."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse.linalg
from reference import count_above, default_tol
from torch_reference import SmallCNN, data, mlp, ref_torch_matrices, torch

import hessrank
from hessrank import ConfigError, as_linear_operator, get_loss, hessian_ranks
from hessrank._torch._losses import loss_grads, loss_hessians, loss_values


class BatchNormNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.fc1 = torch.nn.Linear(4, 6)
        self.bn = torch.nn.BatchNorm1d(6)
        self.fc2 = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.bn(self.fc1(x))))


def _snapshot(module):
    return ({k: v.detach().clone() for k, v in module.state_dict().items()},
            {k: v.dtype for k, v in module.state_dict().items()}, module.training)


@pytest.mark.parametrize("train", [True, False])
def test_the_users_module_its_dtype_mode_and_buffers_are_unchanged_and_the_mode_is_recorded(train):
    module = BatchNormNet()
    with torch.no_grad():
        module.bn.running_mean.uniform_(-1, 1)
        module.bn.running_var.uniform_(0.5, 2)
    module.train(train)
    before = _snapshot(module)
    X, Y = data(10, (4,), 3, "mse")
    res = hessian_ranks(module, None, X, Y, method="matrix-free")
    states, dtypes, training = _snapshot(module)
    assert training == train and dtypes == before[1] and all(v == torch.float32 for k, v in dtypes.items()
                                                             if "num_batches" not in k)
    for k, v in states.items():
        assert torch.equal(v, before[0][k]), k
    assert res.mode == ("train" if train else "eval")
    assert res.to_dict()["mode"] == res.mode and res.to_dict()["front_end"] == "torch"
    # eval mode uses the running statistics: the same ranks as the reference in eval mode
    if not train:
        H_L, H_o, _, _ = ref_torch_matrices(module.eval(), X, Y, "mse")
        assert res.ranks["H_L"].rank == count_above(H_L, default_tol(H_L))
        assert res.ranks["H_o"].rank == count_above(H_o, default_tol(H_o))


def test_parameters_given_by_name_or_as_a_pair_are_used_in_place_of_the_modules_own():
    module = mlp(3, (4,), 2, activation="tanh")
    other = mlp(3, (4,), 2, activation="tanh", seed=7)
    X, Y = data(6, (3,), 2, "cosh")
    params = {k: v.detach().numpy() for k, v in other.named_parameters()}
    want = hessian_ranks(other, None, X, Y, loss="cosh", method="dense")
    for got in (hessian_ranks(module, params, X, Y, loss="cosh", method="dense"),
                hessian_ranks((module, dict(other.named_parameters())), None, X, Y, loss="cosh", method="dense")):
        for m in ("H_L", "H_o", "H_F"):
            assert got.ranks[m].rank == want.ranks[m].rank
            assert got.ranks[m].tol == pytest.approx(want.ranks[m].tol, rel=1e-12)
    with pytest.raises(ConfigError, match="params: no tensor 0.bias"):
        hessian_ranks(module, {"0.weight": params["0.weight"]}, X, Y)
    bad = {**params, "0.weight": np.zeros((2, 2))}
    with pytest.raises(ConfigError, match=r"params: 0.weight has shape \(2, 2\)"):
        hessian_ranks(module, bad, X, Y)


def test_a_module_whose_outputs_do_not_fit_the_targets_is_refused_in_one_line():
    module = mlp(3, (4,), 5)
    X, Y = data(6, (3,), 2, "mse")
    with pytest.raises(ConfigError, match=r"outputs of shape \(6, 5\)"):
        hessian_ranks(module, None, X, Y)
    with pytest.raises(ConfigError, match="raised RuntimeError"):
        hessian_ranks(module, None, np.zeros((6, 7)), Y)


class _ComplexNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(3, 2, dtype=torch.complex128))

    def forward(self, x):
        return (x.to(torch.complex128) @ self.w).real


@pytest.mark.parametrize("build,says", [
    (lambda: torch.nn.Sequential(torch.nn.LazyLinear(4), torch.nn.Tanh(), torch.nn.Linear(4, 2)),
     "parameter 0.weight is not initialised yet"),
    (lambda: torch.nn.Linear(3, 2, device="meta"), "parameter weight is on the meta device"),
    (_ComplexNet, r"parameter w is complex \(torch.complex128\)"),   # the float64 copy would drop its imaginary part
])
def test_a_module_without_real_values_to_differentiate_is_refused_in_one_line(build, says):
    X, Y = data(6, (3,), 2, "mse")
    for call in (lambda m: hessian_ranks(m, None, X, Y), lambda m: as_linear_operator(m, None, X, Y),
                 lambda m: hessrank.hessian_spectrum(m, None, X, Y)):
        with pytest.raises(ConfigError, match=f"^f: {says}"):
            call(build())


@pytest.mark.parametrize("loss", ["mse", "cross", "cosh"])
def test_the_torch_losses_equal_the_jax_definitions(loss):
    rng = np.random.default_rng(0)
    F = rng.standard_normal((7, 4)) * 3
    F[0, 0] = 40.0                                  # far out: the stable log-cosh
    Y = rng.random((7, 4)) if loss == "cross" else rng.standard_normal((7, 4))
    ref = get_loss(loss)
    Ft, Yt = torch.as_tensor(F), torch.as_tensor(Y)
    for got, fn in ((loss_values(loss, Ft, Yt), ref.value), (loss_grads(loss, Ft, Yt), ref.grad),
                    (loss_hessians(loss, Ft, Yt), ref.hessian)):
        want = np.stack([np.asarray(fn(jnp.asarray(f), jnp.asarray(y))) for f, y in zip(F, Y)])
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("front", ["torch", "jax"])
def test_each_operator_as_a_scipy_linear_operator_matches_the_dense_matrix(front):
    module = SmallCNN(side=4, channels=2, kernel=2, K=2, activation="tanh")
    X, Y = data(5, (1, 4, 4), 2, "cross")
    H_L, H_o, _, _ = ref_torch_matrices(module, X, Y, "cross")
    dense = {"H_L": H_L, "H_o": H_o, "H_F": H_L - H_o}
    if front == "torch":
        f, params = module, None
    else:  # the same network written in JAX, on the module's parameters
        W1, b1 = (module.conv1.weight.detach().double().numpy(), module.conv1.bias.detach().double().numpy())
        W2, b2 = module.head.weight.detach().double().numpy(), module.head.bias.detach().double().numpy()
        params = {"a": W1, "b": b1, "c": W2, "d": b2}

        def f(p, X):
            import jax
            Z = jax.lax.conv_general_dilated(X, p["a"], (1, 1), "VALID") + p["b"][None, :, None, None]
            return jnp.tanh(Z).reshape(X.shape[0], -1) @ p["c"].T + p["d"]
    for m, H in dense.items():
        op = as_linear_operator(f, params, X, Y, matrix=m, loss="cross")
        assert op.shape == H.shape
        v = np.random.default_rng(1).standard_normal(H.shape[0])
        np.testing.assert_allclose(op @ v, H @ v, atol=1e-10 * np.abs(H).max())
        np.testing.assert_allclose(op @ np.eye(H.shape[0])[:, :3], H[:, :3], atol=1e-10 * np.abs(H).max())
        if m != "H_o":
            continue
        top = scipy.sparse.linalg.eigsh(op, k=3, which="LM", return_eigenvectors=False)
        want = np.linalg.eigvalsh(H)
        want = want[np.argsort(-np.abs(want))][:3]
        np.testing.assert_allclose(np.sort(top), np.sort(want), rtol=1e-8, atol=1e-10 * np.abs(want).max())
    with pytest.raises(ConfigError, match="matrix='H'"):
        as_linear_operator(f, params, X, Y, matrix="H")


def test_without_pytorch_hessrank_imports_and_a_module_is_refused_with_what_to_install():
    code = """
import sys
sys.modules["torch"] = None   # import torch now raises ImportError
import hessrank
class Module: pass
Module.__module__ = "torch.nn.modules.module"
class Net(Module): pass
try:
    hessrank.hessian_ranks(Net(), None, [[1.0]], [[1.0]])
except hessrank.ConfigError as err:
    print(err)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'f: a PyTorch module needs PyTorch: pip install "hessrank[torch]"'
    assert "torch" not in hessrank.__dict__


_NO_JAX = """
import json, sys
import numpy as np, torch
import hessrank
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
rng = np.random.default_rng(0)
X, Y = rng.standard_normal((8, 5)), rng.standard_normal((8, 3))
out = {}
for method in ("dense", "matrix-free"):
    r = hessrank.hessian_ranks(net, None, X, Y, method=method, blocks="layers")
    r.summary(), r.to_dict()
    out[method] = {"ranks": {k: v.rank for k, v in r.ranks.items()}, "devices": r.devices,
                   "blocks": {b: {k: v.rank for k, v in br.ranks.items()} for b, br in r.blocks.items()}}
op = hessrank.as_linear_operator(net, None, X, Y, matrix="H_o")
out["Hv"] = (op @ np.ones(op.shape[0])).tolist()
try:
    hessrank.hessian_ranks(net, None, X, Y, loss="squared")
except hessrank.ConfigError as err:
    out["error"] = str(err)
out["jax"] = sorted(m for m in sys.modules if m == "jax" or m.startswith(("jax.", "jaxlib")))
print(json.dumps(out))
"""


def test_a_modules_ranks_import_no_jax_and_equal_those_measured_beside_jax():
    """Ranks, blocks, tables and operators of a module: JAX never loaded (bases in host memory),
    the numbers those of the same calls in a process where JAX is loaded."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    run = subprocess.run([sys.executable, "-c", _NO_JAX], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["jax"] == []
    assert got["error"] == "loss='squared': not one of mse, cross, cosh"
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((8, 5)), rng.standard_normal((8, 3))
    H_L, H_o, _, _ = ref_torch_matrices(net, X, Y, "mse")
    H = {"H_L": H_L, "H_o": H_o, "H_F": H_L - H_o}
    for method in ("dense", "matrix-free"):
        assert got[method]["ranks"] == {k: count_above(H[k], default_tol(H[k])) for k in ("H_L", "H_o", "H_F")}
        assert got[method]["devices"] == 0
        here = hessian_ranks(net, None, X, Y, method=method, blocks="layers")
        assert got[method]["blocks"] == {b: {k: v.rank for k, v in br.ranks.items()} for b, br in here.blocks.items()}
    np.testing.assert_allclose(got["Hv"], H["H_o"] @ np.ones(H["H_o"].shape[0]), rtol=1e-10, atol=1e-12)


def test_a_module_measured_on_a_device_mesh_when_devices_are_given():
    X, Y = data(10, (4,), 3, "mse")
    net = mlp(4, (5,), 3)
    host = hessian_ranks(net, None, X, Y, method="matrix-free")
    mesh = hessian_ranks(net, None, X, Y, method="matrix-free", devices=1)
    assert (host.devices, mesh.devices) == (0, 1)
    assert {k: v.rank for k, v in mesh.ranks.items()} == {k: v.rank for k, v in host.ranks.items()}


class _RunningMean(torch.nn.Module):
    """Updates a buffer in its forward, in any mode: the function changes every time it runs."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)
        self.register_buffer("avg", torch.zeros(3))

    def forward(self, x):
        self.avg.mul_(0.9).add_(0.1 * x.mean(0).detach())
        return self.fc(x - self.avg)


def test_a_module_that_updates_a_buffer_as_it_runs_is_refused_and_left_as_it_was():
    module = _RunningMean().eval()
    X, Y = data(6, (3,), 2, "mse")
    with pytest.raises(ConfigError, match=r"^f: the module changes avg when it runs"):
        hessian_ranks(module, None, X, Y)
    assert not module.avg.any()
    steady = torch.nn.Linear(3, 2)
    steady.register_buffer("marker", torch.tensor([float("nan"), 1.0]))   # NaN, unchanged: not a change
    assert hessian_ranks(steady, None, X, Y).p == 8
