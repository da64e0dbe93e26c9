"""Spectra beyond the rank: top eigenvalues, trace, density, outliers, condition — against
numpy.linalg.eigvalsh / np.trace of the dense matrices."""

import numpy as np
import pytest

from hessrank.config import RunConfig
from hessrank.curvature import hessians
from hessrank.errors import ConfigError
from hessrank.linalg.spectral import (
    condition_number,
    count_outliers,
    density_moments,
    hutchinson_deflated_trace,
    slq_density,
    xtrace,
)
from hessrank.matrices import DENSE, H_O_GRAM, MATRICES, MATRIX_FREE
from hessrank.measure import MethodPlan, SpectrumOptions, matrix_spectrum, measure_spectra, plan_spectrum
from hessrank.measure.spectrum import operator_spectrum


class Explicit:
    """A dense symmetric matrix as a block operator (rows V -> V H), counting products."""

    def __init__(self, H, name="H"):
        self.H, self.p, self.name, self.products = H, H.shape[0], name, 0

    def __call__(self, V):
        self.products += V.shape[0]
        return V @ self.H


def _by_magnitude(lam):
    return lam[np.argsort(-np.abs(lam), kind="stable")]


def _spectra(problem, activation, loss, method, *, top=8, **kw):
    model, lossf, theta, X, Y = problem(activation, loss, bias=True, **kw)
    plan = MethodPlan(method, "test", H_O_GRAM)
    cfg = RunConfig(dataset="gaussian", loss=loss, activation=activation)
    opts = SpectrumOptions(top=top, probes=4, lanczos_steps=20, eigenvectors=True)
    spectra, _, _, _ = measure_spectra(plan, model, lossf, theta, X, Y, cfg, opts)
    return spectra, hessians(model, lossf, theta, X, Y)


@pytest.mark.parametrize("activation,loss", [("tanh", "mse"), ("relu", "cross"), ("linear", "cosh")])
def test_dense_top_eigenvalues_and_trace_equal_numpy(problem, activation, loss):
    spectra, mats = _spectra(problem, activation, loss, DENSE)
    for name in MATRICES:
        H = mats[name]
        ref = _by_magnitude(np.linalg.eigvalsh(H))[:8]
        got = spectra[name].top
        assert np.allclose(got, ref, rtol=1e-10, atol=1e-10 * abs(ref[0])), name
        tr = np.trace(H)
        assert abs(spectra[name].trace.value - tr) <= 1e-12 * max(abs(tr), 1e-300) or tr == 0.0, name
        assert spectra[name].trace.stderr is None and spectra[name].top_bound == 0.0
        V = spectra[name].vectors                                   # eigenvectors: H v = λ v
        assert np.allclose(V @ H, got[:V.shape[0], None] * V, atol=1e-9 * abs(ref[0]))
        mags = np.abs(np.linalg.eigvalsh(H))
        nonzero = mags[mags > spectra[name].tol]
        assert spectra[name].condition == pytest.approx(nonzero.max() / nonzero.min(), rel=1e-8)


@pytest.mark.parametrize("activation,loss,n", [("linear", "mse", 3), ("tanh", "cross", 4), ("relu", "cosh", 9),
                                               ("linear", "cross", 12)])
def test_matrix_free_top_eigenvalues_agree_with_dense(problem, activation, loss, n):
    spectra, mats = _spectra(problem, activation, loss, MATRIX_FREE, n=n)
    for name in MATRICES:
        H = mats[name]
        ref = _by_magnitude(np.linalg.eigvalsh(H))[:8]
        got = spectra[name].top
        assert np.allclose(got, ref, rtol=1e-8, atol=1e-8 * abs(ref[0])), (name, got, ref)
        assert np.all(np.abs(got - ref) <= spectra[name].top_bound + 1e-12 * abs(ref[0]))
        tr, t = np.trace(H), spectra[name].trace
        assert abs(t.value - tr) <= 3 * (t.stderr or 0.0) + 1e-9 * abs(ref[0]), (name, t, tr)
        V = spectra[name].vectors
        assert np.allclose(V @ H, got[:V.shape[0], None] * V, atol=1e-7 * abs(ref[0]))


def test_matrix_spectrum_and_operator_spectrum_of_an_explicit_low_rank_matrix():
    rng = np.random.default_rng(3)
    B = rng.standard_normal((80, 12))
    H = B @ np.diag(np.geomspace(1e3, 1e-1, 12)) @ B.T
    ref = _by_magnitude(np.linalg.eigvalsh(H))
    dense = matrix_spectrum(H, SpectrumOptions(top=5))
    assert dense.rank == 12 and np.allclose(dense.top, ref[:5], rtol=1e-10)
    mf = operator_spectrum(Explicit(H), SpectrumOptions(top=5, probes=4, lanczos_steps=15))
    assert mf.rank == 12 and np.allclose(mf.top, ref[:5], rtol=1e-8)
    assert mf.trace.value == pytest.approx(np.trace(H), rel=1e-8)


def test_stochastic_trace_lies_within_three_standard_errors_in_95_of_100_runs():
    rng = np.random.default_rng(0)
    p = 60
    U, _ = np.linalg.qr(rng.standard_normal((p, p)))
    H = (U * (np.arange(1, p + 1) ** -0.5 * rng.choice([-1, 1], p))) @ U.T       # slow decay, indefinite
    exact = np.trace(H)
    inside_x = inside_h = 0
    basis = np.linalg.qr(rng.standard_normal((p, 6)))[0].T                       # an arbitrary basis
    for seed in range(100):
        t = xtrace(Explicit(H), samples=12, seed=seed)
        assert t.products == 24 and t.stderr > 0
        inside_x += abs(t.value - exact) <= 3 * t.stderr
        h = hutchinson_deflated_trace(Explicit(H), basis, float(np.trace(basis @ H @ basis.T)), samples=10, seed=seed)
        inside_h += abs(h.value - exact) <= 3 * h.stderr
    assert inside_x >= 95 and inside_h >= 95, (inside_x, inside_h)


def _battery():
    """Spectra whose second moment is not carried by a handful of eigenvalues: the relative
    variance of one probe's estimate of tr H²/p is about 2·Σλ⁴/(Σλ²)² (a few dominant
    outliers make it O(1), and no number of Lanczos steps helps: only probes do)."""
    rng = np.random.default_rng(7)
    p = 400
    U, _ = np.linalg.qr(rng.standard_normal((p, p)))
    yield (U * np.concatenate([rng.uniform(0.5, 2.0, 120), np.zeros(p - 120)])) @ U.T   # PSD, rank 120
    yield (U * rng.standard_normal(p)) @ U.T                                             # indefinite, full
    yield (U * np.concatenate([rng.uniform(-1, 3, 200), np.zeros(p - 200)])) @ U.T      # indefinite, rank 200


@pytest.mark.parametrize("H", list(_battery()))
def test_slq_density_integrates_to_one_and_matches_the_first_two_moments(H):
    p = H.shape[0]
    den = slq_density(Explicit(H), probes=30, steps=30, seed=1)
    mass, m1, m2 = density_moments(den)
    assert mass == pytest.approx(1.0, abs=1e-6)
    exact1, exact2 = np.trace(H) / p, np.trace(H @ H) / p
    scale = np.sqrt(exact2)
    # the mean of an indefinite spectrum can be ~0: within 5 % of the rms eigenvalue √(tr H²/p)
    assert abs(m1 - exact1) <= 0.05 * scale, (m1, exact1)
    assert m2 == pytest.approx(exact2, rel=0.05)
    exact = matrix_spectrum(H).density                                            # the dense route
    mass, d1, d2 = density_moments(exact)
    assert mass == pytest.approx(1.0, abs=1e-6) and d1 == pytest.approx(exact1, abs=1e-6 * scale)
    assert d2 == pytest.approx(exact2 + exact.sigma ** 2, rel=1e-6)


def test_outlier_rule_and_condition_number():
    bulk = np.geomspace(1e-2, 1.0, 200)
    assert count_outliers(np.concatenate([bulk, [1e4, 3e4, 1e5]])) == 3
    assert count_outliers(bulk) == 0 and count_outliers([1.0, 2.0]) == 0
    assert condition_number(np.array([4.0, 2.0, 0.5])) == 8.0 and condition_number(np.zeros(0)) is None


def test_options_are_validated_and_memory_is_planned_before_work():
    for kw, match in ((dict(top=0), "top=0"), (dict(seed=-1), "seed=-1: give an integer in 0..2"),
                      (dict(seed=2**32), "seed="), (dict(eigenvectors="yes"), "eigenvectors='yes': give True or False"),
                      (dict(trace=1), "trace=1")):
        with pytest.raises(ConfigError, match=match):
            SpectrumOptions(**kw).validate()
    assert SpectrumOptions(seed=np.int64(2**32 - 1), density=np.True_).validate()
    with pytest.raises(ConfigError, match=r"lanczos_steps=.*GiB"):
        plan_spectrum("auto", 10**6, 10, 3, SpectrumOptions(lanczos_steps=10**6))
