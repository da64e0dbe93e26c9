"""Randomised batteries for the built-in CNN: exact formulas of one linear conv layer,
bounds of deep (2–4 conv layers) linear and ReLU networks.

One conv layer (linear, no bias) is measured by a slow, obvious reference that needs no
compilation: the features come from the model itself (``build_cnn`` with identity kernels
and an identity head), and from them the Jacobian and the bilinear H_F are written out
entry by entry; a test checks this reference against the engine's dense Hessians. Deep
networks are measured by the engine (``hessrank.curvature.hessians``, float64), one
compiled Hessian per architecture serving six draws of (n, data, initialisation) at a
fixed batch size. Ranks are ``numerical_rank`` at the default tolerance; predictions come
from ``predict_cnn_ranks`` with the data's patch ranks from ``cnn_data_ranks``.

``python3 -m pytest -s tests/theory/test_cnn_batteries.py`` prints the fractions of the
bounds met with equality (quoted in docs/theory.md).
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from hessrank.curvature import hessians
from hessrank.data.synthetic import gaussian_mixture
from hessrank.errors import ConfigError
from hessrank.linalg import numerical_rank
from hessrank.models import build_cnn, get_loss
from hessrank.models.function import function_model
from hessrank.theory import MATRICES
from hessrank.theory_cnn import cnn_data_ranks, cnn_layers, explain_cnn_deficiency, head_patches, predict_cnn_ranks

LOSSES = ("mse", "cross", "cosh")


# --------------------------------------------------------------------------- one conv layer: reference

def _model_features(X, *, k, m_identity, stride, padding, pool):
    """Each sample's patches as the head sees them, from the model itself: identity kernels
    (one output channel per kernel entry) and an identity head; shape (n, P, k²)."""
    d = X.shape[1]
    D = k * k
    f, params = build_cnn(d, 1, ((D, k),), stride=stride, padding=padding, pool=pool, activation="linear")
    params["conv1"]["w"] = np.eye(D).reshape(D, 1, k, k)
    flat = params["dense"]["w"].shape[0]
    params["dense"]["w"] = np.eye(flat)
    with jax.enable_x64(True):
        out = np.asarray(f(params, X))
    return out.reshape(X.shape[0], D, flat // D).transpose(0, 2, 1)


def _loss_terms(F, Y, loss):
    """Output gradients g_i and Hessians Λ_i of the three losses, written out in NumPy
    (the definitions of ``hessrank.models.losses``)."""
    n, K = F.shape
    if loss == "mse":
        return F - Y, np.broadcast_to(np.eye(K), (n, K, K))
    if loss == "cosh":
        t = np.tanh(F - Y)
        return t, np.einsum("ik,kl->ikl", 1.0 - t ** 2, np.eye(K))
    e = np.exp(F - F.max(axis=1, keepdims=True))
    S = e / e.sum(axis=1, keepdims=True)
    tot = Y.sum(axis=1, keepdims=True)
    return tot * S - Y, tot[:, :, None] * (np.einsum("ik,kl->ikl", S, np.eye(K)) - S[:, :, None] * S[:, None, :])


def _sqrt(Lam):
    """Symmetric square roots of the K×K output Hessians (each positive semi-definite)."""
    vals, vecs = np.linalg.eigh(Lam)
    return np.einsum("ikl,il,iml->ikm", vecs, np.sqrt(np.clip(vals, 0.0, None)), vecs)


def _one_layer_reference(X, Y, W, V, Z, loss):
    """H_o, H_F, H_L of ``f_i = Σ_j V_jᵀ Z_i w_j`` (kernels W: m × D, head V: mP × K,
    features channel-major as the model flattens them), in the model's parameter order
    (kernels, then head)."""
    n, P, D = Z.shape
    m, K = W.shape[0], V.shape[1]
    Hf = np.einsum("itd,jd->ijt", Z, W).reshape(n, m * P)
    G, Lam = _loss_terms(Hf @ V, Y, loss)
    pW = m * D
    JW = np.einsum("jtk,itd->ikjd", V.reshape(m, P, K), Z).reshape(n, K, pW)  # ∂f_i/∂w_j = V_jᵀ Z_i
    JV = np.einsum("iu,kl->ikul", Hf, np.eye(K)).reshape(n, K, m * P * K)    # ∂f_ik/∂V[u, l] = h_iu δ_kl
    J = np.concatenate([JW, JV], axis=2)
    A = np.einsum("ilk,ikp->ilp", _sqrt(Lam), J)  # Λ_i^{1/2} J_i
    A = A.reshape(n * K, -1)
    Ho = A.T @ A  # Σ_i J_iᵀ Λ_i J_i
    HF = np.zeros_like(Ho)
    B = np.einsum("ik,itd->tdk", G, Z)  # ∂²Σ⟨g_i, f_i⟩ / ∂w_j[d] ∂V[jP+t, k]
    for j in range(m):
        cols = pW + (j * P + np.arange(P)[:, None]) * K + np.arange(K)[None, :]  # (P, K)
        for t in range(P):
            HF[j * D:(j + 1) * D, cols[t]] = B[t]
            HF[cols[t], j * D:(j + 1) * D] = B[t].T
    return {"H_o": Ho, "H_F": HF, "H_L": Ho + HF}


def _one_layer_configs(count=120, seed=2027):
    """Random one-layer linear CNNs: kernel 1–3, 1–4 channels, images 3×3–6×6, valid or
    same padding, stride 1–3, no pool / 2×2 average / global average, K 1–3, the three
    losses, n from 1 to 2d (below and above the rank of the patches and of the data);
    at most 220 parameters."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        side = int(rng.integers(3, 7))
        k = int(rng.integers(1, min(side, 3) + 1))
        stride = int(rng.choice([1, 1, 1, 2, 3]))
        padding = str(rng.choice(["valid", "same"]))
        pool = str(rng.choice(["none", "none", "avg", "global"]))
        loss = LOSSES[len(out) % 3]
        K = int(rng.integers(2 if loss == "cross" else 1, 4))
        cfg = dict(side=side, k=k, m=int(rng.integers(1, 5)), stride=stride, padding=padding, pool=pool,
                   loss=loss, K=K, n=int(rng.integers(1, 2 * side * side + 1)), seed=int(rng.integers(10_000)))
        try:
            layer = cnn_layers(side * side, ((cfg["m"], k),), stride=stride, padding=padding, pool=pool)[0]
        except ConfigError:  # the pool leaves no pixels
            continue
        if cfg["m"] * (k * k + layer.positions * K) <= 220:
            out.append(cfg)
    return out


ONE_LAYER = _one_layer_configs()


@functools.cache
def _one_layer_results():
    rows = []
    for cfg in ONE_LAYER:
        d, k, m = cfg["side"] ** 2, cfg["k"], cfg["m"]
        arch = dict(stride=cfg["stride"], padding=cfg["padding"], pool=cfg["pool"])
        data = gaussian_mixture(n=cfg["n"], dim=d, K=cfg["K"], seed=cfg["seed"])
        _, params = build_cnn(d, cfg["K"], ((m, k),), activation="linear", seed=cfg["seed"] + 1, **arch)
        W, V = np.asarray(params["conv1"]["w"]).reshape(m, k * k), np.asarray(params["dense"]["w"])
        Z = head_patches(data.X, kernel=k, **arch)  # checked against the model below
        H = _one_layer_reference(data.X, data.Y, W, V, Z, cfg["loss"])
        ranks = {name: numerical_rank(H[name]).rank for name in MATRICES}
        dr = cnn_data_ranks(data.X, ((m, k),), kernels=params["conv1"]["w"], **arch)
        pred = predict_cnn_ranks(d=d, K=cfg["K"], conv=((m, k),), loss=cfg["loss"], n=cfg["n"], ranks=dr, **arch)
        rows.append((cfg, ranks, pred, dr))
    return rows


def test_one_layer_reference_equals_the_engine():
    # the reference's matrices, entry by entry, against dense Hessians of the model
    for cfg in (dict(side=5, k=2, m=2, stride=2, padding="same", pool="none", loss="cross", K=3, n=9),
                dict(side=6, k=3, m=3, stride=1, padding="valid", pool="avg", loss="cosh", K=2, n=7)):
        d, k, m = cfg["side"] ** 2, cfg["k"], cfg["m"]
        arch = dict(stride=cfg["stride"], padding=cfg["padding"], pool=cfg["pool"])
        data = gaussian_mixture(n=cfg["n"], dim=d, K=cfg["K"], seed=3)
        f, params = build_cnn(d, cfg["K"], ((m, k),), activation="linear", seed=4, **arch)
        with jax.enable_x64(True):
            model, theta = function_model(f, params)
            engine = hessians(model, get_loss(cfg["loss"]), theta, data.X, data.Y)
        W, V = np.asarray(params["conv1"]["w"]).reshape(m, k * k), np.asarray(params["dense"]["w"])
        ref = _one_layer_reference(data.X, data.Y, W, V, _model_features(data.X, k=k, m_identity=True, **arch),
                                   cfg["loss"])
        for name in MATRICES:
            np.testing.assert_allclose(ref[name], engine[name], atol=1e-12, err_msg=name)


def test_head_patches_are_what_the_model_convolves():
    rng = np.random.default_rng(0)
    for side, k, stride, padding, pool in ((5, 2, 2, "same", "none"), (7, 3, 1, "same", "avg"),
                                          (6, 4, 3, "valid", "none"), (5, 3, 1, "valid", "global")):
        X = rng.standard_normal((3, side * side))
        np.testing.assert_allclose(head_patches(X, kernel=k, stride=stride, padding=padding, pool=pool),
                                   _model_features(X, k=k, m_identity=True, stride=stride, padding=padding,
                                                   pool=pool), atol=1e-14)


def test_one_layer_battery_covers_the_cases_asked_for():
    c = ONE_LAYER
    assert len(c) >= 100
    assert {x["loss"] for x in c} == set(LOSSES)
    assert {x["padding"] for x in c} == {"valid", "same"} and {x["stride"] for x in c} == {1, 2, 3}
    assert {x["pool"] for x in c} == {"none", "avg", "global"}
    rows = _one_layer_results()
    # n below and above the rank of the patches (n·P < k² possible) and of the data
    assert any(dr.stage.patch_rank < cfg["k"] ** 2 for cfg, _, _, dr in rows)
    assert any(dr.stage.patch_rank == cfg["k"] ** 2 for cfg, _, _, dr in rows)
    assert any(cfg["n"] < cfg["side"] ** 2 for cfg in c) and any(cfg["n"] > cfg["side"] ** 2 for cfg in c)


def test_one_layer_exact_predictions_equal_the_measured_ranks():
    wrong, above, exact = [], [], dict.fromkeys(MATRICES, 0)
    for cfg, ranks, pred, _ in _one_layer_results():
        assert pred.kinds["H_F"] == "exact"
        for name in MATRICES:
            value, kind = getattr(pred, name), pred.kinds[name]
            if kind == "exact":
                exact[name] += 1
                if ranks[name] != value:
                    wrong.append((cfg, name, ranks[name], value))
            elif ranks[name] > value:
                above.append((cfg, name, ranks[name], value, pred.bounds[name]))
    assert not wrong, wrong
    assert not above, above
    print(f"\none-layer CNN battery ({len(ONE_LAYER)} configurations): exact and equal "
          + ", ".join(f"{m} {exact[m]}" for m in MATRICES))
    # the exact regimes are the common case, not a corner
    assert exact["H_F"] == len(ONE_LAYER) and exact["H_o"] >= 0.6 * len(ONE_LAYER), exact
    assert exact["H_L"] >= 0.4 * len(ONE_LAYER), exact


def test_one_layer_explained_deficiency_is_fully_explained_where_exact():
    for cfg, ranks, pred, dr in _one_layer_results()[:40]:
        expl = explain_cnn_deficiency(ranks=ranks, prediction=pred, d=cfg["side"] ** 2, K=cfg["K"],
                                      conv=((cfg["m"], cfg["k"]),), n=cfg["n"], loss=cfg["loss"],
                                      stride=cfg["stride"], padding=cfg["padding"], pool=cfg["pool"], data_ranks=dr)
        for name, e in expl.items():
            assert sum(e.parts.values()) + e.unexplained == e.deficiency == pred.p - ranks[name]
            assert e.unexplained >= 0
            if pred.kinds[name] == "exact" and cfg["pool"] != "global":
                assert e.unexplained == 0, (cfg, name, e)


# --------------------------------------------------------------------------- deep networks: bounds

BATCH = 16  # one compiled Hessian per architecture, whatever n is


def _deep_configs(per_arch=9, seed=4242):
    """Six random architectures, nine draws each: 2, 3, 4 conv layers of 1–3 channels,
    kernels 1–3, 4×4 or 5×5 images, valid or same padding; linear (pools 2×2 average,
    none, global) and ReLU (global, none, none), a bias in two of them, each loss twice;
    n from 2 to 32 (below and above the bounds' switches)."""
    rng = np.random.default_rng(seed)
    pools = ("avg", "none", "global", "global", "none", "none")
    out, a = [], 0
    while a < len(pools):
        depth = 2 + a % 3
        side = int(rng.integers(4, 6))
        padding = str(rng.choice(["valid", "same"]))
        conv = tuple((int(rng.integers(1, 4)), int(rng.integers(1, 4))) for _ in range(depth))
        loss = LOSSES[a % 3]
        K = int(rng.integers(2, 4)) if loss == "cross" else int(rng.integers(1, 4))
        try:
            cnn_layers(side * side, conv, padding=padding, pool=pools[a])
        except ConfigError:  # the pools leave no pixels: draw again
            continue
        arch = dict(side=side, conv=conv, padding=padding, pool=pools[a], activation="linear" if a < 3 else "relu",
                    loss=loss, K=K, bias=a in (2, 4))
        for j in range(per_arch):
            n = int(rng.integers(2, 33)) if j % 2 else int(rng.integers(2, 12))
            out.append(dict(arch, n=n, seed=int(rng.integers(10_000))))
        a += 1
    return out


DEEP = _deep_configs()


@functools.cache
def _deep_results():
    rows, compiled = [], {}
    for cfg in DEEP:
        d = cfg["side"] ** 2
        arch = dict(padding=cfg["padding"], pool=cfg["pool"])
        key = (cfg["side"], cfg["conv"], cfg["padding"], cfg["pool"], cfg["activation"], cfg["bias"], cfg["K"])
        f, params = build_cnn(d, cfg["K"], cfg["conv"], activation=cfg["activation"], bias=cfg["bias"],
                              seed=cfg["seed"], **arch)
        with jax.enable_x64(True):
            if key not in compiled:  # the same model object: its compiled Hessians are reused
                compiled[key] = function_model(f, params)[0]
            model = compiled[key]
            theta = ravel_pytree(jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), params))[0]
            data = gaussian_mixture(n=cfg["n"], dim=d, K=cfg["K"], seed=cfg["seed"] + 1)
            H = hessians(model, get_loss(cfg["loss"]), theta, data.X, data.Y, batch_size=BATCH)
        ranks = {name: numerical_rank(H[name], overwrite=True).rank for name in MATRICES}
        dr = cnn_data_ranks(data.X, cfg["conv"], kernels=params["conv1"]["w"], **arch)
        pred = predict_cnn_ranks(d=d, K=cfg["K"], conv=cfg["conv"], loss=cfg["loss"], activation=cfg["activation"],
                                 bias=cfg["bias"], n=cfg["n"], ranks=dr, **arch)
        assert pred.p == model.num_params
        rows.append((cfg, ranks, pred))
    return rows


def deep_summary():
    """``{matrix: (met with equality, total)}`` and ``{matrix:bound: (equal, total)}``."""
    per_matrix, per_bound = {}, {}
    for _cfg, ranks, pred in _deep_results():
        for name in MATRICES:
            eq = int(ranks[name] == getattr(pred, name))
            for table, key in ((per_matrix, name), (per_bound, f"{name}:{pred.bounds[name]}")):
                e, t = table.get(key, (0, 0))
                table[key] = (e + eq, t + 1)
    return per_matrix, per_bound


def test_deep_battery_covers_the_cases_asked_for():
    c = DEEP
    assert len(c) >= 50
    assert {len(x["conv"]) for x in c} == {2, 3, 4}
    assert {x["activation"] for x in c} == {"linear", "relu"}
    assert {x["loss"] for x in c} == set(LOSSES) and {x["pool"] for x in c} == {"none", "avg", "global"}
    assert any(x["bias"] for x in c) and not all(x["bias"] for x in c)


def test_no_deep_bound_is_ever_exceeded():
    above = []
    for cfg, ranks, pred in _deep_results():
        for name in MATRICES:
            assert pred.kinds[name] == "bound", (cfg, pred.kinds)
            if ranks[name] > getattr(pred, name):
                above.append((cfg, name, ranks[name], getattr(pred, name), pred.bounds[name]))
    assert not above, above
    per_matrix, per_bound = deep_summary()
    print("\ndeep CNN battery: bounds met with equality")
    for key, (e, t) in {**per_matrix, **per_bound}.items():
        print(f"  {key:<32} {e}/{t}")
    # the structural bounds are the ones that apply, not only the trivial p
    names = set(per_bound)
    assert {"H_o:function-space", "H_F:layer-pairs"} <= names, names


def test_linear_deep_bounds_grow_with_the_channels_not_the_parameters():
    # two valid 3×3 layers on 6×6 images (P = 16, then 4), K' = s = 3: the layer-pairs
    # bound is 2(9m + 12m) = 42m, linear in the channels, while p = 9m + 9m² + 12m
    X = gaussian_mixture(n=50, dim=36, K=3, seed=0).X
    preds = {}
    for m in (8, 32):
        conv = ((m, 3), (m, 3))
        preds[m] = predict_cnn_ranks(d=36, K=3, conv=conv, loss="mse", activation="linear", n=50,
                                     ranks=cnn_data_ranks(X, conv))
        assert preds[m].p == 9 * m + 9 * m * m + 12 * m
        assert preds[m].bounds["H_F"] == "layer-pairs" and preds[m].H_F == 42 * m
    assert preds[32].p / preds[8].p > 13 and preds[32].H_F / preds[8].H_F == 4
    assert preds[32].H_o == preds[8].H_o == 3 * 36  # function space: K'·r_in, whatever the channels


def test_predict_cnn_ranks_refuses_bad_input():
    X = np.ones((3, 16))
    with pytest.raises(ConfigError, match="pool"):
        cnn_data_ranks(X, ((2, 2),), pool="max")
    with pytest.raises(ConfigError, match="dim"):
        cnn_layers(15, ((2, 2),))
    dr = cnn_data_ranks(X, ((2, 2),))
    with pytest.raises(ConfigError, match="K"):
        predict_cnn_ranks(d=16, K=1, conv=((2, 2),), loss="cross", n=3, ranks=dr)


if __name__ == "__main__":
    per_matrix, per_bound = deep_summary()
    for key, (e, t) in {**per_matrix, **per_bound}.items():
        print(f"{key:<32} {e}/{t}")


def test_global_pool_function_space_bound_uses_the_stack_windows_and_holds():
    # valid 3×3 then 2×2 on 6×6, global average: one average over 4×4 windows, 16 dims
    for conv, bias, loss in ((((3, 3), (3, 2)), False, "mse"), (((2, 2), (3, 2), (2, 1)), True, "cross")):
        d, K, n = 36, 3, 30
        data = gaussian_mixture(n=n, dim=d, K=K, seed=7)
        f, params = build_cnn(d, K, conv, pool="global", activation="linear", bias=bias, seed=8)
        dr = cnn_data_ranks(data.X, conv, pool="global", kernels=params["conv1"]["w"])
        side = sum(k - 1 for _, k in conv) + 1
        assert dr.composite == (side * side, side * side + 1)
        pred = predict_cnn_ranks(d=d, K=K, conv=conv, loss=loss, activation="linear", bias=bias, n=n,
                                 pool="global", ranks=dr)
        assert pred.bounds["H_o"] == "function-space" and pred.H_o == (K - (loss == "cross")) * dr.composite[bias]
        with jax.enable_x64(True):
            model, theta = function_model(f, params)
            H_o = hessians(model, get_loss(loss), theta, data.X, data.Y, which=("H_o",))["H_o"]
        assert numerical_rank(H_o).rank <= pred.H_o
