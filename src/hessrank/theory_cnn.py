r"""Rank predictions for the built-in convolutional network, each tagged with its kind.

Notation (``docs/theory.md``, "Convolutional networks"): conv layers :math:`l = 1..L_c`
with :math:`m_l` output channels, kernel :math:`k_l`, :math:`c_0 = 1` input channel;
:math:`D = k_1^2` the patch size of the first layer; the dense head sees :math:`P`
positions per channel (after the optional pooling; :math:`P = 1` with ``pool="global"``).
From the data: :math:`r_{in}` the rank of the data as the first layer sees it (the
:math:`n\times PD` matrix of each sample's head patches), :math:`r_p` the rank of all
head patches (:math:`nP\times D`), :math:`\bar r` the rank of the mean patches (global
pool); at the parameters: :math:`\rho` the rank of the first layer's features
(:math:`n\times mP`). :math:`s = \min(r_{in}, K')`.

**One conv layer, linear, no bias** (:math:`f_i = \sum_j V_j Z_i w_j`, bilinear in the
dense weights :math:`V` and the kernels :math:`W`):

.. math::

    \mathrm{rank}\,H_F = 2m\,\min(r_p, sP) \quad\text{(exact)},\qquad
    \mathrm{rank}\,H_o = K' r_{in} \quad\text{when } \rho = r_{in} \text{ (exact)},

    \mathrm{rank}\,H_L = \mathrm{rank}\,H_o + \mathrm{rank}\,H_F - 1
    \quad\text{(exact for stride 1, no pool, } \rho = r_{in}\text{, below } p - S - (D - r_p)m).

With ``pool="global"`` the network is the one-hidden-layer linear MLP of width :math:`m` on
the mean patches: the MLP formulas of :mod:`hessrank.theory` with :math:`r = \bar r`,
:math:`d = D` (exact).

**Bounds for every built-in CNN** (kind ``bound``, each named):

* null directions (as for the MLP): data span :math:`(D - r_p)m_1` (with bias, of the
  augmented patches), softmax shift (the dense head's inputs, +1 with bias), channel
  rescaling :math:`\sum_l m_l` (linear, relu, leaky_relu; null for :math:`H_o` only);
  :math:`\mathrm{rank}\,H_o \le nK'`;
* function space (linear): :math:`\mathrm{rank}\,H_o \le K' r_{in}` (:math:`K'\tilde r_{in}` with bias;
  valid padding, stride 1 and a global pool: the rank of the mean windows of side
  :math:`\sum_l (k_l - 1) + 1`, the receptive field of the whole stack, when smaller);
* layer pairs (linear, relu, leaky_relu: :math:`f` is multilinear in the layers' weights
  wherever the activation pattern is fixed): with :math:`t = s` (linear; :math:`\tilde s`
  with bias) or :math:`t = n`,

.. math::

    \mathrm{rank}\,H_F \le 2\min\Big(\sum_{a=1}^{L_c} \min(p_a,\ t\,m_a P_a,\ p_{>a}),\
    \sum_{b=2}^{L_c+1} \min(p_b,\ t\,m_{b-1} P_{b-1},\ p_{<b})\Big);

* :math:`\mathrm{rank}\,H_L \le \mathrm{rank}\,H_o + \mathrm{rank}\,H_F` (the bounds' sum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .linalg import rank_from_eigenvalues, spectrum
from .models.cnn import cnn_geometry
from .theory import HOMOGENEOUS, MATRICES, Deficiency, Prediction, effective_outputs, predict_ranks

#: what each bound's name means (``Prediction.bounds`` of a CNN), for tables and ``--explain``
CNN_BOUND_TEXTS = {
    "function-space": "K'·r_in (outputs linear in the data the first layer sees)",
    "conv-features": "K'·ρ + m(r_p − 1) (features of rank ρ < r_in)",
    "layer-pairs": "2 Σ over layer pairs (f multilinear in the layers)",
    "H_o+H_F": "rank H_o + rank H_F (their bounds)",
}


@dataclass(frozen=True)
class ConvLayer:
    """One conv layer of the built-in CNN: ``channels`` out of ``inputs`` channels, kernel
    ``kernel``, ``conv_side`` positions per side after the convolution, ``side`` after its pool."""

    channels: int
    inputs: int
    kernel: int
    conv_side: int
    side: int

    @property
    def positions(self) -> int:
        """Positions per channel after the pool (what the next layer or the head sees)."""
        return self.side * self.side

    @property
    def conv_positions(self) -> int:
        """Positions per channel right after the convolution (before the pool)."""
        return self.conv_side * self.conv_side


def cnn_layers(d: int, conv, *, stride: int = 1, padding: str = "valid", pool: str = "none") -> tuple[ConvLayer, ...]:
    """The geometry of the built-in CNN's conv layers on ``d = side²`` pixels (``pool``:
    ``none``, ``avg`` a 2×2 average pool after each layer, ``global`` an average over all
    positions after the last one)."""
    conv, _, conv_sides, sides = cnn_geometry(d, conv, stride=stride, padding=padding, pool=pool)
    channels_in = (1,) + tuple(c for c, _ in conv[:-1])
    return tuple(ConvLayer(channels=c, inputs=c_in, kernel=k, conv_side=conv_side, side=size)
                 for (c, k), c_in, conv_side, size in zip(conv, channels_in, conv_sides, sides))


def head_patches(X, *, kernel: int, stride: int = 1, padding: str = "valid", pool: str = "none") -> np.ndarray:
    """The first conv layer's patches as the next stage sees them, shape ``(n, P, k²)``.

    Patch ``t`` of sample ``i`` is the k×k window of the (zero-padded) image at output
    position ``t`` (row-major, as ``jax.lax.conv_general_dilated`` with the padding rule
    of TensorFlow's ``SAME``); with ``pool="avg"`` each 2×2 block of positions is
    averaged, with ``pool="global"`` all positions are. For one linear conv layer
    without bias the features are exactly ``Z_i w_j`` with these ``Z_i``.
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    side = math.isqrt(d)
    layer = cnn_layers(d, ((1, kernel),), stride=stride, padding=padding, pool="none")[0]
    o = layer.conv_side
    if padding == "same":
        total = max((o - 1) * stride + kernel - side, 0)
        lo = total // 2
        img = np.zeros((n, side + total, side + total))
        img[:, lo:lo + side, lo:lo + side] = X.reshape(n, side, side)
    else:
        img = X.reshape(n, side, side)
    Z = np.empty((n, o, o, kernel * kernel))
    for a in range(o):
        for b in range(o):
            window = img[:, a * stride:a * stride + kernel, b * stride:b * stride + kernel]
            Z[:, a, b, :] = window.reshape(n, -1)
    if pool == "avg":
        h = o // 2
        Z = Z[:, :2 * h, :2 * h].reshape(n, h, 2, h, 2, -1).mean(axis=(2, 4))
    elif pool == "global":
        Z = Z.mean(axis=(1, 2), keepdims=True)
    return Z.reshape(n, -1, kernel * kernel)


@dataclass(frozen=True)
class PatchRanks:
    """Ranks of the first conv layer's patches: ``r_in`` of each sample's patches
    flattened (the data as the layer sees it), ``patch_rank`` of all patches of all
    samples, and both with a 1 appended (``*_affine``: what a layer with bias sees)."""

    r_in: int
    r_in_affine: int
    patch_rank: int
    patch_rank_affine: int


@dataclass(frozen=True)
class CNNDataRanks:
    """The ranks a CNN's predictions use, each by the rank rule of the Hessians.

    ``r`` of the data; ``raw``: :class:`PatchRanks` of the first layer's patches at every
    position (what a non-linear layer sees); ``stage``: the same after the first layer's
    own pool (2×2 average, or the global average of a one-layer network), which a
    linear first layer commutes with; ``features_rank`` ρ of the first layer's features
    after that pool at the parameters (``None`` when not known: then no exact H_o)."""

    r: int
    raw: PatchRanks
    stage: PatchRanks
    features_rank: int | None = None
    #: ``(rank, rank with a 1 appended)`` of the mean windows of the whole stack (valid
    #: padding, stride 1, global pool: a linear network is one average over windows of side
    #: ``Σ (k_l − 1) + 1``), else ``None``
    composite: tuple[int, int] | None = None

    def seen(self, activation: str) -> PatchRanks:
        """The patch ranks that bound a network with this activation (``stage`` when linear)."""
        return self.stage if activation == "linear" else self.raw


def _data_rank(A, *, rtol, atol) -> int:
    """``rank(AᵀA)`` by the rule of :func:`hessrank.linalg.covariance_rank` (tolerance for
    the size of AᵀA), from the smaller of AᵀA and AAᵀ (the same non-zero eigenvalues)."""
    A = np.asarray(A, dtype=np.float64)
    gram = A @ A.T if A.shape[0] < A.shape[1] else A.T @ A
    return rank_from_eigenvalues(spectrum(gram, overwrite=True), A.shape[1], rtol=rtol, atol=atol).rank


def _patch_ranks(Z, *, rtol, atol) -> PatchRanks:
    n, P, D = Z.shape
    flat, stacked = Z.reshape(n, P * D), Z.reshape(n * P, D)
    return PatchRanks(r_in=_data_rank(flat, rtol=rtol, atol=atol),
                      r_in_affine=_data_rank(np.c_[flat, np.ones(n)], rtol=rtol, atol=atol),
                      patch_rank=_data_rank(stacked, rtol=rtol, atol=atol),
                      patch_rank_affine=_data_rank(np.c_[stacked, np.ones(n * P)], rtol=rtol, atol=atol))


def cnn_data_ranks(X, conv, *, stride: int = 1, padding: str = "valid", pool: str = "none", kernels=None,
                   rtol: float | None = None, atol: float | None = None) -> CNNDataRanks:
    """:class:`CNNDataRanks` of the data ``X`` (n × d) for the built-in CNN ``conv``.

    ``kernels``: the first layer's weights (``m × 1 × k × k`` or ``m × k²``) at the point
    of measurement, for ρ; without them ``features_rank`` is ``None``."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    layers = cnn_layers(X.shape[1], conv, stride=stride, padding=padding, pool=pool)
    stage_pool = pool if (pool == "avg" or len(layers) == 1) else "none"
    k = layers[0].kernel
    raw = head_patches(X, kernel=k, stride=stride, padding=padding)
    stage = head_patches(X, kernel=k, stride=stride, padding=padding, pool=stage_pool)
    rho = None
    if kernels is not None:
        w = np.asarray(kernels, dtype=np.float64).reshape(layers[0].channels, k * k)
        rho = _data_rank(np.einsum("itd,jd->ijt", stage, w).reshape(n, -1), rtol=rtol, atol=atol)
    composite = None
    if pool == "global" and padding == "valid" and stride == 1:
        k_all = sum(layer.kernel - 1 for layer in layers) + 1
        mean = head_patches(X, kernel=k_all, pool="global").reshape(n, -1)
        composite = (_data_rank(mean, rtol=rtol, atol=atol), _data_rank(np.c_[mean, np.ones(n)], rtol=rtol, atol=atol))
    return CNNDataRanks(r=_data_rank(X, rtol=rtol, atol=atol), raw=_patch_ranks(raw, rtol=rtol, atol=atol),
                        stage=_patch_ranks(stage, rtol=rtol, atol=atol), features_rank=rho, composite=composite)


def _layer_params(layers, K: int, bias: bool) -> list[int]:
    """Parameters of each conv layer, then of the dense head."""
    sizes = [l.channels * l.inputs * l.kernel ** 2 + (l.channels if bias else 0) for l in layers]
    flat = layers[-1].channels * layers[-1].positions
    return sizes + [flat * K + (K if bias else 0)]


def _null_dimensions(layers, *, K, loss, activation, bias, seen: PatchRanks):
    """Null directions of the matrices at every θ (as :func:`hessrank.theory._null_dimensions`):
    first-layer kernels orthogonal to the patches it sees, the softmax shift of the dense
    head, one rescaling per channel of a positively homogeneous network."""
    first = layers[0]
    D = first.kernel ** 2
    span = (D + 1 - seen.patch_rank_affine) if bias else (D - seen.patch_rank)
    span *= first.channels
    flat = layers[-1].channels * layers[-1].positions
    return {"data_span": max(0, span),
            "softmax_shift": (flat + (1 if bias else 0)) if loss == "cross" else 0,
            "rescaling": sum(l.channels for l in layers) if activation in HOMOGENEOUS else 0}


def _layer_pairs_bound(layers, sizes, *, t: int, first_rank: int, linear: bool) -> int:
    """``2 min(Σ_a rows_a, Σ_b cols_b)``: the bilinear bound on rank H_F (module docstring).

    Block row a (layer a against every later layer) has rank ≤ ``t·m_a·P_a`` (the
    directions of layer a enter through t vectors of its output), ≤ its parameters and ≤
    the later layers' parameters; block column b likewise through t functionals on b's
    input. ``linear``: pooled positions (the pool commutes with the layers); otherwise the
    positions before the pool, where the activation's mask acts."""
    total = sum(sizes)
    rows, cols, below = 0, 0, 0
    for a, layer in enumerate(layers):
        pos = layer.positions if linear else layer.conv_positions
        row = min(sizes[a], t * layer.channels * pos, total - below - sizes[a])
        if a == 0:
            row = min(row, layer.channels * first_rank)
        rows += row
        below += sizes[a]
    below = sizes[0]
    for b in range(1, len(sizes)):
        prev = layers[b - 1]
        cols += min(sizes[b], t * prev.channels * prev.positions, below)
        below += sizes[b]
    return 2 * min(rows, cols)


def predict_cnn_ranks(*, d: int, K: int, conv, loss: str = "mse", activation: str = "linear", bias: bool = False,
                      stride: int = 1, padding: str = "valid", pool: str = "none", n: int,
                      ranks: CNNDataRanks) -> Prediction:
    """Predicted ``rank H_L, H_o, H_F`` of the built-in CNN with a kind per matrix.

    ``ranks`` from :func:`cnn_data_ranks` on the same samples (and, for an exact H_o,
    the first layer's weights at the point of measurement). Exact: one linear conv layer
    without bias (see the module docstring for the regimes); otherwise the named bounds
    of the module docstring, the smallest that applies.

    Raises :class:`~hessrank.errors.ConfigError` naming a bad argument.
    """
    layers = cnn_layers(d, conv, stride=stride, padding=padding, pool=pool)
    if loss == "cross" and K < 2:
        raise ConfigError.invalid("K", K, "softmax cross-entropy needs K >= 2 (with one output the loss is constant)")
    K_eff = effective_outputs(K, loss)
    sizes = _layer_params(layers, K, bias)
    p = sum(sizes)
    first, M, L = layers[0], sum(layer.channels for layer in layers), len(layers) + 1
    seen = ranks.seen(activation)
    r_in = seen.r_in_affine if bias else seen.r_in
    s = min(r_in, K_eff)
    if len(layers) == 1 and activation == "linear" and not bias and pool == "global":
        # the one-hidden-layer linear MLP of width m on the mean patches (d = k², r = r̄)
        pred = predict_ranks(r=seen.r_in, K=K, units=(first.channels,), loss=loss, n=n, d=first.kernel ** 2)
        return Prediction(H_L=pred.H_L, H_o=pred.H_o, H_F=pred.H_F, kinds=dict(pred.kinds), bounds={},
                          r=ranks.r, K_eff=K_eff, q=pred.q, s=pred.s, M=M, L=L, p=p, linear=dict(pred.linear))
    nulls = _null_dimensions(layers, K=K, loss=loss, activation=activation, bias=bias, seen=seen)
    shared = [k for k in ("data_span", "softmax_shift") if nulls[k] > 0]

    def null_bound(with_rescaling):
        used = shared + (["rescaling"] if with_rescaling and nulls["rescaling"] > 0 else [])
        return p - sum(nulls[k] for k in used), "+".join(k.replace("_", "-") for k in used) or "p"

    cands = {m: [null_bound(m == "H_o")] for m in MATRICES}
    cands["H_o"].append((n * K_eff, "nK'"))
    if activation == "linear":
        r_fs = r_in if ranks.composite is None else min(r_in, ranks.composite[1 if bias else 0])
        cands["H_o"].append((K_eff * r_fs, "function-space"))
    if activation in HOMOGENEOUS:
        t = s if activation == "linear" else n
        first_rank = seen.patch_rank_affine if bias else seen.patch_rank
        cands["H_F"].append((_layer_pairs_bound(layers, sizes, t=t, first_rank=first_rank,
                                                linear=activation == "linear"), "layer-pairs"))
    values, kinds, bounds = {}, {}, {}
    for m in ("H_o", "H_F"):
        values[m], bounds[m] = min(cands[m])
        kinds[m] = "bound"
    cands["H_L"].append((values["H_o"] + values["H_F"], "H_o+H_F"))
    values["H_L"], bounds["H_L"] = min(cands["H_L"])
    kinds["H_L"] = "bound"

    if len(layers) == 1 and activation == "linear" and not bias:
        P, rp, rho = first.positions, seen.patch_rank, ranks.features_rank
        values["H_F"], kinds["H_F"] = 2 * first.channels * min(rp, s * P), "exact"
        del bounds["H_F"]
        if rho is not None and rho == r_in:
            values["H_o"], kinds["H_o"] = K_eff * r_in, "exact"
            del bounds["H_o"]
            below = values["H_o"] + values["H_F"] - 1  # ∇L lies in both ranges
            if stride == 1 and pool == "none" and below < null_bound(False)[0]:
                values["H_L"], kinds["H_L"] = below, "exact"
                del bounds["H_L"]
        elif rho is not None:
            feat = K_eff * rho + first.channels * (rp - 1)
            if feat < values["H_o"]:
                values["H_o"], bounds["H_o"] = feat, "conv-features"
        if kinds["H_L"] == "bound":
            values["H_L"], bounds["H_L"] = min(null_bound(False), (values["H_o"] + values["H_F"], "H_o+H_F"))
    return Prediction(H_L=values["H_L"], H_o=values["H_o"], H_F=values["H_F"], kinds=kinds, bounds=bounds,
                      r=ranks.r, K_eff=K_eff, q=0, s=s, M=M, L=L, p=p,
                      r_affine=None)


def explain_cnn_deficiency(*, ranks: dict, prediction: Prediction, d: int, K: int, conv, n: int, loss: str = "mse",
                           activation: str = "linear", bias: bool = False, stride: int = 1, padding: str = "valid",
                           pool: str = "none", data_ranks: CNNDataRanks) -> dict:
    """``p - rank`` of each measured matrix of the built-in CNN split into the parts of
    :data:`hessrank.theory.DEFICIENCY_PARTS` (as :func:`hessrank.theory.explain_deficiency`):
    data span, softmax shift, channel rescaling (H_o), sample count (H_o), then
    ``linear_structure``: down to the exact value or the structural bound (function
    space, layer pairs, …) where one applies. Returns ``{matrix: Deficiency}``."""
    layers = cnn_layers(d, conv, stride=stride, padding=padding, pool=pool)
    nulls = _null_dimensions(layers, K=K, loss=loss, activation=activation, bias=bias,
                             seen=data_ranks.seen(activation))
    p = prediction.p
    out = {}
    for m, rank in ranks.items():
        if m not in MATRICES:
            raise ConfigError.invalid("ranks", m, f"unknown matrix; use {', '.join(MATRICES)}")
        c, parts = p, dict.fromkeys(("data_span", "softmax_shift", "rescaling", "sample_count",
                                     "linear_structure"), 0)
        for part in ("data_span", "softmax_shift") + (("rescaling",) if m == "H_o" else ()):
            parts[part] = nulls[part]
            c -= nulls[part]
        if m == "H_o":
            parts["sample_count"] = max(0, c - n * prediction.K_eff)
            c -= parts["sample_count"]
        target = getattr(prediction, m)
        if prediction.kinds.get(m) in ("exact", "bound") and target is not None:
            parts["linear_structure"] = max(0, c - target)
            c -= parts["linear_structure"]
        out[m] = Deficiency(matrix=m, p=p, rank=int(rank), parts=parts, unexplained=c - int(rank))
    return out
