"""PyTorch for the tests: imported, skipped without it, a failure without it under CI; and slow,
obvious references for a module's H_L, H_o, H_F.

The references use ``torch.autograd.functional`` (``hessian`` of the summed loss as a function of
the flat parameter vector, ``jacobian`` of the outputs) and losses written out again by hand;
nothing of hessrank's curvature code.
"""

import os

import numpy as np
import pytest


def import_torch():
    """``torch``; without it the calling test module is skipped, or fails when CI is set."""
    try:
        import torch
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("PyTorch is not installed but CI is set: the torch tests must run there "
                        '(pip install -e ".[torch]")', pytrace=False)
        pytest.skip("PyTorch is not installed", allow_module_level=True)
    return torch


torch = import_torch()


def loss_sum(F, Y, loss):
    """Σ_i ℓ(f_i, y_i), by hand."""
    if loss == "mse":
        return 0.5 * ((F - Y) ** 2).sum()
    if loss == "cross":
        return -(Y * torch.log_softmax(F, dim=1)).sum()
    return torch.log(torch.cosh(F - Y)).sum()


def flat_function(module):
    """``(θ, f(θ, X), names, sizes)``: the module's float64 parameters as one vector and its forward on it."""
    names = [k for k, _ in module.named_parameters()]
    shapes = [tuple(v.shape) for _, v in module.named_parameters()]
    sizes = [int(np.prod(s)) for s in shapes]
    theta = torch.cat([v.detach().double().reshape(-1) for _, v in module.named_parameters()])
    net = _double_copy(module)

    def f(t, X):
        params = {k: a.view(s) for k, a, s in zip(names, torch.split(t, sizes), shapes)}
        return torch.func.functional_call(net, params, (X,))

    return theta, f, names, sizes


def ref_torch_matrices(module, X, Y, loss):
    """``(H_L, H_o, names, sizes)`` of ``module`` on float64 ``X, Y``: H_L by
    ``torch.autograd.functional.hessian``, H_o = Σ_i J_iᵀ Λ_i J_i with explicit Jacobians."""
    theta, f, names, sizes = flat_function(module)
    X = torch.as_tensor(np.asarray(X), dtype=torch.float64)
    Y = torch.as_tensor(np.asarray(Y), dtype=torch.float64)
    H_L = torch.autograd.functional.hessian(lambda t: loss_sum(f(t, X), Y, loss), theta, vectorize=True).numpy()
    J = torch.autograd.functional.jacobian(lambda t: f(t, X), theta, vectorize=True).numpy()  # (n, K, p)
    F = f(theta, X).detach()
    H_o = np.zeros_like(H_L)
    for i in range(X.shape[0]):
        Lam = torch.autograd.functional.hessian(lambda g: loss_sum(g[None], Y[i:i + 1], loss), F[i]).numpy()
        H_o += J[i].T @ Lam @ J[i]
    return H_L, H_o, names, sizes


def _double_copy(module):
    import copy
    return copy.deepcopy(module).double()


def mlp(d, units, K, *, activation="tanh", bias=True, seed=0):
    """A torch MLP ``Linear → act → … → Linear`` (float32, as a user builds it)."""
    torch.manual_seed(seed)
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "linear": torch.nn.Identity}[activation]
    widths = (d, *units, K)
    layers = []
    for l in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[l], widths[l + 1], bias=bias))
        if l < len(widths) - 2:
            layers.append(act())
    return torch.nn.Sequential(*layers)


class SmallCNN(torch.nn.Module):
    """Conv2d(1 → c, k×k) → activation → flatten → Linear(K) on side×side images (n, 1, side, side)."""

    def __init__(self, side=5, channels=2, kernel=3, K=3, activation="relu", bias=True, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = torch.nn.Conv2d(1, channels, kernel, bias=bias)
        self.act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "linear": torch.nn.Identity}[activation]()
        self.head = torch.nn.Linear(channels * (side - kernel + 1) ** 2, K, bias=bias)

    def forward(self, x):
        return self.head(self.act(self.conv1(x)).flatten(1))


def data(n, shape, K, loss, seed=3):
    """Gaussian inputs of ``shape`` per sample; one-hot targets for ``cross``, Gaussian otherwise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, *shape))
    Y = np.eye(K)[rng.integers(0, K, n)] if loss == "cross" else rng.standard_normal((n, K))
    return X, Y
