r"""Rank predictions for H_L, H_o, H_F, each tagged with how far it can be trusted.

Notation: data :math:`x_1..x_n \in \mathbb{R}^d`, :math:`r = \mathrm{rank}(\sum_i x_i x_i^\top)`;
with biases the first layer sees the augmented inputs :math:`\tilde x_i = [x_i; 1]`, of rank
:math:`\tilde r = \min(n, r + 1)` for generic data. :math:`L` weight matrices, hidden widths
:math:`M_1..M_{L-1}`, :math:`M = \sum M_l`, :math:`p` parameters, :math:`K' = K` (mse, cosh)
or :math:`K - 1` (softmax cross-entropy). Kinds: ``exact`` (proven or derived, and equal
to the measurement on a randomised battery in the tests), ``bound`` (a proven upper
bound: a measurement above it is a bug), ``estimate`` (a reference line, no guarantee).

**Linear, no bias** (exact; :math:`s = \min(r, K')`, :math:`q = \min(r, K', M_1..M_{L-1})`):

.. math::

    \mathrm{rank}\,H_o = q\,(r + K' - q), \qquad
    \mathrm{rank}\,H_F = 2qM + 2qs - Lq^2, \qquad
    \mathrm{rank}\,H_L = 2qM - Lq^2 + q\,(r + K').

**Linear, bias in every layer** (:math:`\tilde q = \min(\tilde r, K', M_1..M_{L-1})`,
:math:`\tilde s = \min(\tilde r, K')`, :math:`[\cdot]` the Iverson bracket):

.. math::

    \mathrm{rank}\,H_o = \tilde q\,(\tilde r + K' - \tilde q) + (K' - \tilde q)\,[\tilde q < \tilde r]
    \quad\text{(exact)},

    \mathrm{rank}\,H_F \approx 2\tilde qM + 2\tilde q\tilde s - L\tilde q^2 + (L-2)\,\tilde q, \quad
    \mathrm{rank}\,H_L \approx 2\tilde qM - L\tilde q^2 + \tilde q(\tilde r + K') + (L-1)\,\tilde q
    + (K' - \tilde q)[\tilde q < \tilde r] \quad\text{(estimates)}.

(With :math:`\tilde r = r + 1` the H_o formula is :math:`q(r + K' - q) + K'`.)

**Bounds for every network** (null directions of the matrices at every θ; they are
linearly independent at generic θ, so their dimensions add):

* data span: :math:`W_1` directions whose rows are orthogonal to the data (to the
  augmented data with bias): :math:`D = (d - r) M_1`, or :math:`(d + 1 - \tilde r) M_1`
  with bias. Null for H_L, H_o, H_F (the loss is constant along them).
* softmax shift (cross): a common vector added to every row of :math:`W_L` (and a
  constant to :math:`b_L`): :math:`S = M_{L-1}` (+1 with bias). Null for all three.
* rescaling (relu, leaky_relu, linear: positively homogeneous): each hidden neuron's
  incoming weights (and bias) × α, outgoing ÷ α: :math:`R = M`. Null for J, so for H_o.
* sample count: :math:`\mathrm{rank}\,H_o \le nK'`; trivially every rank is :math:`\le p`.

.. math::

    \mathrm{rank}\,H_o \le \min(nK',\; p - D - S - R), \qquad
    \mathrm{rank}\,H_L,\ \mathrm{rank}\,H_F \le p - D - S.

See ``docs/theory.md`` for the derivations and the batteries that check each formula.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field, replace

from .config import ACTIVATIONS, LOSSES
from .errors import ConfigError

MATRICES = ("H_L", "H_o", "H_F")
KINDS = ("exact", "bound", "estimate")
#: activations with σ(αz) = ασ(z) for α > 0: one rescaling symmetry per hidden neuron
HOMOGENEOUS = ("linear", "relu", "leaky_relu")
#: order in which :func:`explain_deficiency` attributes the deficiency ``p - rank``
DEFICIENCY_PARTS = ("data_span", "softmax_shift", "rescaling", "sample_count", "linear_structure")


@dataclass(frozen=True)
class Prediction:
    """Predicted ranks, one kind per matrix, and the quantities they are built from.

    ``kinds[m]`` is ``"exact"``, ``"bound"``, ``"estimate"`` or ``None`` (nothing to
    say); ``bounds[m]`` names the bound that applied when ``kinds[m] == "bound"``
    (``"p"``, ``"nK'"``, or the null spaces used, e.g. ``"data-span+rescaling"``).
    ``linear`` holds the no-bias linear formula as a reference line.
    """

    H_L: int | None
    H_o: int | None
    H_F: int | None
    kinds: dict
    bounds: dict
    r: int
    K_eff: int
    q: int
    s: int
    M: int
    L: int
    p: int | None = None
    r_affine: int | None = None
    linear: dict = field(default_factory=dict)
    #: the point the formulas are applied at (:func:`at_point`): ``generic`` (assumed: a random
    #: initialisation), ``zero`` (residual matrix Ω = 0) or ``special`` (neither)
    point: str = "generic"

    @property
    def kind(self) -> str | None:
        """One kind for all three (backwards compatible): the weakest of ``kinds``."""
        present = [k for k in self.kinds.values() if k is not None]
        if not present:
            return None
        for k in ("estimate", "bound", "exact"):
            if k in present:
                return k
        return None

    def to_dict(self) -> dict:
        """The prediction and its ingredients as JSON-ready values."""
        out = asdict(self)
        out["kind"] = self.kind
        return out


def effective_outputs(K: int, loss: str) -> int:
    """``K'``: softmax cross-entropy ignores a common shift of the logits."""
    return K - 1 if loss == "cross" else K


def trivial_prediction(*, p: int, n: int, K: int, loss: str, r: int) -> Prediction:
    """The bounds that hold for every network (a CNN, a user's model): ``rank H_o ≤
    min(p, nK')`` (:math:`H_o = \\sum_i J_i^\\top \\Lambda_i J_i`, :math:`\\operatorname{rank}
    \\Lambda_i \\le K'`) and each rank ``≤ p``; kind ``bound``, no formula (q, s, M, L are 0)."""
    K_eff = effective_outputs(K, loss)
    h_o = min(p, n * K_eff)
    return Prediction(H_L=p, H_o=h_o, H_F=p, kinds=dict.fromkeys(MATRICES, "bound"),
                      bounds={"H_L": "p", "H_o": "nK'" if h_o < p else "p", "H_F": "p"},
                      r=r, K_eff=K_eff, q=0, s=0, M=0, L=0, p=p)


def num_params(*, d: int, units, K: int, bias: bool) -> int:
    """``p`` of the MLP with widths ``(d, *units, K)``."""
    widths = (d, *units, K)
    return sum(a * b + (b if bias else 0) for a, b in zip(widths[:-1], widths[1:]))


def _check_int(name, value, *, minimum, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name}={value!r}: must be an integer >= {minimum}")
    if value < minimum:
        raise ConfigError(f"{name}={value!r}: must be an integer >= {minimum}")
    return int(value)


def _validate(*, r, K, units, loss, activation, bias, n, d, r_affine):
    if isinstance(units, (str, bytes)) or not hasattr(units, "__iter__"):
        raise ConfigError(f"units={units!r}: must be a sequence of integer widths >= 1")
    units = tuple(units)
    if not units:
        raise ConfigError("units=(): need at least one hidden layer")
    if any(isinstance(u, bool) or not isinstance(u, numbers.Integral) or u < 1 for u in units):
        raise ConfigError(f"units={units!r}: every width must be an integer >= 1")
    units = tuple(int(u) for u in units)
    K = _check_int("K", K, minimum=1)
    r = _check_int("r", r, minimum=0)
    n = _check_int("n", n, minimum=1, allow_none=True)
    d = _check_int("d", d, minimum=1, allow_none=True)
    r_affine = _check_int("r_affine", r_affine, minimum=0, allow_none=True)
    if loss not in LOSSES:
        raise ConfigError(f"loss={loss!r}: not one of {', '.join(LOSSES)}")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"activation={activation!r}: not one of {', '.join(ACTIVATIONS)}")
    if not isinstance(bias, bool):
        raise ConfigError(f"bias={bias!r}: must be True or False")
    if loss == "cross" and K < 2:
        raise ConfigError(f"K={K}: softmax cross-entropy needs K >= 2 (with one output the loss is constant)")
    for name, cap in (("n", n), ("d", d)):
        if cap is not None and r > cap:
            raise ConfigError(f"r={r}: exceeds {name} = {cap}")
    if r_affine is not None:
        hi = r + 1 if n is None else min(n, r + 1)
        if not r <= r_affine <= hi:
            raise ConfigError(f"r_affine={r_affine}: must lie between r = {r} and {hi}")
    return r, K, units, n, d, r_affine


def _linear_no_bias(r, K_eff, units):
    """The paper's formulas: ``(H_L, H_o, H_F, q, s)``."""
    L, M = len(units) + 1, sum(units)
    s = min(r, K_eff)
    q = min(r, K_eff, *units)
    H_o = q * (r + K_eff - q)
    H_F = 2 * q * M + 2 * q * s - L * q * q
    H_L = 2 * q * M - L * q * q + q * (r + K_eff)
    return H_L, H_o, H_F, q, s


def _linear_bias(r_aff, K_eff, units):
    """Linear network with a bias in every layer: ``(H_L, H_o, H_F)``; H_o is derived
    (augmented-input view), H_F and H_L are fitted estimates (docs/theory.md)."""
    L, M = len(units) + 1, sum(units)
    s = min(r_aff, K_eff)
    q = min(r_aff, K_eff, *units)
    const = (K_eff - q) if q < r_aff else 0  # the last bias adds constant outputs outside span
    H_o = q * (r_aff + K_eff - q) + const
    H_F = 2 * q * M + 2 * q * s - L * q * q + (L - 2) * q
    H_L = 2 * q * M - L * q * q + q * (r_aff + K_eff) + (L - 1) * q + const
    return H_L, H_o, H_F


def _null_dimensions(*, r, r_aff, K, units, loss, activation, bias, d):
    """Dimensions of the null spaces every matrix (or only H_o) has at every θ."""
    M1, top = units[0], units[-1]
    parts = {"data_span": (d + 1 - r_aff) * M1 if bias else (d - r) * M1,
             "softmax_shift": (top + (1 if bias else 0)) if loss == "cross" else 0,
             "rescaling": sum(units) if activation in HOMOGENEOUS else 0}
    return parts


def _symmetry_bounds(*, p, n, K_eff, nulls):
    """``{matrix: (bound, name)}``: the smallest bound that applies, and its name."""
    shared = [k for k in ("data_span", "softmax_shift") if nulls[k] > 0]
    out = {}
    for m in MATRICES:
        used = shared + (["rescaling"] if m == "H_o" and nulls["rescaling"] > 0 else [])
        value = p - sum(nulls[k] for k in used)
        name = "+".join(k.replace("_", "-") for k in used) or "p"
        if m == "H_o" and n is not None and n * K_eff < value:
            value, name = n * K_eff, "nK'"
        out[m] = (value, name)
    return out


def predict_ranks(*, r: int, K: int, units, loss: str = "mse", activation: str = "linear",
                  bias: bool = False, n: int | None = None, d: int | None = None,
                  r_affine: int | None = None) -> Prediction:
    """Predicted ``rank H_L, H_o, H_F`` with a kind per matrix.

    Arguments: ``r`` the rank of the data's second-moment matrix, ``K`` outputs, hidden
    ``units``, ``loss``, ``activation``, ``bias``; optional ``n`` samples and ``d`` input
    dimension (needed for the bounds, which use ``p`` and ``nK'``, and for the bias
    formula, which uses ``r_affine``), and ``r_affine`` the rank of the augmented data
    ``[X, 1]`` (default ``min(n, r + 1)``, the generic value).

    Returns a :class:`Prediction`. Linear, no bias: exact. Linear with bias: H_o exact
    when ``n`` or ``r_affine`` is known, H_F and H_L estimates. Otherwise: bounds when
    ``d`` is known, else the linear formula as an estimate.

    Raises :class:`~hessrank.config.ConfigError` (a ``ValueError``) naming the bad
    argument and its value.
    """
    r, K, units, n, d, r_affine = _validate(r=r, K=K, units=units, loss=loss, activation=activation,
                                            bias=bias, n=n, d=d, r_affine=r_affine)
    K_eff = effective_outputs(K, loss)
    L, M = len(units) + 1, sum(units)
    nb_L, nb_o, nb_F, q, s = _linear_no_bias(r, K_eff, units)
    linear = {"H_L": nb_L, "H_o": nb_o, "H_F": nb_F}
    r_aff = r_affine if r_affine is not None else (min(n, r + 1) if n is not None else r + 1)
    p = num_params(d=d, units=units, K=K, bias=bias) if d is not None else None

    values, kinds, bounds = {}, {}, {}
    if activation == "linear" and not bias:
        values, kinds = dict(linear), dict.fromkeys(MATRICES, "exact")
    elif activation == "linear":
        b_L, b_o, b_F = _linear_bias(r_aff, K_eff, units)
        values = {"H_L": b_L, "H_o": b_o, "H_F": b_F}
        known = r_affine is not None or n is not None
        kinds = {"H_L": "estimate", "H_o": "exact" if known else "estimate", "H_F": "estimate"}
    if p is not None:
        nulls = _null_dimensions(r=r, r_aff=r_aff, K=K, units=units, loss=loss,
                                 activation=activation, bias=bias, d=d)
        for m, (value, name) in _symmetry_bounds(p=p, n=n, K_eff=K_eff, nulls=nulls).items():
            if kinds.get(m) == "exact":
                continue
            if m not in values or value < values[m]:
                # a proven bound below an estimate is the better statement
                values[m], kinds[m], bounds[m] = value, "bound", name
    for m in MATRICES:  # no p known, not linear: the linear formula as a reference line
        if m not in values:
            values[m], kinds[m] = linear[m], "estimate"
    return Prediction(H_L=values["H_L"], H_o=values["H_o"], H_F=values["H_F"], kinds=kinds,
                      bounds=bounds, r=r, K_eff=K_eff, q=q, s=s, M=M, L=L, p=p,
                      r_affine=r_aff if bias else None, linear=linear)


#: the states of the residual matrix Ω = Σ gᵢ x̃ᵢᵀ a prediction can be applied at (:func:`at_point`)
POINTS = ("generic", "zero", "special")


def at_point(prediction: Prediction, point: str, *, activation: str) -> Prediction:
    """``prediction`` at a point whose residual matrix :math:`\\Omega = \\sum_i g_i \\tilde
    x_i^\\top` (:math:`g_i = \\partial\\ell/\\partial f_i`) is ``point``.

    The formulas for H_F and H_L assume Ω of generic rank (``generic``: unchanged). For a
    linear network H_F is linear in Ω, so at ``zero`` (e.g. a least-squares minimum)
    :math:`H_F = 0` and :math:`H_L = H_o` exactly: H_F becomes 0 (exact) and H_L takes H_o's
    prediction and kind. At ``special`` (neither), or for a non-linear network away from a
    generic point, an ``exact`` H_F or H_L drops to ``estimate``. H_o does not depend on Ω.
    """
    if point not in POINTS:
        raise ConfigError(f"point={point!r}: not one of {', '.join(POINTS)}")
    if point == "generic":
        return replace(prediction, point=point)
    values = {"H_L": prediction.H_L, "H_o": prediction.H_o, "H_F": prediction.H_F}
    kinds, bounds = dict(prediction.kinds), dict(prediction.bounds)
    if point == "zero" and activation == "linear":
        values["H_F"], kinds["H_F"] = 0, "exact"
        values["H_L"], kinds["H_L"] = values["H_o"], kinds["H_o"]
        bounds.pop("H_F", None)
        bounds.pop("H_L", None)
        if kinds["H_L"] == "bound":
            bounds["H_L"] = bounds.get("H_o", "p")
    else:
        kinds.update({m: "estimate" for m in ("H_L", "H_F") if kinds.get(m) == "exact"})
    return replace(prediction, H_L=values["H_L"], H_F=values["H_F"], kinds=kinds, bounds=bounds, point=point)


#: how a measured rank compares with its prediction (:func:`compare_rank`)
COMPARISONS = ("equal", "differs", "below", "violated")


def compare_rank(measured: int, predicted: int | None, kind: str | None) -> str | None:
    """How a measured rank stands against a prediction of ``kind``.

    ``exact``/``estimate``: ``"equal"`` or ``"differs"``; ``bound``: ``"equal"`` (met),
    ``"below"`` or ``"violated"`` (measured above a proven bound: the bound is wrong, or
    the measurement is); ``None`` when there is no prediction.
    """
    if kind is None or predicted is None:
        return None
    if kind not in KINDS:
        raise ConfigError(f"kind={kind!r}: not one of {', '.join(KINDS)}")
    measured, predicted = int(measured), int(predicted)
    if measured == predicted:
        return "equal"
    if kind == "bound":
        return "violated" if measured > predicted else "below"
    return "differs"


@dataclass(frozen=True)
class Deficiency:
    """``p - rank`` of one matrix split into ``parts`` (see :data:`DEFICIENCY_PARTS`)
    and the ``unexplained`` remainder; negative ``unexplained`` means the measured rank
    is above what the theory allows (a violation of a bound or an exact formula)."""

    matrix: str
    p: int
    rank: int
    parts: dict
    unexplained: int

    @property
    def deficiency(self) -> int:
        """``p - rank``: the dimension of the null space."""
        return self.p - self.rank


def explain_deficiency(*, ranks, r: int, K: int, units, d: int, n: int, loss: str = "mse",
                       activation: str = "linear", bias: bool = False,
                       r_affine: int | None = None) -> dict:
    """Split ``p - rank`` of each measured matrix into the parts the theory accounts for.

    ``ranks`` maps ``"H_L"``, ``"H_o"``, ``"H_F"`` (any subset) to measured ranks. The
    parts are taken in the fixed order of :data:`DEFICIENCY_PARTS`, starting from
    ``c = p``; each part is the drop of ``c`` it causes, so nothing is counted twice:

    * ``data_span``: ``c -= D`` (W_1 directions orthogonal to the (augmented) data);
    * ``softmax_shift``: ``c -= S`` (cross loss);
    * ``rescaling``: ``c -= R`` (H_o of a positively homogeneous network);
    * ``sample_count``: ``c = min(c, nK')`` (H_o);
    * ``linear_structure``: ``c = min(c, exact)`` where an exact formula applies.

    ``unexplained = c - rank``. Returns ``{matrix: Deficiency}``.
    """
    r, K, units, n, d, r_affine = _validate(r=r, K=K, units=units, loss=loss, activation=activation,
                                            bias=bias, n=n, d=d, r_affine=r_affine)
    if n is None or d is None:
        raise ConfigError("explain_deficiency needs n and d")
    unknown = set(ranks) - set(MATRICES)
    if unknown:
        raise ConfigError(f"ranks: unknown matrix {sorted(unknown)[0]!r}; use {', '.join(MATRICES)}")
    pred = predict_ranks(r=r, K=K, units=units, loss=loss, activation=activation, bias=bias,
                         n=n, d=d, r_affine=r_affine)
    nulls = _null_dimensions(r=r, r_aff=pred.r_affine if bias else r + 1, K=K, units=units, loss=loss,
                             activation=activation, bias=bias, d=d)
    p = pred.p
    out = {}
    for m, rank in ranks.items():
        rank = _check_int(f"ranks[{m!r}]", rank, minimum=0)
        c, parts = p, dict.fromkeys(DEFICIENCY_PARTS, 0)
        for part in ("data_span", "softmax_shift") + (("rescaling",) if m == "H_o" else ()):
            parts[part] = nulls[part]
            c -= nulls[part]
        if m == "H_o":
            parts["sample_count"] = max(0, c - n * pred.K_eff)
            c -= parts["sample_count"]
        if pred.kinds[m] == "exact":
            exact = getattr(pred, m)
            parts["linear_structure"] = max(0, c - exact)
            c -= parts["linear_structure"]
        out[m] = Deficiency(matrix=m, p=p, rank=rank, parts=parts, unexplained=c - rank)
    return out
