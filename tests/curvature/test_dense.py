"""H_L, H_o, H_F against jax.hessian and an explicit Σ JᵀΛJ, for every loss and activation."""

import numpy as np
import pytest
from reference import ref_loss_hessian, ref_outer_product

from hessrank import functional_hessian, hessians, loss_hessian, outer_product_hessian

ACTIVATIONS = ["linear", "relu", "leaky_relu", "tanh", "elu", "sigmoid"]
LOSSES = ["mse", "cross", "cosh"]




@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("bias", [False, True])
def test_against_references(activation, loss, bias, problem):
    model, lossf, theta, X, Y = problem(activation, loss, bias)
    H = hessians(model, lossf, theta, X, Y, batch_size=3)  # 7 = 3 + 3 + 1 (padded batch)
    HL_ref = ref_loss_hessian(theta, X, Y, model.widths, activation, bias, loss)
    Ho_ref = ref_outer_product(theta, X, Y, model.widths, activation, bias, loss)
    scale = np.abs(HL_ref).max()
    np.testing.assert_allclose(H["H_L"], HL_ref, atol=1e-11 * scale, rtol=0)
    np.testing.assert_allclose(H["H_o"], Ho_ref, atol=1e-11 * scale, rtol=0)
    # the decomposition: H_F on its own adds up with H_o to H_L (which is formed as their sum)
    np.testing.assert_allclose(H["H_o"] + H["H_F"], H["H_L"], atol=1e-10 * scale, rtol=0)


def test_public_functions_match_joint_pass_and_batching(problem):
    model, lossf, theta, X, Y = problem("tanh", "cross", True, seed=3, n=10)
    joint = hessians(model, lossf, theta, X, Y)
    for fn, name in [(loss_hessian, "H_L"), (outer_product_hessian, "H_o"), (functional_hessian, "H_F")]:
        for bs in (1, 4, 10):
            np.testing.assert_allclose(fn(model, lossf, theta, X, Y, batch_size=bs), joint[name],
                                       atol=1e-12 * np.abs(joint["H_L"]).max(), rtol=0)


def test_matrices_are_symmetric_float64(problem):
    model, lossf, theta, X, Y = problem("relu", "mse", False, seed=5)
    for M in hessians(model, lossf, theta, X, Y).values():
        assert M.dtype == np.float64
        np.testing.assert_allclose(M, M.T, atol=1e-13 * np.abs(M).max())


@pytest.mark.parametrize("activation,loss", [("linear", "mse"), ("tanh", "cross"), ("relu", "cosh")])
def test_dense_run_takes_H_o_from_its_gram_matrix_when_nK_le_p(activation, loss):
    """nK ≤ p: `run` ranks H_o by the nK×nK Gram matrix A Aᵀ; same rank and spectrum
    (padded with zeros) as the p×p Σ JᵀΛJ."""
    from hessrank import RunConfig, run
    from hessrank.curvature import outer_product_hessian
    from hessrank.linalg.rank import numerical_rank
    from hessrank.measure import build
    from hessrank.models import get_loss

    cfg = RunConfig(dataset="gaussian", n=6, dim=8, K=3, units=(6, 5), activation=activation, loss=loss,
                    bias=True, method="dense")
    res = run(cfg)
    assert 6 * 3 <= res.p and "Gram" in res.method_reason
    data, model, theta = build(cfg)
    ref = numerical_rank(outer_product_hessian(model, get_loss(loss), theta, data.X, data.Y))
    assert res.ranks["H_o"].rank == ref.rank
    got = np.zeros(res.p)
    got[:res.ranks["H_o"].eigenvalues.size] = res.ranks["H_o"].eigenvalues
    top = np.abs(ref.eigenvalues).max()
    assert np.allclose(np.sort(got), np.sort(ref.eigenvalues), rtol=0, atol=1e-12 * top)
