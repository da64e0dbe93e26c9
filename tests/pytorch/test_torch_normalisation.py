"""Normalisation layers: BatchNorm in training mode couples the samples through the batch's statistics,
so the Hessians are those of the whole batch; the engine's ranks and products equal references built
with torch.autograd.functional on the whole batch in the same mode, whatever batch_size says; eval mode
uses the running statistics; LayerNorm and Dropout(p=0) act per sample; the user's module is untouched."""

import numpy as np
import pytest
from reference import count_above, default_tol
from torch_reference import data, flat_function, loss_sum, ref_torch_matrices, torch

from hessrank import as_linear_operator, hessian_ranks


class NormNet(torch.nn.Module):
    """Linear → norm → tanh → Linear, the norm a BatchNorm1d (running statistics set away from 0 and 1)
    or a LayerNorm followed by Dropout(p=0)."""

    def __init__(self, norm="batch", d=4, width=5, K=3):
        super().__init__()
        torch.manual_seed(2)
        self.fc1 = torch.nn.Linear(d, width)
        if norm == "batch":
            self.norm = torch.nn.BatchNorm1d(width)
            with torch.no_grad():
                self.norm.running_mean.uniform_(-1, 1)
                self.norm.running_var.uniform_(0.5, 2)
                self.norm.weight.uniform_(0.5, 1.5)
                self.norm.bias.uniform_(-0.5, 0.5)
        else:
            self.norm = torch.nn.Sequential(torch.nn.LayerNorm(width), torch.nn.Dropout(0.0))
        self.fc2 = torch.nn.Linear(width, K)

    def forward(self, x):
        return self.fc2(torch.tanh(self.norm(self.fc1(x))))


@pytest.mark.parametrize("norm,mode,loss", [("batch", "train", "mse"), ("batch", "eval", "cross"),
                                            ("layer", "train", "cosh"), ("batch", "mixed", "mse")])
def test_ranks_and_products_equal_the_whole_batch_reference_in_the_modules_mode(norm, mode, loss):
    module = NormNet(norm).train(mode != "eval")
    if mode == "mixed":  # the module in training mode, its BatchNorm layer alone in eval mode: running statistics
        module.norm.eval()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    X, Y = data(10, (4,), 3, loss)
    H_L, H_o, _, _ = ref_torch_matrices(module, X, Y, loss)
    dense = {"H_L": H_L, "H_o": H_o, "H_F": H_L - H_o}
    if norm == "batch" and mode == "train":  # the batch statistics matter: a split batch is another function
        theta, f, _, _ = flat_function(module)
        Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
        halves = sum(torch.autograd.functional.hessian(lambda t: loss_sum(f(t, Xt[s]), Yt[s], loss), theta).numpy()
                     for s in (slice(0, 5), slice(5, 10)))
        assert np.abs(halves - H_L).max() > 1e-3 * np.abs(H_L).max()
    rng = np.random.default_rng(4)
    V = rng.standard_normal((H_L.shape[0], 3))
    for m, H in dense.items():  # batch_size 4 of n = 10: products over all n when the samples are coupled
        op = as_linear_operator(module, None, X, Y, matrix=m, loss=loss, batch_size=4)
        np.testing.assert_allclose(op @ V, H @ V, rtol=0, atol=1e-10 * np.abs(H).max(), err_msg=m)
    for method in ("dense", "matrix-free"):
        res = hessian_ranks(module, None, X, Y, loss=loss, method=method, batch_size=4)
        assert res.mode == ("eval" if mode == "eval" else "train")
        for m, H in dense.items():
            assert res.ranks[m].rank == count_above(H, default_tol(H)), (m, method)
    assert module.training == (mode != "eval") and module.norm.training == (mode == "train")
    for k, v in module.state_dict().items():  # running statistics (and everything else) unchanged
        assert torch.equal(v, before[k]), k


def test_a_state_dict_given_as_params_brings_its_buffers():
    module = NormNet("batch").eval()
    X, Y = data(8, (4,), 3, "mse")
    state = {k: v.clone() for k, v in module.state_dict().items()}
    state["norm.running_var"] *= 4.0
    state["fc2.weight"] *= 0.5
    loaded = NormNet("batch").eval()
    loaded.load_state_dict(state)
    want = hessian_ranks(loaded, None, X, Y, method="dense")
    got = hessian_ranks(module, state, X, Y, method="dense")
    assert {m: r.rank for m, r in got.ranks.items()} == {m: r.rank for m, r in want.ranks.items()}
    for m in got.ranks:
        assert got.ranks[m].tol == pytest.approx(want.ranks[m].tol, rel=1e-12), m
    own = hessian_ranks(module, dict(module.named_parameters()) | {"fc2.weight": state["fc2.weight"]}, X, Y,
                        method="dense")  # the same parameters, the module's running statistics
    assert abs(own.ranks["H_L"].tol - want.ranks["H_L"].tol) > 1e-6 * want.ranks["H_L"].tol
    assert torch.equal(module.norm.running_var, NormNet("batch").norm.running_var)  # the module's own untouched


class Centred(torch.nn.Module):
    """Linear → tanh → minus the batch's mean → Linear: no normalisation layer, yet each output depends
    on every sample of the batch. ``alone``: what it does with a batch of one sample — ``centre`` it
    (outputs of its own), ``refuse`` it, or divide by the batch's standard deviation (NaN for one)."""

    def __init__(self, alone="centre"):
        super().__init__()
        torch.manual_seed(3)
        self.fc1, self.fc2, self.alone = torch.nn.Linear(4, 5), torch.nn.Linear(5, 3), alone

    def forward(self, x):
        if self.alone == "refuse" and x.shape[0] < 2:
            raise ValueError("need at least two samples")
        h = torch.tanh(self.fc1(x))
        h = h - h.mean(0, keepdim=True)
        return self.fc2(h / h.std(0, keepdim=True) if self.alone == "std" else h)


@pytest.mark.parametrize("alone", ["centre", "refuse", "std"])
def test_a_module_that_mixes_its_samples_is_measured_on_the_whole_batch(alone):
    module = Centred(alone)
    X, Y = data(12, (4,), 3, "mse")
    H_L, H_o, _, _ = ref_torch_matrices(module, X, Y, "mse")
    dense = {"H_L": H_L, "H_o": H_o, "H_F": H_L - H_o}
    V = np.random.default_rng(5).standard_normal((H_L.shape[0], 2))
    for m, H in dense.items():   # batch_size 5 of n = 12: the products are still over all n at once
        op = as_linear_operator(module, None, X, Y, matrix=m, batch_size=5)
        np.testing.assert_allclose(op @ V, H @ V, rtol=0, atol=1e-10 * np.abs(H).max(), err_msg=m)
    for method in ("dense", "matrix-free"):
        res = hessian_ranks(module, None, X, Y, method=method, batch_size=5)
        for m, H in dense.items():
            assert res.ranks[m].rank == count_above(H, default_tol(H)), (m, method)
