r"""Rank of H_L, H_o, H_F against sample size, width and depth (the paper's three sweeps).

* ``samplesize``: one network, the first :math:`n = b, 2b, \dots, n_{\max}` samples
  (:math:`b` = batch size). The matrices grow batch by batch,
  :math:`H(n + b) = H(n) + \sum_{n < i \le n + b} (\dots)_i`
  (:func:`~hessrank.curvature.running_hessians`), never recomputed from scratch;
  :math:`r = \mathrm{rank}(\sum_{i \le n} x_i x_i^\top)` grows with them.
* ``width``: two hidden layers of width :math:`w` for each :math:`w` in ``widths``, fixed n.
* ``depth``: :math:`1, 2, \dots` hidden layers of one ``width``, fixed n.
* ``channels``: a CNN (``arch = "cnn"``) whose every conv layer has the swept number of
  channels (kernels, stride, padding, pool kept), fixed n.

A CNN or a user's model (``model``) can be swept over the sample size; width and depth
are the MLP's (refused for the others), channels the CNN's. Asked for blocks
(``blocks = "layers"``), each point's per-block ranks land in a side table
(:class:`~hessrank.store.BlockTable`), the main table keeping its columns.

Every point is stored as one CSV row as soon as it is measured (see
:class:`~hessrank.store.ResultTable`). Started again with the same configuration, a
sweep computes only the missing points. A sample-size sweep then accumulates again
from the first sample (the identical sequence of batch sums), so a row is the same
number whether it was computed in one go or after a resume.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .atomicio import check_writable
from .config import (
    DEFAULT_CHANNELS,
    DEFAULT_DEPTH_WIDTH,
    DEFAULT_DEPTHS,
    DEFAULT_N_MAX,
    DEFAULT_WIDTHS,
    MAX_SIZE,
    TASKS,
    RunConfig,
    conv_text,
)
from .curvature import running_hessians
from .data import expected_shape, load_dataset
from .errors import ConfigError
from .linalg import symmetric_rank
from .matrices import DENSE, MATRICES, SUFFIX
from .measure import (
    build,
    expected_basis,
    make_result,
    measure_model_ranks,
    plan_before_loading,
    plan_method,
    predict_for,
)
from .measure.blocks import BlockRanks, at_whole_tolerance, dense_block_spectrum, resolve_blocks
from .measure.network import network_folder_name, network_num_params, network_words
from .measure.processes import check_same_ranks, is_main_process, share_points
from .measure.provenance import provenance
from .measure.run import run
from .measure.scale import at_problem_scale
from .measure.threads import blas_threads
from .models import get_loss
from .store import (
    RESULT_COLUMNS,
    ResultTable,
    StoredOutcome,
    comparison_lines,
    config_hash,
    config_identity,
    config_slug,
    count_comparisons,
    result_row,
    row_kinds,
    row_mark,
    store_folder,
    stored_run,
)

# TASKS and the paper's reference setup (DEFAULT_N_MAX, …, SWEEP_DEFAULTS) live in hessrank.config
#: the CSV column named for the swept quantity
KEY_COLUMN = {"samplesize": "n", "width": "width", "depth": "depth", "channels": "channels"}
#: the width sweep's networks: this many hidden layers, all of the swept width
WIDTH_SWEEP_LAYERS = 2


def parse_range(text, *, param: str) -> tuple[int, ...]:
    """``"4:36:4"`` → ``(4, 8, …, 36)`` (start:stop:step, stop included), or a comma list
    ``"4,8,16"``; positive integers, returned sorted without repeats. Errors name ``param``."""
    text = str(text).strip()
    allowed = "give start:stop:step (stop included), e.g. 4:56:4, or a list, e.g. 4,8,16"
    try:
        if ":" in text:
            parts = [int(s) for s in text.split(":")]
            if len(parts) == 2:
                parts.append(1)
            if len(parts) != 3:
                raise ValueError
        else:
            values = [int(s) for s in text.split(",")]
    except ValueError:
        raise ConfigError.invalid(param, text, f"not a range of integers; {allowed}") from None
    if ":" in text:
        start, stop, step = parts
        if stop < start:
            raise ConfigError.invalid(param, text, f"stop {stop} is below start {start}; stop must be >= start; "
                                                   f"{allowed}")
        if step < 1:
            raise ConfigError.invalid(param, text, f"step {step} must be >= 1; {allowed}")
        _check_point_count(param, text, (stop - start) // step + 1)  # counted before the range is made
        values = list(range(start, stop + 1, step))
    _check_point_count(param, text, len(values))
    bad = [v for v in values if v < 1]
    if bad or not values:
        raise ConfigError.invalid(param, text, f"{bad[0] if bad else 'no'} value(s) below 1; every value must be >= 1")
    return tuple(sorted(set(values)))


#: the most points one sweep may have (each point is at least one Hessian)
MAX_SWEEP_POINTS = 10_000


def _check_point_count(param: str, value, count: int) -> None:
    if count > MAX_SWEEP_POINTS:
        raise ConfigError.invalid(param, value, f"{count} points; a sweep has at most {MAX_SWEEP_POINTS}")


@dataclass(frozen=True)
class Sweep:
    """One sweep: ``task``, the configuration of its first point ``base`` and the
    ``points`` (values of n, width or depth). For ``samplesize`` ``base.n`` is n_max and
    ``base.batch_size`` the step; for ``depth``, ``width`` is every hidden layer's width."""

    task: str
    base: RunConfig
    points: tuple[int, ...]
    width: int | None = None

    @property
    def key(self) -> str:
        """The CSV column of the swept quantity: ``n``, ``width`` or ``depth``."""
        return KEY_COLUMN[self.task]

    @property
    def columns(self) -> tuple[str, ...]:
        """The stored table's columns: the swept quantity, then the results."""
        return (self.key, *RESULT_COLUMNS)

    def config_at(self, point: int) -> RunConfig:
        """The configuration of one point."""
        if self.task == "samplesize":
            return self.base.replace(n=int(point))
        if self.task == "width":
            return self.base.replace(units=(int(point),) * WIDTH_SWEEP_LAYERS)
        if self.task == "channels":
            return self.base.replace(conv=conv_text((int(point), k) for _, k in self.base.conv_layers))
        return self.base.replace(units=(int(self.width),) * int(point))

    @property
    def kernels(self) -> list[int]:
        """channels: the kernel size of each conv layer."""
        return [k for _, k in self.base.conv_layers]

    def identity(self) -> dict:
        """What defines this sweep's stored rows: every setting but the swept one."""
        if self.task == "samplesize":
            return config_identity(self.base, task="samplesize")
        ident = config_identity(self.base, task=self.task)
        if self.task == "channels":
            ident.pop("conv")
            ident["kernels"] = self.kernels
            return ident
        ident.pop("units")
        if self.task == "width":
            ident["hidden_layers"] = WIDTH_SWEEP_LAYERS
        else:
            ident["width"] = int(self.width)
        return ident

    def folder(self, out, *, d: int) -> Path:
        """``<out>/store/<task>/<loss>/<dataset>/…`` as the paper laid it out."""
        c = self.base
        if self.task == "samplesize":
            return store_folder(out, "samplesize", c.loss, c.dataset, network_folder_name(c, d))
        if self.task == "width":
            return store_folder(out, "width", c.loss, c.dataset)
        if self.task == "channels":
            return store_folder(out, "channels", c.loss, c.dataset, "k" + "-".join(map(str, self.kernels)))
        return store_folder(out, "depth", c.loss, c.dataset, self.width)

    def table(self, out, *, d: int) -> ResultTable:
        """The stored table of this sweep under ``out`` for data of dimension ``d``."""
        stem = f"{config_slug(self.base)}_{config_hash(self.identity())}"
        return ResultTable(self.folder(out, d=d), stem, self.columns)

    def command(self) -> str:
        """A ``hessian-rank sweep`` command line that recomputes this sweep."""
        c = self.base
        words = ["hessian-rank", "sweep", self.task, "--dataset", c.dataset]
        if self.task == "samplesize":
            words += ["--n-max", str(c.n)]
            words += ["--units", ",".join(map(str, c.units))] if c.network == "mlp" else []
        else:
            words += ["--n", str(c.n)]
        words += network_words(c)
        if self.task == "channels":
            words += ["--channels", ",".join(map(str, self.points))]
        if self.task == "width":
            words += ["--widths", ",".join(map(str, self.points))]
        if self.task == "depth":
            words += ["--width", str(self.width), "--depths", ",".join(map(str, self.points))]
        for flag, value in (("--dim", c.dim), ("--K", c.K), ("--activation", c.activation), ("--init", c.init),
                            ("--loss", c.loss), ("--batch_size", c.batch_size), ("--seed", c.seed),
                            ("--rtol", c.rtol), ("--atol", c.atol), ("--method", c.method)):
            if value is not None:
                words += [flag, str(value)]
        for flag, name, default in (("--resize", "resize", "nearest"), ("--label-noise", "label_noise", 0.0)):
            value = getattr(c, name, default)
            if value != default:
                words += [flag, str(value)]
        if c.bias:
            words.append("--bias")
        return " ".join(words)


def make_sweep(task: str, base: RunConfig, *, n_max: int | None = None, widths=None, depths=None,
               width: int | None = None, channels=None) -> Sweep:
    """A validated :class:`Sweep`. ``widths`` / ``depths`` / ``channels`` are sequences or
    range strings (:func:`parse_range`); unset ones take the paper's values (channels 2:16:2)."""
    if task not in TASKS:
        raise ConfigError.invalid("task", task, f"not one of {', '.join(TASKS)}")
    if task == "samplesize":
        n_max = DEFAULT_N_MAX if n_max is None else n_max
        if not isinstance(n_max, int) or isinstance(n_max, bool) or not 1 <= n_max <= MAX_SIZE:
            raise ConfigError.invalid("n_max", n_max, f"the largest sample size must be an integer from 1 to "
                                                      f"{MAX_SIZE}")
        bs = base.batch_size if base.batch_size is not None else base.effective_batch_size(n_max)
        if not isinstance(bs, int) or bs < 1 or bs > n_max:
            raise ConfigError.invalid("batch_size", bs, f"the sample-size step must be 1..{n_max} (n_max {n_max})")
        _check_point_count("n_max", n_max, n_max // bs)
        base = base.replace(n=n_max, batch_size=bs).validate()
        return Sweep("samplesize", base, tuple(range(bs, n_max + 1, bs)))
    if task in ("width", "depth") and base.network != "mlp":
        param = "model" if base.network == "model" else "arch"
        raise ConfigError.invalid(param, getattr(base, param), f"the {task} sweep varies the hidden layers of the "
                                                               "MLP; sweep this network's sample size (samplesize)"
                                  + (" or channels" if base.network == "cnn" else ""))
    if task == "channels" and base.network != "cnn":
        param = "model" if base.network == "model" else "arch"
        raise ConfigError.invalid(param, getattr(base, param), "the channels sweep varies the conv channels of the "
                                                               "CNN; give arch cnn")
    if task == "width":
        sweep = Sweep("width", base, _points(widths, DEFAULT_WIDTHS, param="widths"))
    elif task == "channels":
        sweep = Sweep("channels", base, _points(channels, DEFAULT_CHANNELS, param="channels"))
    else:
        width = DEFAULT_DEPTH_WIDTH if width is None else width
        if not isinstance(width, int) or width < 1:
            raise ConfigError.invalid("width", width, "the width of the hidden layers must be an integer >= 1")
        sweep = Sweep("depth", base, _points(depths, DEFAULT_DEPTHS, param="depths"), width=width)
    if base.n is None:
        raise ConfigError.about("n", f"the {task} sweep needs a sample size, e.g. 100")
    return Sweep(sweep.task, sweep.config_at(sweep.points[0]).validate(), sweep.points, sweep.width)


def _points(value, default: str, *, param: str) -> tuple[int, ...]:
    if value is None:
        value = default
    if not isinstance(value, str):
        value = ",".join(map(str, value))
    return parse_range(value, param=param)


@dataclass(kw_only=True)
class SweepOutcome(StoredOutcome):
    """What :func:`run_sweep` left in the store (``computed``: the swept values)."""

    sweep: Sweep


def run_sweep(sweep: Sweep, *, out="results", blocks=None, progress=None, threads: int | None = None,
              devices=None) -> SweepOutcome | None:
    """Measure every point of ``sweep`` that is not stored yet under ``out``.

    ``blocks`` (``"leaves"``, ``"layers"``): also store each point's per-block ranks in the
    side table ``<stem>_blocks.csv``; a point stored without them is measured again.
    ``threads``, ``devices``: as for :func:`~hessrank.measure.run`, at every point.

    Each point is written to the CSV (atomically) as soon as it is measured; the JSON
    beside it records the configuration, the command, package versions and machine of
    every session. ``progress``: ``None``, or a factory ``total -> Progress``.

    Run as several processes (:func:`~hessrank.measure.processes.start_processes`), every
    process measures the points that process 0's store lacks and checks that all computed the
    same ranks, cuts and certificates; only process 0 writes, and the others return None.
    """
    largest = sweep.base if sweep.task == "samplesize" else sweep.config_at(max(sweep.points))
    plan_before_loading(largest, **expected_shape(largest))  # sizes first: nothing is allocated yet
    data = load_dataset(sweep.base)  # bad data options fail here, before any file is made
    sizes = [network_num_params(sweep.config_at(p), data.d, data.K) for p in sweep.points]
    if None not in sizes:  # a user's model: only its build knows p (planned when it is built)
        # refuses what cannot fit (and bad threads or devices), before any file
        plan_method(sweep.base.method, max(sizes), data.n, data.K, threads=threads, devices=devices)
    where = {"threads": threads, "devices": devices}
    if not is_main_process():   # the points process 0 measures, unwritten: their collectives need every process
        for _, result in _measure(sweep, share_points(None), blocks, **where):
            check_same_ranks(result.ranks, result.method_details)
        return None
    table = sweep.table(out, d=data.d)
    check_writable(table.csv_path, param="out")
    key = sweep.key
    describe = {
        "task": sweep.task,
        "key": key,
        "config": sweep.base.to_dict(),
        "sweep": _sweep_params(sweep),
        "dataset": {"name": sweep.base.dataset, "source": data.source, "d": data.d, "K": data.K},
        "command": sweep.command(),
    }
    with stored_run(table, sweep.identity(), describe=describe, key=lambda row: int(row[key]), wanted=sweep.points,
                    provenance=provenance(), outcome=partial(SweepOutcome, sweep=sweep),
                    block_column=key if blocks is not None else None, progress=progress) as job:
        missing = share_points(job.missing)
        if missing:
            job.begin(f"{key}={missing[0]}")
        for i, (point, result) in enumerate(_measure(sweep, missing, blocks, **where)):
            check_same_ranks(result.ranks, result.method_details)
            job.store(point, {key: str(point), **result_row(result)}, blocks=result.blocks)
            job.end(f"{key}={point}", _point_message(job.session.rows[point]),
                    f"{key}={missing[i + 1]}" if i + 1 < len(missing) else None)
    return job.outcome


def _measure(sweep: Sweep, missing, blocks=None, *, threads=None, devices=None):
    """Yield ``(point, Result)`` for each point in ``missing`` (ascending)."""
    if not missing:
        return
    if sweep.task != "samplesize":
        for point in missing:
            yield point, run(sweep.config_at(point), blocks=blocks, threads=threads, devices=devices)
        return
    yield from _measure_sample_sizes(sweep.base, set(missing), blocks, threads=threads, devices=devices)


def _measure_sample_sizes(base: RunConfig, wanted: set[int], blocks=None, *, threads=None, devices=None):
    """Ranks of the matrices of the first n samples, for each n in ``wanted``.

    Dense: the running sums are accumulated once, batch by batch, and decomposed at
    each wanted n. Matrix-free, or a PyTorch module: each n is measured on its first n samples.
    """
    data, model, theta = build(base)
    p = model.num_params
    plan = plan_method(base.method, p, max(wanted), data.K,
                       basis=expected_basis(predict_for(base, data, max(wanted), p)[1]), threads=threads,
                       devices=devices, jax_devices=not hasattr(model, "curvature_source"))
    loss = get_loss(base.loss)
    resolved = resolve_blocks(model, blocks)
    if plan.method != DENSE or hasattr(model, "curvature_source"):  # a PyTorch module: no running sums
        for n in sorted(wanted):
            t = time.perf_counter()
            ranks, timings, details, block_ranks = measure_model_ranks(
                plan, model, loss, theta, data.X[:n], data.Y[:n], batch_size=base.effective_batch_size(n),
                rtol=base.rtol, atol=base.atol, seed=base.seed, blocks=resolved)
            result = make_result(base, data, n, p, ranks, plan, seconds=time.perf_counter() - t, timings=timings,
                                 details=details)
            result.blocks = block_ranks
            yield n, result
        return
    last = max(wanted)
    t = time.perf_counter()
    with blas_threads(plan.threads) if threads is not None else contextlib.nullcontext():
        for n, mats in running_hessians(model, loss, theta, data.X, data.Y, batch_size=base.batch_size):
            if n in wanted:
                t_eig = time.perf_counter()
                # symmetric_rank without overwrite works on a copy: the accumulators live on
                ranks = {name: symmetric_rank(mats[name], rtol=base.rtol, atol=base.atol) for name in MATRICES}
                ranks = at_problem_scale(ranks, rtol=base.rtol, atol=base.atol)
                block_ranks = {bname: BlockRanks(blk.size, blk.leaves, {
                    m: at_whole_tolerance(dense_block_spectrum(mats[m], blk), blk.size, ranks[m]) for m in MATRICES},
                    {m: {"how": "eigenvalues of the diagonal block", "status": "exact"} for m in MATRICES})
                    for bname, blk in resolved.items()}
                now = time.perf_counter()
                result = make_result(base, data, n, p, ranks, plan, seconds=now - t,
                                     timings={"hessians": t_eig - t, "eigen": now - t_eig}, details={})
                result.blocks = block_ranks
                yield n, result
                t = time.perf_counter()
            if n >= last:
                break


def _sweep_params(sweep: Sweep) -> dict:
    params = {"task": sweep.task, "key": sweep.key, "points": list(sweep.points)}
    if sweep.task == "samplesize":
        params.update(n_max=sweep.base.n, batch_size=sweep.base.batch_size, units=list(sweep.base.units))
    elif sweep.task == "width":
        params.update(hidden_layers=WIDTH_SWEEP_LAYERS, n=sweep.base.n)
    elif sweep.task == "channels":
        params.update(kernels=sweep.kernels, n=sweep.base.n)
    else:
        params.update(width=sweep.width, n=sweep.base.n)
    return params


def _point_message(row: dict) -> str:
    kinds = row_kinds(row)
    parts = [f"{name} {row['rank_' + s]}/{'≤' if kinds[name] == 'bound' else ''}{row['pred_' + s]}"
             for name, s in SUFFIX.items()]
    return ", ".join(parts) + f" (measured/predicted), {row.get('method') or 'dense'}, {float(row['seconds']):.2f} s"


def format_summary(outcome: SweepOutcome) -> str:
    """The table of a finished sweep and where it is stored: a bound is shown as
    ``≤ value``; ``≠`` marks a rank that differs from an exact prediction or an estimate,
    ``> bound!`` one above its bound (never expected)."""
    sweep, key = outcome.sweep, outcome.sweep.key
    rows = outcome.rows
    lines = [f"{key:>6} {'p':>7} {'r':>4}   {'H_L':>14} {'H_o':>14} {'H_F':>14}   (measured / predicted)"]
    for row in rows:
        kinds = row_kinds(row)
        cells = [f"{row['rank_' + s]:>6} / {('≤' if kinds[name] == 'bound' else '') + row['pred_' + s]:<5}"
                 for name, s in SUFFIX.items()]
        mark = row_mark(row)
        lines.append(f"{row[key]:>6} {row['num_params']:>7} {row['r']:>4}   " + " ".join(cells)
                     + (f"  {mark}" if mark else ""))
    methods = sorted({row.get("method", "") for row in rows} - {""})
    lines += ["", *comparison_lines(count_comparisons(rows))]
    if methods:
        lines.append(f"method {', '.join(methods)}")
    lines += [
        f"{sweep.task} sweep: {len(outcome.computed)} point(s) computed now, {outcome.stored_before} were "
        "stored before",
        f"rows:   {outcome.table.csv_path}",
        f"config: {outcome.table.json_path}",
    ]
    lines += [f"damaged row: {line}" for line in outcome.set_aside]
    return "\n".join(lines)

