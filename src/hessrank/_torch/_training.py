r"""Training a ``torch.nn.Module`` with ``torch.optim``, and its checkpoints as ``state_dict`` files.

The driver is :func:`hessrank.training.run_training`; this module is its PyTorch update loop.
A float64 deep copy of the module (the user's module, its dtype and its mode untouched) is
trained in the module's mode by ``torch.optim.SGD(lr)``, ``SGD(lr, momentum=0.9)`` or
``Adam(lr)`` on the mean loss of a batch,

.. math::  \hat L_B(\theta) = \tfrac{1}{|B|} \sum_{i \in B} \ell(f_\theta(x_i), y_i),

with the per-sample losses of :mod:`._losses` (the JAX definitions). One step is what a
hand-written loop does: ``zero_grad``, forward the batch, ``backward``, ``step``; in
training mode a BatchNorm layer normalises by the batch's statistics and updates its
running statistics, as PyTorch does. The loss and gradient norm of a checkpoint are those
of the mean loss over all n samples, computed with the buffers restored afterwards, so
measuring never changes the trajectory.

Checkpoint files: ``step<t>.pt``, the copy's ``state_dict()`` (parameters and buffers,
float64), and ``step<t>.optstate.pt``, the optimiser's ``state_dict()``; both are written
with ``torch.save`` whole or not at all and read with ``torch.load(..., weights_only=True)``.
:func:`load_state_dict_file` reads a ``state_dict`` for ``hessian-rank run --params`` and
checks every entry against the module.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..atomicio import atomic_output
from ..errors import ConfigError
from ._losses import loss_values
from ._source import TorchModel, module_outputs, trainable_parameters

#: what ``--params`` takes for a PyTorch module
_WANTED = "give a state_dict saved with torch.save (as `hessian-rank train` saves step<t>.pt)"


def make_torch_optimizer(name: str, params, lr: float, momentum: float) -> torch.optim.Optimizer:
    """``torch.optim.SGD(lr)`` (``sgd``), ``SGD(lr, momentum=momentum)`` (``momentum``) or ``Adam(lr)``."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    return torch.optim.Adam(params, lr=lr)


class TorchTrainer:
    """The state of a module's training: a float64 copy ``net`` of ``module`` and its optimiser.

    The driver asks for :meth:`restore` (a saved checkpoint) or starts from the module's
    own parameters, then alternates :meth:`update` and, at checkpoints, :meth:`full_loss`,
    :attr:`model`/:attr:`theta` (what to measure) and :meth:`save`."""

    suffix = ".pt"

    def __init__(self, module, *, optimizer: str, lr: float, momentum: float, loss: str, X, Y):
        self.loss = loss
        self.net = copy.deepcopy(module).to(torch.float64)
        self._initial = copy.deepcopy(self.net.state_dict())
        self.model = TorchModel(self.net)  # the live copy (buffers current); it refuses random outputs
        self.params = list(trainable_parameters(self.net, param="model").values())  # frozen ones stay as they are
        self.opt = make_torch_optimizer(optimizer, self.params, lr, momentum)
        self._initial_opt = copy.deepcopy(self.opt.state_dict())
        device = next((t.device for t in self.net.parameters()), torch.device("cpu"))
        self.X = torch.as_tensor(np.asarray(X, dtype=np.float64), device=device)
        self.Y = torch.as_tensor(np.asarray(Y, dtype=np.float64), device=device)

    @property
    def theta(self) -> np.ndarray:
        """The current trainable parameters as one float64 vector (``named_parameters()`` order)."""
        return self.model.initial_theta()

    def reset(self) -> None:
        """Back to the module's own parameters and buffers, the optimiser's initial state."""
        self.net.load_state_dict(self._initial)
        self.opt.load_state_dict(copy.deepcopy(self._initial_opt))

    def update(self, idx) -> float:
        """One optimiser step on the samples ``idx`` (``None``: all); the batch's mean loss before it."""
        if idx is not None:
            idx = torch.as_tensor(idx, device=self.X.device)
        X, Y = (self.X, self.Y) if idx is None else (self.X[idx], self.Y[idx])
        self.opt.zero_grad(set_to_none=True)
        value = loss_values(self.loss, self._forward(X), Y).mean()
        value.backward()
        self.opt.step()
        return float(value.detach())

    def _forward(self, X):
        """The copy's outputs on ``X``; the module's own errors as one line naming ``model``."""
        return module_outputs(self.net, X, self.Y.shape[1], param="model", batch="training batch")

    def full_loss(self) -> tuple[float, float]:
        """The mean loss over all n samples and the norm of its gradient (buffers left as they were)."""
        with _buffers_kept(self.net):
            value = loss_values(self.loss, self._forward(self.X), self.Y).mean()
            grads = torch.autograd.grad(value, self.params, allow_unused=True)
        zero = torch.zeros((), dtype=torch.float64, device=self.X.device)
        norm = torch.sqrt(sum(((g ** 2).sum() for g in grads if g is not None), zero))
        return float(value.detach()), float(norm)

    def paths(self, folder: Path, step: int) -> tuple[Path, Path]:
        """The module's and the optimiser's ``state_dict`` files of ``step``."""
        return folder / f"step{int(step)}.pt", folder / f"step{int(step)}.optstate.pt"

    def save(self, folder: Path, step: int) -> None:
        """Write ``step<t>.pt`` (the module's ``state_dict``) and ``step<t>.optstate.pt``."""
        module_path, state_path = self.paths(folder, step)
        for path, obj in ((module_path, self.net.state_dict()), (state_path, self.opt.state_dict())):
            with atomic_output(path, "wb") as fh:
                torch.save(obj, fh)

    def restore(self, folder: Path, step: int) -> bool:
        """Continue from the files saved at ``step``; ``False`` (nothing changed) when they are
        missing, unreadable or do not fit the module or the optimiser."""
        module_path, state_path = self.paths(folder, step)
        try:
            state = _read(module_path)
            opt_state = _read(state_path)
            _check_state_dict(self.net, state)
        except ConfigError:
            return False
        saved_net, saved_opt = copy.deepcopy(self.net.state_dict()), copy.deepcopy(self.opt.state_dict())
        try:
            self.net.load_state_dict(state)
            self.opt.load_state_dict(opt_state)
            if not _same_optimizer_state(self.opt):
                raise ValueError("the optimiser state does not fit the parameters")
        except (ValueError, KeyError, RuntimeError, TypeError):
            self.net.load_state_dict(saved_net)
            self.opt.load_state_dict(saved_opt)
            return False
        return True


def _same_optimizer_state(opt) -> bool:
    """Every saved per-parameter tensor has its parameter's shape and dtype."""
    for group in opt.param_groups:
        for p in group["params"]:
            for value in opt.state.get(p, {}).values():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and (
                        value.shape != p.shape or value.dtype != p.dtype):
                    return False
    return True


@contextlib.contextmanager
def _buffers_kept(net):
    """Within this block the module's buffers may change (BatchNorm in training mode); after it they are back."""
    saved = {k: b.detach().clone() for k, b in net.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for k, b in net.named_buffers():
                b.copy_(saved[k])


def _read(path) -> dict:
    """The object ``torch.save`` wrote to ``path``, loaded with ``weights_only=True``; errors name ``params``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError.invalid("params", str(path), f"no such file; {_WANTED}", quoted=False)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        if names and all(n.endswith(".npy") for n in names):
            raise ConfigError.invalid("params", str(path), "an .npz of arrays (the checkpoint of a JAX network), "
                                                           f"but the model is a PyTorch module; {_WANTED}",
                                      quoted=False)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError,
            zipfile.BadZipFile, TypeError, ImportError, IndexError) as err:
        if "weights only" in str(err).lower():
            why = ("holds Python objects besides tensors (a whole pickled module?), which torch.load(weights_only="
                   "True) does not run")
        else:
            why = f"not a torch.save file, or a damaged one ({type(err).__name__})"
        raise ConfigError.invalid("params", str(path), f"{why}; {_WANTED}", quoted=False) from None
    return obj


def _check_state_dict(net, state, source: str = "") -> dict:
    """``state`` checked against ``net.state_dict()``: the same names, shapes and finite numbers."""
    where = source or "the parameters"
    if not isinstance(state, dict):
        raise ConfigError.invalid("params", where, f"holds a {type(state).__name__}, not a state_dict (a dict of "
                                                   f"named tensors); {_WANTED}", quoted=False)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    extra = sorted(str(k) for k in state if k not in own)
    if missing or extra:
        what = f"no tensor {missing[0]}" if missing else f"a tensor {extra[0]} the module does not have"
        raise ConfigError.invalid("params", where, f"{what}; the module's state_dict holds {', '.join(own)}",
                                  quoted=False)
    for k, ref in own.items():
        a = state[k]
        if not isinstance(a, torch.Tensor):
            raise ConfigError.invalid("params", where, f"{k} is a {type(a).__name__}, not a tensor", quoted=False)
        if tuple(a.shape) != tuple(ref.shape):
            raise ConfigError.invalid("params", where, f"{k} has shape {tuple(a.shape)} but the module needs "
                                                       f"{tuple(ref.shape)}", quoted=False)
        if a.is_floating_point() and not bool(torch.isfinite(a).all()):
            raise ConfigError.invalid("params", where, f"{k} holds NaN or inf", quoted=False)
        if ref.is_floating_point() and not a.is_floating_point():
            raise ConfigError.invalid("params", where, f"{k} holds {a.dtype} values, not floating-point ones",
                                      quoted=False)
    return state


def load_state_dict_file(model: TorchModel, path) -> tuple[TorchModel, np.ndarray]:
    """``(model', θ)`` at the ``state_dict`` file ``path``: ``model'`` a copy of ``model`` whose
    buffers are the file's (BatchNorm running statistics), θ the file's parameters.

    Raises :class:`ConfigError` naming ``params`` and the file: missing, unreadable, an .npz,
    not a dict of tensors, or an entry missing, extra, of another shape or not finite."""
    state = _check_state_dict(model.module, _read(path), str(path))
    net = copy.deepcopy(model.module).to(torch.float64)
    net.load_state_dict({k: v.to(dtype=net.state_dict()[k].dtype) for k, v in state.items()})
    loaded = TorchModel(net)
    theta = np.concatenate([state[name].detach().to(torch.float64).reshape(-1).numpy() for name, _ in loaded.shapes])
    return loaded, theta
