r"""Rank along training: train a network and measure H_L, H_o, H_F at checkpoints.

The optimiser (optax ``sgd``, ``momentum`` or ``adam``; for a ``torch.nn.Module``,
``torch.optim`` ``SGD``, ``SGD`` with momentum or ``Adam``, see
:mod:`hessrank._torch._training`) minimises the mean loss of a training batch,

.. math::  \hat L_B(\theta) = \tfrac{1}{|B|} \sum_{i \in B} \ell(f_\theta(x_i), y_i),

on the same n samples whose Hessians are measured (full batch by default; with
``train_batch = b < n`` the samples are reshuffled every epoch of ``n // b`` steps by a
generator seeded with ``(seed, epoch)``, so the batch of step t is a function of t).
At each checkpoint step t (before the t-th update is applied; step 0 is the
initialisation) one row is stored: the training loss :math:`\tfrac1n \sum_i \ell_i`
and the norm of its gradient over all n samples, the ranks of H_L, H_o, H_F of the
summed loss (as ``hessian-rank run`` measures them: same rule, tolerance, method), the
predictions and their kinds, and the largest :math:`|\lambda|` of each matrix.

Stored and resumable: rows land in ``<out>/store/training/<loss>/<dataset>/<d>x…x<K>/``
(:func:`training_table`), one CSV row per checkpoint, written after the parameters
(``<stem>_params/step<t>.npz``, one array per leaf; a module's ``state_dict``,
``step<t>.pt``) and the optimiser state (``step<t>.optstate.npz`` or ``.optstate.pt``) of
that step. Started again, a run continues from the last stored checkpoint's saved state:
the update is the same function of the same float64 numbers, so a resumed run gives the
rows of an uninterrupted one. The driver (store, checkpoints, resume, rows) is one for
both front ends; each front end supplies its update loop and its checkpoint files.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from .atomicio import check_real_folders, check_writable
from .config import DEFAULT_CHECKPOINTS, OPTIMIZERS, TRAIN_DEFAULTS, RunConfig
from .curvature import in_float64
from .curvature.core import weighted_loss
from .errors import ConfigError
from .matrices import SUFFIX
from .measure import build, make_result, measure_model_ranks, plan_method
from .measure.blocks import resolve_blocks
from .measure.network import network_folder_name, network_words
from .measure.provenance import provenance
from .models import get_loss
from .models.params import flat_params, load_arrays, named_arrays, save_arrays
from .store import (
    ResultTable,
    StoredOutcome,
    comparison_lines,
    config_hash,
    config_identity,
    config_slug,
    count_comparisons,
    format_float,
    result_row,
    row_kinds,
    store_folder,
    stored_run,
)

if TYPE_CHECKING:  # optax is imported when training starts: `hessian-rank run` does not pay for it
    import optax

#: the momentum of ``momentum`` (heavy ball, optax.sgd(lr, momentum=MOMENTUM))
MOMENTUM = 0.9
#: the most training steps and the most checkpoints of one run
MAX_STEPS = 10**9
MAX_CHECKPOINTS = 10_000

#: one row per checkpoint
TRAINING_COLUMNS = (
    "step", "loss", "grad_norm", "rank_L", "rank_o", "rank_F", "pred_L", "pred_o", "pred_F",
    "lambda_max_L", "lambda_max_o", "lambda_max_F", "kind", "num_params", "r",
    "tol_L", "tol_o", "tol_F", "gap_L", "gap_o", "gap_F", "seconds", "method",
)
_FLOAT_COLUMNS = ("loss", "grad_norm", "lambda_max_L", "lambda_max_o", "lambda_max_F")


def default_checkpoints(steps: int, count: int = DEFAULT_CHECKPOINTS) -> tuple[int, ...]:
    """Step 0 and about ``count`` log-spaced steps from 1 to ``steps`` (``steps`` included)."""
    if steps == 0:
        return (0,)
    logs = np.rint(np.logspace(0.0, math.log10(steps), count)).astype(np.int64)
    return tuple(sorted({0, int(steps), *map(int, logs)}))


def parse_checkpoints(text, *, steps: int) -> tuple[int, ...]:
    """``"0,10,100"`` → ``(0, 10, 100)``: steps from 0 to ``steps``, sorted, without repeats."""
    text = str(text).strip()
    try:
        values = [int(s) for s in text.split(",")]
    except ValueError:
        raise ConfigError.invalid("checkpoints", text, "not a list of integers; give steps such as 0,10,100"
                                  ) from None
    return _check_checkpoints(values, steps, shown=text)


def _check_checkpoints(values, steps: int, *, shown) -> tuple[int, ...]:
    if not values:
        raise ConfigError.invalid("checkpoints", shown, "give at least one step, e.g. 0,10,100")
    if len(values) > MAX_CHECKPOINTS:
        raise ConfigError.invalid("checkpoints", f"{len(values)} steps", f"at most {MAX_CHECKPOINTS} checkpoints",
                                  quoted=False)
    for v in values:
        if not isinstance(v, int | np.integer) or isinstance(v, bool):
            raise ConfigError.invalid("checkpoints", shown, f"{v!r} is not an integer step")
        if v < 0:
            raise ConfigError.invalid("checkpoints", shown, f"step {v} is negative; steps run from 0 to {steps}")
        if v > steps:
            raise ConfigError.invalid("checkpoints", shown, f"step {v} is beyond --steps {steps}; give steps "
                                                            f"from 0 to {steps}")
    return tuple(sorted({int(v) for v in values}))


@dataclass(frozen=True)
class TrainConfig:
    """How to train: ``optimizer`` (``sgd``, ``momentum``, ``adam``), learning rate ``lr``,
    ``steps`` updates, ``train_batch`` samples per update (``None``: all n) and the
    ``checkpoints`` (``None``: :func:`default_checkpoints`)."""

    optimizer: str = TRAIN_DEFAULTS["optimizer"]
    lr: float = TRAIN_DEFAULTS["lr"]
    steps: int = TRAIN_DEFAULTS["steps"]
    train_batch: int | None = TRAIN_DEFAULTS["train_batch"]
    checkpoints: tuple[int, ...] | None = None

    def validate(self, n: int | None = None) -> TrainConfig:
        """Check every field (``train_batch`` against ``n`` when given); return ``self`` or
        raise :class:`~hessrank.errors.ConfigError` naming the field."""
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError.invalid("optimizer", self.optimizer, f"not one of {', '.join(OPTIMIZERS)}")
        lr = self.lr
        if not isinstance(lr, int | float) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
            raise ConfigError.invalid("lr", lr, "the learning rate must be a finite number > 0")
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or not 0 <= self.steps <= MAX_STEPS:
            raise ConfigError.invalid("steps", self.steps, f"the number of training steps must be an integer from 0 "
                                                           f"to {MAX_STEPS}")
        b = self.train_batch
        if b is not None:
            if not isinstance(b, int) or isinstance(b, bool) or b < 1:
                raise ConfigError.invalid("train_batch", b, "must be an integer >= 1 (samples per update)")
            if n is not None and b > n:
                raise ConfigError.invalid("train_batch", b, f"larger than the sample size n = {n}; use 1..{n}")
        if self.checkpoints is not None:
            _check_checkpoints(list(self.checkpoints), self.steps, shown=",".join(map(str, self.checkpoints)))
        return self

    @property
    def checkpoint_steps(self) -> tuple[int, ...]:
        """The checkpoints, sorted: the given ones or :func:`default_checkpoints`."""
        if self.checkpoints is None:
            return default_checkpoints(self.steps)
        return tuple(sorted(set(self.checkpoints)))

    def identity(self, n: int) -> dict:
        """What defines the trajectory (not ``steps`` nor ``checkpoints``: a longer run
        continues the same trajectory and reuses its rows)."""
        ident = {"optimizer": self.optimizer, "lr": float(self.lr),
                 "train_batch": int(self.train_batch if self.train_batch is not None else n)}
        if self.optimizer == "momentum":
            ident["momentum"] = MOMENTUM
        return ident


def make_optimizer(tc: TrainConfig) -> optax.GradientTransformation:
    """The optax transformation of ``tc``: ``sgd(lr)``, ``sgd(lr, momentum=0.9)`` or ``adam(lr)``."""
    import optax

    if tc.optimizer == "sgd":
        return optax.sgd(tc.lr)
    if tc.optimizer == "momentum":
        return optax.sgd(tc.lr, momentum=MOMENTUM)
    return optax.adam(tc.lr)


def batch_indices(step: int, n: int, batch: int, seed: int) -> np.ndarray | None:
    """The samples of update ``step`` (``None``: all of them): epoch ``step // (n // batch)``
    is a permutation drawn with ``(seed, epoch)``, cut into ``n // batch`` batches."""
    if batch >= n:
        return None
    per_epoch = n // batch
    epoch, i = divmod(int(step), per_epoch)
    order = np.random.default_rng([int(seed), epoch]).permutation(n)
    return order[i * batch:(i + 1) * batch]


@partial(jax.jit, static_argnums=(0, 1, 2))
def _update(model, loss, opt, theta, state, X, Y, w):
    """One optimiser step on the batch ``X, Y`` (weights ``w = 1/b``): ``(θ', state', L̂_B(θ))``."""
    import optax

    value, grad = jax.value_and_grad(lambda t: weighted_loss(model, loss, t, X, Y, w))(theta)
    updates, state = opt.update(grad, state, theta)
    return optax.apply_updates(theta, updates), state, value


@partial(jax.jit, static_argnums=(0, 1))
def _loss_and_grad(model, loss, theta, X, Y, w):
    return jax.value_and_grad(lambda t: weighted_loss(model, loss, t, X, Y, w))(theta)


def training_table(config: RunConfig, tc: TrainConfig, out, *, n: int, d: int, front_end: str = "jax"
                   ) -> ResultTable:
    """The stored table of one training run: ``<out>/store/training/<loss>/<dataset>/<d>x…x<K>/``
    (``front_end``: ``"torch"`` for a PyTorch module trained with ``torch.optim``)."""
    ident = training_identity(config, tc, n=n, front_end=front_end)
    folder = store_folder(out, "training", config.loss, config.dataset, network_folder_name(config, d))
    stem = f"{config_slug(config)}_{tc.optimizer}_lr{float(tc.lr)!r}_{config_hash(ident)}"
    return training_table_at(folder / f"{stem}.json")


def training_table_at(json_path) -> ResultTable:
    """The stored training table whose JSON is ``json_path`` (its rows checked on reading)."""
    json_path = Path(json_path)
    return ResultTable(json_path.parent, json_path.stem, TRAINING_COLUMNS, floats=_FLOAT_COLUMNS, ints=("step",))


def training_identity(config: RunConfig, tc: TrainConfig, *, n: int, front_end: str = "jax") -> dict:
    """Everything that defines a stored training run (see :meth:`TrainConfig.identity`; a
    PyTorch module's, trained by ``torch.optim``, also says ``front_end: torch``)."""
    training = tc.identity(n) if front_end == "jax" else {**tc.identity(n), "front_end": front_end}
    return config_identity(config, task="training", training=training)


def params_folder(table: ResultTable) -> Path:
    """Where the parameters and optimiser state of each checkpoint are saved."""
    return table.folder / f"{table.stem}_params"


def params_path(table: ResultTable, step: int, *, suffix: str = ".npz") -> Path:
    """The parameters at ``step``: ``.npz``, one array per leaf (``W1``, ``b1``, …), or
    ``.pt``, a PyTorch module's ``state_dict``."""
    return params_folder(table) / f"step{int(step)}{suffix}"


def training_command(config: RunConfig, tc: TrainConfig) -> str:
    """A ``hessian-rank train`` command line that recomputes this run."""
    c = config
    words = ["hessian-rank", "train", "--dataset", c.dataset, "--n", str(c.n)]
    words += ["--units", ",".join(map(str, c.units))] if c.network == "mlp" else network_words(c)
    for flag, value in (("--dim", c.dim), ("--K", c.K), ("--activation", c.activation), ("--init", c.init),
                        ("--loss", c.loss), ("--batch_size", c.batch_size), ("--seed", c.seed), ("--rtol", c.rtol),
                        ("--atol", c.atol), ("--method", c.method), ("--optimizer", tc.optimizer), ("--lr", tc.lr),
                        ("--steps", tc.steps), ("--train-batch", tc.train_batch)):
        if value is not None:
            words += [flag, str(value)]
    if tc.checkpoints is not None:
        words += ["--checkpoints", ",".join(map(str, tc.checkpoint_steps))]
    if c.resize != "nearest":
        words += ["--resize", c.resize]
    if c.label_noise:
        words += ["--label-noise", str(c.label_noise)]
    if c.bias:
        words.append("--bias")
    return " ".join(words)


@dataclass(kw_only=True)
class TrainingOutcome(StoredOutcome):
    """What :func:`run_training` left in the store (``computed``: the checkpoint steps
    measured now; ``resumed_from``: the step whose saved state training continued from;
    ``params_suffix``: the checkpoints' files, ``.npz`` or ``.pt`` for a PyTorch module;
    ``mode``: a PyTorch module's mode, ``train`` or ``eval``, empty for JAX)."""

    config: RunConfig
    train: TrainConfig
    resumed_from: int | None = None
    wanted: tuple[int, ...] = field(default_factory=tuple)
    params_suffix: str = ".npz"
    mode: str = ""


@in_float64
def run_training(config: RunConfig, tc: TrainConfig, *, out="results", blocks=None,
                 progress=None, threads: int | None = None, devices=None) -> TrainingOutcome:
    """Train as ``tc`` says and store one row per checkpoint not stored yet under ``out``.

    The network is ``config``'s: the MLP, the CNN or a user's model; a ``torch.nn.Module``
    built by a model file is trained with ``torch.optim`` on a float64 copy, in its mode
    (:mod:`hessrank._torch._training`), and its checkpoints are ``state_dict`` files
    ``step<t>.pt``. ``blocks`` (``"leaves"``, ``"layers"``): also store each checkpoint's
    per-block ranks in the side table ``<stem>_blocks.csv`` (a checkpoint stored without
    them is measured again). ``threads``, ``devices``: as for :func:`~hessrank.measure.run`,
    at every checkpoint.

    Raises :class:`~hessrank.errors.ConfigError` for bad settings (before any file is
    made) and, naming ``lr``, when the loss stops being finite (a divergence): the
    checkpoints stored before it stay."""
    config.validate()
    tc.validate()
    data, model, theta0 = build(config)
    config = config.replace(n=data.n, dim=data.d)
    tc = tc.validate(n=data.n)
    resolved = resolve_blocks(model, blocks)
    p = model.num_params
    plan = plan_method(config.method, p, data.n, data.K, threads=threads, devices=devices,
                       jax_devices=not hasattr(model, "curvature_source"))
    front_end = "torch" if hasattr(model, "curvature_source") else "jax"
    table = training_table(config, tc, out, n=data.n, d=data.d, front_end=front_end)
    check_writable(table.csv_path, param="out")
    trainer = _make_trainer(model, theta0, tc, data, config.loss)
    wanted = tc.checkpoint_steps
    describe = {
        "task": "training", "key": "step", "config": config.to_dict(),
        "training": {**tc.identity(data.n), "steps": tc.steps, "checkpoints": list(wanted),
                     **({"front_end": front_end, "mode": model.mode} if front_end != "jax" else {})},
        "dataset": {"name": config.dataset, "source": data.source, "d": data.d, "K": data.K},
        "params_folder": params_folder(table).name, "command": training_command(config, tc),
    }
    with stored_run(table, training_identity(config, tc, n=data.n, front_end=front_end), describe=describe,
                    key=lambda row: int(row["step"]), wanted=wanted, provenance=provenance(),
                    outcome=partial(TrainingOutcome, config=config, train=tc, wanted=wanted,
                                    params_suffix=trainer.suffix, mode=getattr(model, "mode", "")),
                    block_column="step" if blocks is not None else None, progress=progress) as job:
        for tmp in params_folder(table).glob(".*.tmp"):  # left by a writer killed mid-file
            tmp.unlink(missing_ok=True)
        if job.missing:
            _train(job, trainer, resolved, data, config, tc, plan)
    return job.outcome


def _make_trainer(model, theta0, tc: TrainConfig, data, loss: str):
    """The update loop of ``model``'s front end: optax on θ, or ``torch.optim`` on a module's copy."""
    if not hasattr(model, "curvature_source"):
        return _JaxTrainer(model, theta0, tc, data, loss)
    from ._torch._training import TorchTrainer

    return TorchTrainer(model.module, optimizer=tc.optimizer, lr=float(tc.lr), momentum=MOMENTUM, loss=loss,
                        X=data.X, Y=data.Y)


class _JaxTrainer:
    """The optax training of a JAX model: θ and the optimiser state as float64 arrays;
    checkpoints ``step<t>.npz`` (one array per leaf) and ``step<t>.optstate.npz``."""

    suffix = ".npz"

    def __init__(self, model, theta0, tc: TrainConfig, data, loss: str):
        self.model = model
        self.lossf = get_loss(loss)
        self.opt = make_optimizer(tc)
        self.X = jnp.asarray(data.X, dtype=jnp.float64)
        self.Y = jnp.asarray(data.Y, dtype=jnp.float64)
        b = tc.train_batch if tc.train_batch is not None else data.n
        self.w_batch = jnp.full((b,), 1.0 / b)
        self.w_all = jnp.full((data.n,), 1.0 / data.n)
        self.theta0 = jnp.asarray(theta0, dtype=jnp.float64)
        self.reset()

    def reset(self) -> None:
        self.theta, self.state = self.theta0, self.opt.init(self.theta0)

    def update(self, idx) -> float:
        X, Y = (self.X, self.Y) if idx is None else (self.X[idx], self.Y[idx])
        self.theta, self.state, value = _update(self.model, self.lossf, self.opt, self.theta, self.state, X, Y,
                                                self.w_batch)
        return float(value)

    def full_loss(self) -> tuple[float, float]:
        value, grad = _loss_and_grad(self.model, self.lossf, self.theta, self.X, self.Y, self.w_all)
        return float(value), float(jnp.linalg.norm(grad))

    def paths(self, folder: Path, step: int) -> tuple[Path, Path]:
        return folder / f"step{int(step)}{self.suffix}", folder / f"step{int(step)}.optstate{self.suffix}"

    def save(self, folder: Path, step: int) -> None:
        theta_path, state_path = self.paths(folder, step)
        save_arrays(theta_path, named_arrays(self.model, self.theta))
        leaves = jax.tree_util.tree_leaves(self.state)
        save_arrays(state_path, {f"leaf{i}": np.asarray(a) for i, a in enumerate(leaves)})

    def restore(self, folder: Path, step: int) -> bool:
        leaves0, treedef = jax.tree_util.tree_flatten(self.opt.init(self.theta0))
        theta_path, state_path = self.paths(folder, step)
        try:
            theta = flat_params(self.model, load_arrays(theta_path))
            saved = load_arrays(state_path)
            leaves = [saved[f"leaf{i}"] for i in range(len(leaves0))]
        except (ConfigError, KeyError):
            return False
        if len(saved) != len(leaves0) or any(a.shape != l.shape or a.dtype != l.dtype
                                             for a, l in zip(leaves, leaves0)):
            return False
        self.theta = jnp.asarray(theta, dtype=jnp.float64)
        self.state = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in leaves])
        return True


def _train(job, trainer, blocks, data, config, tc, plan):
    """Train from the last saved state before the first missing checkpoint of ``job`` (a
    :class:`~hessrank.store.Job`) and store each missing checkpoint; ``trainer`` is the
    front end's update loop, ``blocks`` the blocks to rank."""
    session, missing = job.session, job.missing
    n = data.n
    b = tc.train_batch if tc.train_batch is not None else n
    start = _resume_point(session, trainer, first=missing[0])
    job.outcome.resumed_from = start if start > 0 else None
    todo = set(missing)
    last = missing[-1]
    job.begin(f"step {missing[0]}")
    for step in range(start, last + 1):
        if step in todo:
            _store_checkpoint(job, tc, trainer, plan, data, config, step, blocks=blocks)
            job.end(f"step {step}", _checkpoint_message(session.rows[step]),
                    f"step {min(s for s in todo if s > step)}" if step != last else None)
        if step == last:
            break
        value = trainer.update(batch_indices(step, n, b, config.seed))
        if not math.isfinite(value):
            _diverged(session, tc, step, value)


def _diverged(session, tc, step, value):
    stored = sorted(session.rows)
    kept = (f"the {len(stored)} checkpoint(s) stored (steps {stored[0]}..{stored[-1]}) are kept"
            if stored else "no checkpoint was stored")
    raise ConfigError.invalid("lr", tc.lr, f"training diverged: the loss is {value} at step {step}; {kept} in "
                                           f"{str(session.table.csv_path)!r}; use a smaller learning rate")


def _resume_point(session, trainer, *, first: int) -> int:
    """The step training continues from: the latest stored checkpoint at or before ``first``
    whose saved files read back into ``trainer``, else 0 (the initialisation)."""
    for step in sorted((s for s in session.rows if s <= first), reverse=True):
        if step == 0:
            break
        if trainer.restore(params_folder(session.table), step):
            return step
    trainer.reset()
    return 0


def _store_checkpoint(job, tc, trainer, plan, data, config, step, *, blocks=None):
    """Measure one checkpoint; save its parameters and optimiser state, then its row (and
    its per-block ranks, when ``blocks`` are asked for) through ``job``."""
    session = job.session
    t0 = time.perf_counter()
    value, grad_norm = trainer.full_loss()
    if not (math.isfinite(value) and math.isfinite(grad_norm)):
        _diverged(session, tc, step, value)
    model, theta = trainer.model, trainer.theta
    ranks, timings, details, block_ranks = measure_model_ranks(
        plan, model, get_loss(config.loss), theta, data.X, data.Y, batch_size=config.effective_batch_size(data.n),
        rtol=config.rtol, atol=config.atol, seed=config.seed, blocks=blocks)
    result = make_result(config, data, data.n, model.num_params, ranks, plan, seconds=time.perf_counter() - t0,
                         timings=timings, details=details, theta=theta)
    measured = result_row(result)
    row = {"step": str(step), "loss": format_float(value), "grad_norm": format_float(grad_norm), **measured}
    for name, s in SUFFIX.items():
        eig = np.asarray(ranks[name].eigenvalues)
        row[f"lambda_max_{s}"] = format_float(float(np.max(np.abs(eig))) if eig.size else 0.0)
    check_real_folders(params_folder(session.table), root=session.table.folder)
    trainer.save(params_folder(session.table), step)
    job.store(step, row, blocks=block_ranks)


def _checkpoint_message(row: dict) -> str:
    kinds = row_kinds(row)
    parts = [f"{name} {row['rank_' + s]}/{'≤' if kinds[name] == 'bound' else ''}{row['pred_' + s]}"
             for name, s in SUFFIX.items()]
    return f"loss {float(row['loss']):.4g}, " + ", ".join(parts) + f", {float(row['seconds']):.2f} s"


def format_training(outcome: TrainingOutcome) -> str:
    """The table of a training run and where it is stored (``≤`` marks a bound)."""
    lines = [f"{'step':>7} {'loss':>11} {'|grad|':>10}   {'H_L':>13} {'H_o':>13} {'H_F':>13}   "
             f"{'λmax H_L':>9}   (measured / predicted)"]
    for row in outcome.rows:
        kinds = row_kinds(row)
        cells = [f"{row['rank_' + s]:>5} / {('≤' if kinds[name] == 'bound' else '') + row['pred_' + s]:<5}"
                 for name, s in SUFFIX.items()]
        lines.append(f"{row['step']:>7} {float(row['loss']):>11.4e} {float(row['grad_norm']):>10.3e}   "
                     + " ".join(cells) + f"   {float(row['lambda_max_L']):>9.3e}")
    p = outcome.rows[0]["num_params"] if outcome.rows else "?"
    library = f" (torch.optim; PyTorch module in {outcome.mode} mode)" if outcome.mode else ""
    lines += ["", f"p = {p}; {outcome.train.optimizer}, lr {outcome.train.lr}, {outcome.train.steps} steps{library}",
              *comparison_lines(count_comparisons(outcome.rows))]
    resumed = f", resumed from the state saved at step {outcome.resumed_from}" if outcome.resumed_from else ""
    lines += [f"training: {len(outcome.computed)} checkpoint(s) computed now, {outcome.stored_before} were stored "
              f"before{resumed}",
              f"rows:   {outcome.table.csv_path}",
              f"config: {outcome.table.json_path}",
              f"params: {params_folder(outcome.table)}/step<t>{outcome.params_suffix} (hessian-rank run --params …)"]
    lines += [f"damaged row: {line}" for line in outcome.set_aside]
    return "\n".join(lines)
