"""The PyTorch front end's products and Jacobian factor against explicit references, whatever
the grouping: rows of V in several vectorised passes, samples split over several backward
passes of the Jacobian (or the whole batch when BatchNorm couples them), and a module linear
in θ, whose functional part is zero (the gradient's graph then does not depend on θ)."""

import numpy as np
import pytest
from reference import count_above, default_tol
from test_torch_normalisation import NormNet
from torch_reference import SmallCNN, data, flat_function, mlp, ref_torch_matrices, torch

import hessrank._torch._source as source
from hessrank import hessian_ranks


def _reference_jacobian(module, X):
    """J of the whole batch, (n·K, p): ``torch.autograd.functional.jacobian`` of the outputs."""
    theta, f, _, _ = flat_function(module)
    return torch.autograd.functional.jacobian(lambda t: f(t, torch.as_tensor(X)), theta).numpy().reshape(-1, len(theta))


@pytest.mark.parametrize("rows", [3, 64])
@pytest.mark.parametrize("case", ["mlp", "cnn", "batchnorm-train"])
def test_products_and_factor_equal_the_references_in_any_grouping(monkeypatch, case, rows):
    monkeypatch.setattr(source, "_MAX_ROWS", rows)   # 3: several passes per product, one sample per Jacobian pass
    loss = {"mlp": "cross", "cnn": "cosh", "batchnorm-train": "mse"}[case]
    if case == "mlp":
        module, shape = mlp(4, (5, 3), 3, activation="tanh", bias=True), (4,)
    elif case == "cnn":
        module, shape = SmallCNN(side=5, K=3, activation="tanh"), (1, 5, 5)
    else:
        module, shape = NormNet("batch").train(), (4,)
    X, Y = data(9, shape, 3, loss)
    src = source.TorchSource(module, None, X, Y, loss=loss, batch_size=4)
    assert src._rows == min(rows, src._rows_per_call(4 if case != "batchnorm-train" else 9))
    H_L, H_o, _, _ = ref_torch_matrices(module, X, Y, loss)
    V = np.random.default_rng(1).standard_normal((7, src.p))
    for name, H in {"H_L": H_L, "H_o": H_o, "H_F": H_L - H_o}.items():
        np.testing.assert_allclose(src.operator(name)(V), V @ H, rtol=0, atol=1e-11 * np.abs(H).max(), err_msg=name)
    J_ref = _reference_jacobian(module, X)
    J = np.concatenate([src._jacobians(b[0]).numpy() for b in src.batches])
    np.testing.assert_allclose(J, J_ref, rtol=0, atol=1e-13 * np.abs(J_ref).max())
    A = src.factor()                                   # Λ^{1/2} J: its Gram matrix AᵀA is H_o
    np.testing.assert_allclose(A.T @ A, H_o, rtol=0, atol=1e-12 * np.abs(H_o).max())


@pytest.mark.parametrize("method", ["dense", "matrix-free"])
def test_a_module_linear_in_its_parameters_has_a_zero_functional_part(method):
    module = torch.nn.Linear(5, 3, bias=True)
    X, Y = data(12, (5,), 3, "mse")
    src = source.TorchSource(module, None, X, Y, loss="mse", batch_size=None)
    V = np.random.default_rng(2).standard_normal((4, src.p))
    assert not src.operator("H_F")(V).any()
    H_L, H_o, _, _ = ref_torch_matrices(module, X, Y, "mse")
    res = hessian_ranks(module, None, X, Y, loss="mse", method=method)
    assert res.ranks["H_F"].rank == 0
    assert res.ranks["H_L"].rank == res.ranks["H_o"].rank == count_above(H_L, default_tol(H_L)) == 18
