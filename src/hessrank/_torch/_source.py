r"""H_L, H_o, H_F of a ``torch.nn.Module``, computed by PyTorch (``torch.autograd``), for the engine.

The module is deep-copied and cast to float64; the user's module, its dtype and its mode
are left as they were. Its named parameters that require gradients, flattened in
``named_parameters()`` order (each row-major), form :math:`\theta \in \mathbb{R}^p`;
parameters with ``requires_grad=False`` (a frozen layer) and buffers (BatchNorm running
statistics) are held fixed; the network is evaluated in the mode the module is in
(``train()`` or ``eval()``; in training mode a normalisation layer uses the batch's
statistics and leaves its running statistics alone). The outputs of a batch,
:math:`f_\theta(X_b)`, are ``functional_call(module, (params(θ), buffers), X_b)``.

Per batch of the data, with :math:`g_i = \nabla_f\ell` and :math:`\Lambda_i = \nabla^2_f\ell`
at :math:`\theta` (:mod:`._losses`):

* :math:`H_L v`: the derivative of :math:`\nabla_\theta \sum_i \ell(f_\theta(x_i), y_i)` along
  :math:`v` (reverse over reverse: the gradient's graph built once per batch and product
  call with ``create_graph``, then one backward pass through it per row of ``V``, the rows
  vectorised by ``torch.func.vmap``);
* :math:`H_F v`: the same with the scalar :math:`\sum_i \langle g_i, f_\theta(x_i)\rangle`,
  :math:`g_i` frozen at :math:`\theta`;
* :math:`H_o v = \sum_i J_i^\top \Lambda_i J_i v`, as its three factors::

      v  ->  u = J v          (forward mode: torch.func.jvp of the batch's outputs)
         ->  z_i = Λ_i u_i    (K×K per sample)
         ->  Jᵀ z             (a backward pass through the outputs' graph, built once per batch and call)

* :math:`A = \Lambda^{1/2} J` (nK×p): the rows of :math:`J` from backward passes with one-hot
  cotangents, a few samples per pass (the whole batch when a normalisation layer in training
  mode couples the samples), multiplied by :math:`\Lambda_i^{1/2}`;
* the reverse passes call ``torch.autograd.grad`` rather than ``torch.func.grad``/``vjp``/
  ``jacrev``: those import ``torch._dynamo`` on their first call, 1.7 s of a process's start
  on a CPU, for the same products;
* rows of ``V`` go through a product in groups sized so that their tangents and activations
  stay near the caches (:data:`_CALL_BYTES`): larger groups are slower at large p;
* samples coupled by batch statistics (BatchNorm in training mode): :math:`f_\theta(x_i)`
  depends on every sample, so the n samples form one batch whatever ``batch_size`` says
  (a split would measure another function); the products above are then those of the
  whole batch, exact as they stand;
* a dropout layer with ``p > 0`` in training mode makes the outputs random: refused.
* dense: :math:`H_F` from its products with the unit vectors, :math:`H_o = A^\top A`,
  :math:`H_L = H_F + A^\top A` (as the JAX front end forms them).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import torch
from torch.func import functional_call, jvp, vmap

from ..curvature.interface import CurvatureOperator, batch_rows
from ..errors import ConfigError, first_line
from ..matrices import MATRICES
from ..models.base import mixing_change
from ._losses import loss_grads, loss_hessians, loss_values

#: samples on which the outputs of a batch are compared with those of its parts (sample coupling)
_MIX_CHECK_ROWS = 100
#: bytes of tangents and activations allowed per vectorised pass of a product
_CALL_BYTES = 32 * 2**20
#: rows of ``V`` per vectorised pass at most; one-hot cotangents per backward pass of the Jacobian
_MAX_ROWS = 64


def as_float64_array(a, param: str) -> np.ndarray:
    """``a`` (a tensor or anything NumPy reads) as a float64 NumPy array; errors name ``param``."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().to(torch.float64).numpy()
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ConfigError.about(param, f"must be a numeric array or tensor ({err})") from None


class TorchSource:
    """A module's curvature on ``X, Y`` as a :class:`~hessrank.curvature.CurvatureSource`
    (see the module docstring); also its parameter layout, for per-block ranks."""

    def __init__(self, module, params, X, Y, *, loss: str, batch_size: int | None):
        check_deterministic(module, param="f")
        trainable_parameters(module, param="f")   # checked as given: the float64 copy casts complex to real
        self.mode = "train" if module.training else "eval"
        self.loss = loss
        self.net = _float64_copy(module)
        self.device = next((t.device for t in self.net.parameters()), torch.device("cpu"))
        named = trainable_parameters(self.net, param="f")
        frozen = frozen_parameters(self.net)
        fixed = {**frozen, **{k: b.detach() for k, b in self.net.named_buffers()}}
        tensors = named if params is None else _check_params(params, named, fixed)
        #: the parameters with ``requires_grad=False``: held fixed, as the buffers are
        self.frozen = tuple(frozen)
        self.names = tuple(named)
        self.shapes = tuple(tuple(named[k].shape) for k in self.names)
        self.sizes = tuple(int(named[k].numel()) for k in self.names)
        self.theta = torch.cat([torch.as_tensor(tensors[k]).detach().to(self.device, torch.float64).reshape(-1)
                                for k in self.names])
        self.buffers = {k: tensors[k].to(b.device) if k in tensors else b  # a state_dict's, else the module's
                        for k, b in fixed.items()}
        X = as_float64_array(X, "X")
        Y = as_float64_array(Y, "Y")
        self._n, self._K = int(X.shape[0]), int(Y.shape[1])
        held = {k: v.clone() for k, v in self.buffers.items()}
        # samples coupled by batch statistics (BatchNorm in training mode) or by any other layer that mixes
        # them (its outputs on a sample change with the other samples of the batch): one batch of all n
        self.coupled = couples_samples(self.net) or self._mixes_samples(X[:_MIX_CHECK_ROWS])
        b = self._n if self.coupled else batch_rows(self._n, batch_size)
        self.batches = [self._batch(X[lo:lo + b], Y[lo:lo + b]) for lo in range(0, self._n, b)]
        self._rows = self._rows_per_call(max(len(x) for x, *_ in self.batches))
        changed = next((k for k, v in held.items() if not _same(v, self.buffers[k])), None)
        if changed is not None:
            raise ConfigError.about("f", f"the module changes {changed} when it runs (an in-place update in its "
                                         "forward): its Hessians would change from one product to the next; hold "
                                         "it fixed in the mode measured (e.g. module.eval())")

    # ------------------------------------------------------------------ the CurvatureSource protocol
    @property
    def p(self) -> int:
        """Number of parameters."""
        return int(self.theta.numel())

    @property
    def n(self) -> int:
        """Number of samples."""
        return self._n

    @property
    def K(self) -> int:
        """Outputs per sample."""
        return self._K

    @property
    def leaves(self) -> tuple[tuple[str, int], ...]:
        """``(name, size)`` of each named parameter (``conv1.weight``), in θ's order."""
        return tuple(zip(self.names, self.sizes))

    def layer_of(self, leaf: str) -> str:
        """The child module a parameter belongs to: the first part of its dotted name."""
        return leaf.split(".", 1)[0]

    def operator(self, name: str) -> CurvatureOperator:
        """``H_L``, ``H_o`` or ``H_F`` as an operator: rows ``V`` (b, p) -> rows of ``V H``."""
        per_batch = {"H_L": self._loss_products, "H_o": self._outer_products, "H_F": self._functional_products}[name]
        p = self.p

        def matmat_into(V, out):
            V = np.asarray(V, dtype=np.float64)
            if V.ndim != 2 or V.shape[1] != p:
                raise ValueError(f"{name} operator: rows must have length p = {p}, got shape {V.shape}")
            Vt = torch.from_numpy(np.ascontiguousarray(V)).to(self.device)
            acc = torch.zeros_like(Vt)
            for batch in self.batches:            # Σ over batches; per batch the set-up is done once
                product = per_batch(batch)
                for lo in range(0, Vt.shape[0], self._rows):
                    acc[lo:lo + self._rows] += product(Vt[lo:lo + self._rows])
            out[...] = acc.cpu().numpy()
            return out

        return CurvatureOperator(name, p, lambda V: matmat_into(V, np.empty(np.shape(V))), matmat_into)

    def factor(self) -> np.ndarray:
        """``A = Λ^{1/2} J``, shape (nK, p), rows ``Λ_i^{1/2} J_i`` sample by sample."""
        parts = []
        for X, _, _, _, Lam in self.batches:
            J = self._jacobians(X).view(X.shape[0], self._K, self.p)        # (b, K, p)
            S = _psd_sqrt(Lam)                                              # Λ_i^{1/2}
            parts.append(torch.einsum("ikl,ilp->ikp", S, J).reshape(-1, self.p).cpu().numpy())
        return np.concatenate(parts)

    def hessians(self, which=MATRICES) -> dict[str, np.ndarray]:
        """The dense matrices named in ``which``: ``H_F`` from p products, ``H_o = AᵀA``, ``H_L = H_F + H_o``."""
        out = {}
        if "H_F" in which or "H_L" in which:
            H_F = self.operator("H_F")(np.eye(self.p))
            out["H_F"] = 0.5 * (H_F + H_F.T)
        if "H_o" in which or "H_L" in which:
            A = self.factor()
            out["H_o"] = A.T @ A
            if "H_L" in which:
                out["H_L"] = out["H_F"] + out["H_o"]
        return {k: out[k] for k in MATRICES if k in which}

    # ------------------------------------------------------------------ the network and its products
    def apply(self, theta, X):
        """Outputs ``f_θ(X)`` of a batch (b, K): the copy's forward with θ's parameters and fixed buffers."""
        params = {k: t.view(s) for k, t, s in zip(self.names, torch.split(theta, self.sizes), self.shapes)}
        return functional_call(self.net, (params, self.buffers), (X,))

    def _batch(self, X, Y):
        """``(X, Y, F, G, Λ)`` of one batch as tensors: inputs, targets, outputs, g_i and Λ_i at θ."""
        X = torch.from_numpy(np.ascontiguousarray(X)).to(self.device)
        Y = torch.from_numpy(np.ascontiguousarray(Y)).to(self.device)
        with torch.no_grad():
            F = self._outputs(X)
        if not bool(torch.isfinite(F).all()):
            raise ConfigError.about("f", "the module's outputs are not finite (NaN or inf)")
        return X, Y, F, loss_grads(self.loss, F, Y), loss_hessians(self.loss, F, Y)

    def _loss_products(self, batch):
        """``V -> V H_L(batch)``: reverse over reverse of ``Σ_i ℓ(f_θ(x_i), y_i)``."""
        X, Y = batch[0], batch[1]
        with torch.enable_grad():
            t = self.theta.detach().requires_grad_()
            g = _backward(loss_values(self.loss, self.apply(t, X), Y).sum(), t, None, create_graph=True)
        return lambda V: _backward(g, t, V, batched=True)

    def _functional_products(self, batch):
        """``V -> V H_F(batch)``: the same for ``Σ_i ⟨g_i, f_θ(x_i)⟩``, ``g_i`` frozen."""
        X, G = batch[0], batch[3]
        with torch.enable_grad():
            t = self.theta.detach().requires_grad_()
            g = _backward((G * self.apply(t, X)).sum(), t, None, create_graph=True)
        return lambda V: _backward(g, t, V, batched=True)

    def _outer_products(self, batch):
        """``V -> V H_o(batch)``: ``v -> J v -> Λ J v -> Jᵀ Λ J v``."""
        X, Lam = batch[0], batch[4]
        with torch.enable_grad():
            t = self.theta.detach().requires_grad_()
            F = self.apply(t, X)

        def f(theta):
            return self.apply(theta, X)

        def rows(V):
            U = vmap(lambda v: jvp(f, (self.theta,), (v,))[1])(V)          # J v, (m, b, K)
            return _backward(F, t, torch.einsum("ikl,mil->mik", Lam, U), batched=True)  # Jᵀ Λ J v

        return rows

    def _jacobians(self, X):
        """``J`` of shape (b·K, p), rows ``J_i`` sample by sample: one backward pass per group of
        one-hot cotangents over a few samples (over the whole batch when its samples are coupled)."""
        b = X.shape[0]
        per = b if self.coupled else max(1, self._rows // self._K)          # samples per forward pass
        parts = []
        with torch.enable_grad():
            t = self.theta.detach().requires_grad_()
            for lo in range(0, b, per):
                F = self.apply(t, X[lo:lo + per])                           # (s, K)
                rows = F.numel()
                for r in range(0, rows, self._rows):
                    m = min(self._rows, rows - r)
                    E = torch.zeros(m, rows, dtype=F.dtype, device=F.device)
                    E[:, r:r + m] = torch.eye(m, dtype=F.dtype, device=F.device)
                    parts.append(_backward(F, t, E.view(m, *F.shape), batched=True))
        return torch.cat(parts)

    def _outputs(self, X):
        """The copy's outputs on the batch ``X`` at θ, checked (:func:`module_outputs`)."""
        return module_outputs(lambda x: self.apply(self.theta, x), X, self._K, param="f")

    def _mixes_samples(self, X) -> bool:
        """Whether the outputs on the rows of ``X`` change when its first row is given alone
        (:func:`~hessrank.models.base.mixing_change`), or the module cannot take one row alone."""
        if X.shape[0] < 2:
            return False
        X = torch.from_numpy(np.ascontiguousarray(X)).to(self.device)
        with torch.no_grad():
            whole = self._outputs(X)
            try:
                parts = torch.cat([self._outputs(part) for part in (X[:1], X[1:])])
            except ConfigError:   # it needs other samples beside one (a statistic of the batch): coupled
                return True
        return mixing_change(whole.cpu().numpy(), parts.cpu().numpy()) is not None

    def _rows_per_call(self, b: int) -> int:
        """Rows of ``V`` per vectorised pass (and one-hot cotangents per pass of the Jacobian):
        per row, its tangents and cotangents of θ and of the batch's activations (counted on
        one forward pass) fit in :data:`_CALL_BYTES`."""
        floats = [0]

        def count(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                floats[0] += output.numel()

        handles = [m.register_forward_hook(count) for m in self.net.modules()]
        try:
            with torch.no_grad():
                self.apply(self.theta, self.batches[0][0])
        finally:
            for h in handles:
                h.remove()
        per_row = 8 * 4 * (self.p + floats[0])
        return int(max(1, min(_MAX_ROWS, _CALL_BYTES // per_row)))


def _backward(y, t, v, *, create_graph: bool = False, batched: bool = False):
    """``vᵀ ∂y/∂t`` (``∂y/∂t`` when ``v`` is None and ``y`` a scalar), the graph kept for the next
    call; rows of ``v`` each when ``batched``. Zero where ``y`` does not depend on ``t``."""
    shape = (v.shape[0], *t.shape) if batched else t.shape
    if not y.requires_grad:
        return torch.zeros(shape, dtype=t.dtype, device=t.device)
    if batched:
        return vmap(lambda row: _backward(y, t, row))(v)
    out = torch.autograd.grad(y, t, v, retain_graph=True, create_graph=create_graph, allow_unused=True)[0]
    return torch.zeros(shape, dtype=t.dtype, device=t.device) if out is None else out


def module_outputs(call, X, K: int, *, param: str, batch: str = "batch"):
    """``call(X)``, a user's module on a ``batch`` of inputs, as a (b, K) tensor; what it raises,
    or outputs of another shape, are one line naming ``param``."""
    try:
        F = call(X)
    except Exception as err:  # the user's code: report it in one line
        raise ConfigError.about(param, f"the module raised {type(err).__name__} on a {batch} of shape "
                                       f"{tuple(X.shape)}: {first_line(err)}") from None
    if not isinstance(F, torch.Tensor) or tuple(F.shape) != (X.shape[0], K):
        shape = tuple(F.shape) if isinstance(F, torch.Tensor) else type(F).__name__
        raise ConfigError.about(param, f"outputs of shape {shape} for a batch of {X.shape[0]}: need "
                                       f"(b, K) = ({X.shape[0]}, {K}), K the targets' columns")
    return F


def _same(a, b) -> bool:
    """Whether two tensors hold the same values, NaN equal to NaN."""
    return torch.equal(a, b) or (a.is_floating_point() and a.shape == b.shape
                                 and torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True))


def _psd_sqrt(Lam):
    """Symmetric square roots of a batch of PSD K×K matrices; eigenvalues below 0 (round-off) set to 0."""
    mu, U = torch.linalg.eigh(Lam)
    return torch.einsum("...ij,...j,...kj->...ik", U, mu.clamp(min=0.0).sqrt(), U)


def couples_samples(net) -> bool:
    """Whether a layer of ``net`` normalises by the statistics of the batch it is given (a
    BatchNorm layer in training mode, or one without running statistics): then each output
    depends on every sample of the batch."""
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and (m.training or m.running_mean is None)
               for m in net.modules())


def check_deterministic(module, *, param: str) -> None:
    """Refuse, naming ``param``, a module whose outputs are random: a dropout layer with
    ``p > 0`` in training mode (its Hessians, and a resumable trajectory, are not defined)."""
    for name, m in module.named_modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.training and m.p > 0:
            raise ConfigError.about(param, f"the module is in training mode with {type(m).__name__}(p={m.p}) at "
                                           f"{name!r}: its outputs are random; call module.eval() (dropout off) "
                                           "or use p=0")


def _float64_copy(module):
    """A float64 deep copy of ``module``, each submodule in its own mode; in training mode its normalisation
    layers use batch statistics without updating their running statistics (buffers stay fixed)."""
    net = copy.deepcopy(module).to(torch.float64)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._NormBase) and m.training:
            m.track_running_stats = False
    return net


def trainable_parameters(module, *, param: str) -> dict:
    """The named parameters of ``module`` that require gradients, θ's parts in
    ``named_parameters()`` order; a module with none is refused in one line naming ``param``."""
    for k, v in module.named_parameters():
        if isinstance(v, torch.nn.parameter.UninitializedParameter):
            raise ConfigError.about(param, f"parameter {k} is not initialised yet (a lazy module): call the module "
                                           "once on a batch of inputs first")
        if v.is_meta:
            raise ConfigError.about(param, f"parameter {k} is on the meta device and holds no values: "
                                           "materialise the module first (module.to_empty(...) and an initialisation)")
        if v.requires_grad and v.is_complex():
            raise ConfigError.about(param, f"parameter {k} is complex ({v.dtype}): the Hessians are measured over "
                                           "real parameters (split it into real and imaginary parts)")
    named = {k: v for k, v in module.named_parameters() if v.requires_grad}
    if not named:
        held = sum(1 for _ in module.parameters())
        raise ConfigError.about(param, f"the module {type(module).__name__} has "
                                       + (f"no parameter that requires gradients (all {held} have requires_grad="
                                          "False): nothing to differentiate" if held else "no parameters"))
    return named


def frozen_parameters(module) -> dict:
    """The named parameters of ``module`` with ``requires_grad=False`` (detached): held fixed, as buffers are."""
    return {k: v.detach() for k, v in module.named_parameters() if not v.requires_grad}


def _check_params(params, named, buffers) -> dict:
    """``params`` (name -> tensor or array) checked against the module's trainable parameters;
    it may also hold buffers and frozen parameters (a ``state_dict``), which then replace the module's."""
    if not isinstance(params, Mapping):
        raise ConfigError.invalid("params", type(params).__name__, "give a dict of named tensors, as "
                                                                   "module.named_parameters() names them", quoted=False)
    missing = [k for k in named if k not in params]
    extra = sorted(str(k) for k in params if k not in named and k not in buffers)
    if missing or extra:
        what = f"no tensor {missing[0]}" if missing else f"a tensor {extra[0]} the module does not have"
        raise ConfigError.about("params", f"{what}; the module's trainable parameters are {', '.join(named)}")
    out = {}
    for k, ref in [*named.items(), *((k, b) for k, b in buffers.items() if k in params)]:
        a = params[k]
        if k in buffers and not ref.is_floating_point():  # a counter (num_batches_tracked): the module's
            continue
        a = a.detach().to(torch.float64) if isinstance(a, torch.Tensor) else torch.as_tensor(
            as_float64_array(a, "params"))
        if tuple(a.shape) != tuple(ref.shape):
            raise ConfigError.about("params", f"{k} has shape {tuple(a.shape)} but the module needs "
                                              f"{tuple(ref.shape)}")
        if not bool(torch.isfinite(a).all()):
            raise ConfigError.about("params", f"{k} holds NaN or inf")
        out[k] = a
    return out


class TorchModel:
    """A module as the engine's network for ``run``, sweeps and grids (``--model FILE.py:build``):
    ``num_params``, the parameters' ``leaves``/``shapes`` in θ's order, ``layer_of``, and
    :meth:`curvature_source` — a :class:`TorchSource` at a flat θ. :meth:`initial_theta` is the
    module's own parameters."""

    def __init__(self, module):
        check_deterministic(module, param="model")
        self.module = module
        named = list(trainable_parameters(module, param="model").items())
        #: the parameters with ``requires_grad=False``, held fixed
        self.frozen = tuple(frozen_parameters(module))
        self.shapes = tuple((k, tuple(int(x) for x in v.shape)) for k, v in named)
        self.leaves = tuple((k, int(np.prod(s, dtype=np.int64))) for k, s in self.shapes)
        self.num_params = sum(size for _, size in self.leaves)

    def layer_of(self, leaf: str) -> str:
        """The child module a parameter belongs to: the first part of its dotted name."""
        return leaf.split(".", 1)[0]

    @property
    def mode(self) -> str:
        """The mode the module is evaluated in: ``train`` or ``eval``."""
        return "train" if self.module.training else "eval"

    def initial_theta(self) -> np.ndarray:
        """The module's trainable parameters as one float64 vector (``named_parameters()`` order,
        row-major)."""
        return np.concatenate([v.detach().cpu().to(torch.float64).reshape(-1).numpy()
                               for v in trainable_parameters(self.module, param="model").values()])

    def curvature_source(self, loss: str, theta, X, Y, *, batch_size: int | None) -> TorchSource:
        """The :class:`TorchSource` of the module at the flat parameters ``theta`` on ``X, Y``."""
        theta = np.asarray(theta, dtype=np.float64)
        params, start = {}, 0
        for (name, shape), (_, size) in zip(self.shapes, self.leaves):
            params[name] = theta[start:start + size].reshape(shape)
            start += size
        return TorchSource(self.module, params, X, Y, loss=loss, batch_size=batch_size)
