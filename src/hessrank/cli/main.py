"""The ``hessian-rank`` command line: parsers, commands, and errors as flags.

``hessian-rank run`` measures one configuration. Bad input ends with one line on
stderr naming the flag, the value and what is allowed, and exit status 2: the
library's errors name parameters (``activation='x'``), translated here into the
flags that set them (``--activation 'x'``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..atomicio import atomic_output, check_writable
from ..compile_cache import default_cache_dir, enable_compile_cache
from ..config import (
    ACTIVATIONS,
    ARCHS,
    DEFAULT_CHANNELS,
    DEFAULT_CONV,
    DEFAULT_DEPTH_WIDTH,
    DEFAULT_DEPTHS,
    DEFAULT_N_MAX,
    DEFAULT_WIDTHS,
    INITS,
    LOSSES,
    METHODS,
    OPTIMIZERS,
    PADDINGS,
    POOLS,
    RESIZES,
    RUN_OPTIONS,
    SWEEP_DEFAULTS,
    TASKS,
    RunConfig,
    config_from_options,
    parse_units,
)
from ..data import availability, describe_roots, download_root, fetch, load_dataset, search_roots
from ..errors import ConfigError, HessrankError
from ..measure import SpectrumOptions, function_spectrum, hessian_spectrum_mlp, run
from ..measure.blocks import BLOCK_KINDS
from ..measure.network import network_label
from ..models import build_cnn, load_user_model
from ..models.params import load_arrays

# The sweeps, the training, the grids, the result store and the plots are imported by the
# commands that use them (15 modules a plain `run` would compile and execute for nothing).
from .format import (
    format_block_spectra,
    format_blocks,
    format_explain,
    format_rank_vs_rtol,
    format_result,
    format_spectrum,
)
from .progress import Progress

EXIT_USAGE = 2

#: parameters whose flag is not ``--<parameter>``
_FLAGS = {"label_noise": "--label-noise", "n_max": "--n-max", "data_dir": "--data-dir",
          "memory_limit": "--memory-limit", "rank_vs_rtol": "--rank-vs-rtol", "scheme": "--init",
          "widths": "--widths", "options": "option", "trace_samples": "--trace-samples",
          "lanczos_steps": "--lanczos-steps", "train_batch": "--train-batch"}


def flag_of(param: str) -> str:
    """The command-line flag that sets the library parameter ``param``."""
    return _FLAGS.get(param, f"--{param}")


def error_line(err: HessrankError) -> str:
    """The one line printed for ``err``: the parameter it names replaced by its flag."""
    if err.param is None:
        return str(err)
    if err.shown is not None:
        return f"{flag_of(err.param)} {err.shown}: {err.detail}"
    return f"{flag_of(err.param)}: {err.detail}"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message):
        raise ConfigError(message)


def add_run_options(parser: argparse.ArgumentParser, *, defaults: RunConfig | None = None) -> None:
    """The options of ``hessian-rank run``; sweeps and grids reuse them."""
    d = defaults or RunConfig()
    g = parser.add_argument_group("data")
    g.add_argument("--dataset", default=d.dataset, help=f"data set name or file (default {d.dataset})")
    g.add_argument("--n", type=int, default=d.n,
                   help="number of samples (default 100; a .npz/.csv file: all rows)")
    g.add_argument("--dim", type=int, default=d.dim,
                   help="input dimension d; images are resized to √dim × √dim (default 64; a file: its d)")
    g.add_argument("--K", type=int, default=d.K, help=f"number of outputs / classes (default {d.K})")
    g.add_argument("--data-dir", "--data_dir", dest="data_dir", default=d.data_dir,
                   help="where data files live (default: $HESSRANK_DATA, then standard places)")
    g.add_argument("--download", action="store_true", default=d.download,
                   help="fetch a missing MNIST/FashionMNIST/CIFAR10 from its mirrors (needs internet)")
    g.add_argument("--resize", default=d.resize, help=f"image resizing, one of {', '.join(RESIZES)} (default "
                                                      f"{d.resize})")
    g.add_argument("--label-noise", "--label_noise", dest="label_noise", type=float, default=d.label_noise,
                   metavar="FRACTION", help="give this fraction of the samples a wrong label, drawn with --seed "
                                            "(default 0)")
    g = parser.add_argument_group("network")
    g.add_argument("--units", default=",".join(map(str, d.units)),
                   help=f"hidden widths, comma-separated (default {','.join(map(str, d.units))})")
    g.add_argument("--activation", default=d.activation, help=f"one of {', '.join(ACTIVATIONS)} (default "
                                                              f"{d.activation})")
    g.add_argument("--bias", action="store_true", default=d.bias, help="add biases (default: none, as in the paper)")
    g.add_argument("--init", default=d.init, help=f"one of {', '.join(INITS)} (default {d.init})")
    g.add_argument("--seed", type=int, default=d.seed, help=f"seed of data and initialisation (default {d.seed})")
    g.add_argument("--arch", default=d.arch, help=f"{' or '.join(ARCHS)} (default {d.arch}): cnn is --conv layers on "
                                                  "√dim × √dim images, then one dense layer to K")
    g.add_argument("--conv", default=d.conv, help=f"cnn: channels:kernel of each conv layer (default {DEFAULT_CONV})")
    g.add_argument("--stride", type=int, default=d.stride, help=f"cnn: stride of every conv layer (default "
                                                                 f"{d.stride})")
    g.add_argument("--padding", default=d.padding, help=f"cnn: {' or '.join(PADDINGS)} (default {d.padding})")
    g.add_argument("--pool", default=d.pool, help=f"cnn: {' or '.join(POOLS)} (2×2 average pool after each conv "
                                                  f"layer; default {d.pool})")
    g.add_argument("--model", metavar="FILE.py:FUNCTION", default=d.model,
                   help="your own network: FUNCTION(d, K, seed) returns (f, params), f(params, X) -> (n, K) "
                        "(--units, --activation, --bias, --init are then not used)")
    g.add_argument("--blocks", choices=BLOCK_KINDS, default=None,
                   help="also rank the diagonal blocks of H_L, H_o, H_F, one per parameter array (leaves) or per "
                        "layer (layers), at the tolerance of the whole matrix")
    g = parser.add_argument_group("loss and computation")
    g.add_argument("--loss", default=d.loss, help=f"one of {', '.join(LOSSES)} (default {d.loss})")
    g.add_argument("--batch_size", "--batch-size", dest="batch_size", type=int, default=d.batch_size,
                   help="samples per batch when accumulating the Hessians (default min(n, 100))")
    g.add_argument("--method", default=d.method,
                   help=f"one of {', '.join(METHODS)}: dense p×p matrices, or Hessian-vector products and a "
                        f"certified randomized sketch (no p×p array); auto: dense when it fits comfortably in "
                        f"memory (default {d.method})")
    g = parser.add_argument_group("rank tolerance")
    g.add_argument("--rtol", type=float, default=d.rtol,
                   help="relative tolerance: tol = rtol * max|eigenvalue| (default size * eps)")
    g.add_argument("--atol", type=float, default=d.atol, help="absolute tolerance (with --rtol, the larger wins)")
    add_cache_option(parser)


def add_cache_option(parser: argparse.ArgumentParser) -> None:
    """``--compile-cache`` / ``--no-compile-cache``: keep compiled programs between processes, or not."""
    parser.add_argument("--compile-cache", dest="compile_cache", action="store_true", default=None,
                        help="reuse compiled programs across runs, under $HESSRANK_COMPILE_CACHE or "
                             "~/.cache/hessrank/jax (the default; HESSRANK_COMPILE_CACHE=off turns it off)")
    parser.add_argument("--no-compile-cache", dest="compile_cache", action="store_false",
                        help="do not keep or reuse compiled programs, whatever HESSRANK_COMPILE_CACHE says")


def config_from_args(args: argparse.Namespace, **overrides) -> RunConfig:
    """A validated :class:`RunConfig` from parsed ``run`` options."""
    return config_from_options({k: v for k, v in vars(args).items() if k in RUN_OPTIONS}, **overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hessian-rank", description="Ranks of neural-network Hessian maps next to theory.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    p_run = sub.add_parser("run", help="measure rank H_L, H_o, H_F for one network and data set")
    add_run_options(p_run)
    p_run.add_argument("--spectrum", metavar="FILE.csv", help="write the eigenvalues of H_L, H_o, H_F to a CSV")
    p_run.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p_run.add_argument("--rank-vs-rtol", "--rank_vs_rtol", dest="rank_vs_rtol", action="store_true",
                       help="also print each rank at rtol = 1e-16 … 1e-2 (how much the rank depends on the tolerance)")
    p_run.add_argument("--explain", action="store_true",
                       help="also print p − rank of each matrix split into what the theory accounts for (data span, "
                            "softmax shift, rescaling symmetries, sample count, linear structure) and what remains")
    p_run.add_argument("--params", metavar="FILE.npz", default=None,
                       help="measure at these parameters (one array per leaf W1, b1, …, as `hessian-rank train` "
                            "saves them) instead of the initialisation")
    p_run.set_defaults(handler=_cmd_run)
    add_spectrum_options(sub.add_parser("spectrum", help="top eigenvalues, trace, density, outliers and condition "
                                                         "of H_L, H_o, H_F", description=_SPECTRUM_DESCRIPTION))
    add_train_options(sub.add_parser("train", help="train a network and measure rank H_L, H_o, H_F at checkpoints",
                                     description=_TRAIN_DESCRIPTION))
    p_data = sub.add_parser("datasets", help="list the data sets, where they are, how to get a missing one")
    p_data.add_argument("--data-dir", "--data_dir", dest="data_dir", help="also look here (first)")
    p_data.add_argument("--download", nargs="+", metavar="NAME", default=[],
                        help="fetch these data sets (MNIST, FashionMNIST, CIFAR10) unless present; needs internet")
    p_data.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p_data.set_defaults(handler=_cmd_datasets)
    p_sweep = sub.add_parser("sweep", help="rank H_L, H_o, H_F against sample size, width or depth")
    tasks = p_sweep.add_subparsers(dest="task", metavar="TASK", parser_class=_Parser)
    tasks.required = True
    for task, text in _SWEEP_HELP.items():
        add_sweep_options(tasks.add_parser(task, help=text, description=text), task)
    add_plot_options(sub.add_parser("plot", help="draw a stored sweep, or --spectrum of one run",
                                    description=_PLOT_DESCRIPTION))
    add_grid_options(sub.add_parser("grid", help="run a grid of configurations (GRID.toml) on a Dask cluster",
                                    description=_GRID_DESCRIPTION))
    return parser


def _cmd_datasets(args) -> int:
    for name in args.download:
        name, folder, fetched = fetch(name, args.data_dir)
        print(f"{name}: {'downloaded to' if fetched else 'already available in'} {folder}", file=sys.stderr)
    rows = availability(args.data_dir)
    if args.json:
        searched = [{"root": str(r), "origin": o} for r, o in search_roots(args.data_dir)]
        print(json.dumps({"datasets": rows, "searched": searched,
                          "download_to": str(download_root(args.data_dir))}))
        return 0
    print(f"{'data set':<14}{'status':<11}where it is / the command that gets it")
    for row in rows:
        status = "available" if row["available"] else "missing"
        print(f"{row['name']:<14}{status:<11}{row['where'] if row['available'] else row['get']}")
    print(f"{'your own':<14}{'-':<11}--dataset FILE.npz (arrays X (n, d), y) or FILE.csv (last column the label)")
    print()
    print(f"searched, in order: {describe_roots(args.data_dir)}")
    print(f"--download writes to: {download_root(args.data_dir)}")
    return 0


def _cmd_run(args) -> int:
    _RAN.append(True)
    cfg = config_from_args(args)
    if args.explain and cfg.network != "mlp":
        raise ConfigError.invalid("explain", True, f"{cfg.network}: the theory of null spaces is the MLP's; "
                                                   "leave --explain out", quoted=False)
    if args.spectrum:
        check_writable(args.spectrum, param="spectrum")
    params = None if args.params is None else load_arrays(args.params)
    result = run(cfg, blocks=args.blocks, params=params, params_source=args.params or "")
    if args.spectrum:
        from ..store import write_spectrum_csv

        write_spectrum_csv(args.spectrum, result)
    if args.json:
        out = result.to_dict()
        if cfg.network != "mlp":
            out["model"] = network_label(result.config, result.d)
        if args.params:
            out["params"] = args.params
        print(json.dumps(out, allow_nan=False))
    else:
        print(format_result(result))
        if args.params:
            print(f"measured at the parameters in {args.params} (not the initialisation)")
        if result.blocks:
            print()
            print(format_blocks(result.blocks))
        if args.rank_vs_rtol:
            print()
            print(format_rank_vs_rtol(result))
        if args.explain:
            print()
            print(format_explain(result))
        if args.spectrum:
            print(f"spectra written to {args.spectrum}")
    return 0


_SPECTRUM_DESCRIPTION = (
    "Spectra beyond the rank, for H_L, H_o and H_F of one configuration (every option of `hessian-rank run`): "
    "the --top K eigenvalues of largest magnitude (dense: exact; matrix-free: Ritz values of the certified sketch, "
    "each within its bound 2δ of an eigenvalue), the trace (exact when dense or from the Gram matrix, otherwise a "
    "stochastic estimate with its standard error), the eigenvalue density (a smoothed histogram of the exact "
    "spectrum, or stochastic Lanczos quadrature), the number of outliers (log10|λ| more than 3 robust standard "
    "deviations above the median over the non-zero spectrum) and the condition number over the non-zero spectrum. "
    "With --blocks, each diagonal block (layer or parameter array) gets its top eigenvalues, rank at the whole "
    "matrix's tolerance, trace, outliers and density (as the whole matrix's, on the block; all at 0 for a block of "
    "rank 0), and a figure of the blocks' densities; --model FILE.py:build and --arch cnn work as for "
    "`hessian-rank run`. The result and the density figures land in the result store under <out>/store/spectra/…"
)


def add_spectrum_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``hessian-rank spectrum``: every ``run`` option plus what to compute."""
    add_run_options(parser)
    d = SpectrumOptions()
    g = parser.add_argument_group("spectrum")
    g.add_argument("--top", type=int, default=d.top, metavar="K",
                   help=f"the K eigenvalues of largest magnitude of each matrix (default {d.top})")
    g.add_argument("--trace", action=argparse.BooleanOptionalAction, default=d.trace,
                   help="the trace of each matrix (default on)")
    g.add_argument("--density", action=argparse.BooleanOptionalAction, default=d.density,
                   help="the eigenvalue density of each matrix, and its figure (default on)")
    g.add_argument("--eigenvectors", metavar="FILE.npz",
                   help="write the eigenvectors of the --top eigenvalues (arrays H_L_values, H_L_vectors, …)")
    g.add_argument("--trace-samples", "--trace_samples", dest="trace_samples", type=int, default=d.trace_samples,
                   help=f"probes of a stochastic trace estimate (default {d.trace_samples})")
    g.add_argument("--probes", type=int, default=d.probes,
                   help=f"random probes of stochastic Lanczos quadrature (default {d.probes})")
    g.add_argument("--lanczos-steps", "--lanczos_steps", dest="lanczos_steps", type=int, default=d.lanczos_steps,
                   help=f"Lanczos steps per probe (default {d.lanczos_steps})")
    g.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    g.add_argument("--out", default="results", help="root of the result store (default results)")
    parser.set_defaults(handler=_cmd_spectrum)


def _cmd_spectrum(args) -> int:
    from ..plotting import plot_block_density, plot_density
    from ..store import spectra_table, store_spectra

    cfg = config_from_args(args)
    options = SpectrumOptions(top=args.top, trace=args.trace, density=args.density,
                              eigenvectors=bool(args.eigenvectors), trace_samples=args.trace_samples,
                              probes=args.probes, lanczos_steps=args.lanczos_steps).validate()
    if args.eigenvectors:
        if not str(args.eigenvectors).endswith(".npz"):
            raise ConfigError.invalid("eigenvectors", args.eigenvectors, "give a file name ending in .npz")
        check_writable(args.eigenvectors, param="eigenvectors")
    _check_arch(args)
    check_writable(Path(args.out) / "store" / "probe", param="out")
    if args.model or args.arch != "mlp":
        data = load_dataset(cfg)
        f, params, label, arch = _any_model(args, cfg, data)
        with _model_errors(args):
            result = function_spectrum(f, params, data.X, data.Y, loss=cfg.loss, method=cfg.method,
                                       blocks=args.blocks, rtol=cfg.rtol, atol=cfg.atol,
                                       batch_size=cfg.effective_batch_size(data.n), seed=cfg.seed, options=options,
                                       config=cfg.replace(n=data.n, dim=data.d), label=label)
    else:
        result, arch = hessian_spectrum_mlp(cfg, blocks=args.blocks, **options.__dict__), ""
    table = spectra_table(result.config, n=result.n, d=result.d, options=dict(options.__dict__), out=args.out,
                          model=result.model, arch=arch)
    with table.lock():
        store_spectra(table, result)
    paths = [table.json_path, table.csv_path]
    if options.density:
        paths += plot_density(table.json_path)
        if result.blocks:
            paths += plot_block_density(table.json_path)
    if args.eigenvectors:
        with atomic_output(args.eigenvectors, "wb") as fh:
            np.savez(fh, **{f"{k}_{part}": getattr(m, attr) for k, m in result.matrices.items()
                            for part, attr in (("values", "top"), ("vectors", "vectors"))})
        paths.append(Path(args.eigenvectors))
    if args.json:
        print(json.dumps({**result.to_dict(), "files": [str(p) for p in paths]}, allow_nan=False))
    else:
        print(format_spectrum(result))
        if result.blocks:
            print()
            print(format_block_spectra(result.blocks))
        print()
        for path in paths:
            print(f"written: {path}")
    return 0


# --------------------------------------------------------------------------- #
# Any model in `hessian-rank spectrum`: `--model FILE.py:build`, `--arch cnn`.

def _any_model(args, cfg: RunConfig, data):
    """``(f, params, label, folder)`` of ``--model FILE.py:build`` or ``--arch cnn`` for ``data``:
    the label describes the network, the folder names it in the result store."""
    _check_arch(args)
    if args.model:
        f, params = load_user_model(args.model, data.d, data.K, cfg.seed)
        return (f, params, f"{args.model} (d = {data.d}, K = {data.K}, seed {cfg.seed})",
                "model_" + _slug(Path(args.model).name))
    f, params = build_cnn(data.d, data.K, args.conv, stride=args.stride, padding=args.padding, pool=args.pool,
                          activation=cfg.activation, bias=cfg.bias, seed=cfg.seed)
    side = math.isqrt(data.d)
    label = (f"cnn {args.conv} on {side}×{side} images, stride {args.stride}, {args.padding}, pool "
             f"{args.pool}, {cfg.activation}, {'bias' if cfg.bias else 'no bias'}, seed {cfg.seed}")
    return f, params, label, f"cnn_{_slug(args.conv)}_s{args.stride}_{_slug(args.padding)}_{_slug(args.pool)}"


def _check_arch(args) -> None:
    if args.arch not in ("mlp", "cnn"):
        raise ConfigError.invalid("arch", args.arch, "not one of mlp, cnn")
    if args.model and args.arch != "mlp":
        raise ConfigError("--model with --arch cnn: give one of them")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-.") or "x"


@contextmanager
def _model_errors(args):
    """A fault of the user's model (parameter ``f`` or ``params``) names ``--model``, the flag that chose it."""
    try:
        yield
    except ConfigError as err:
        if err.param in ("f", "params") and args.model:
            raise ConfigError.invalid("model", args.model, f"{err}") from None
        raise


# Sweeps and plots: `hessian-rank sweep samplesize|width|depth`, `hessian-rank plot`,
# and the paper's root scripts (rank_vs_*.py, plotting.py) through script_main.

_SWEEP_HELP = {
    "samplesize": "rank against sample size n = bs, 2bs, …, n-max, H accumulated batch by batch",
    "width": "rank against width: two hidden layers of each width, fixed n",
    "depth": "rank against depth: 1, 2, … hidden layers of --width, fixed n",
    "channels": "rank against channels: a CNN (--arch cnn) with every conv layer of each number of channels, "
                "fixed n",
}
_PLOT_DESCRIPTION = (
    "Draw a stored sweep (--task) as PNG and PDF beside its CSV, or with --spectrum the sorted |eigenvalues| "
    "of one run. For a sweep, the run options select which stored sweep to draw: an option not given matches "
    "any value, and if several sweeps match the choices are listed. With --spectrum they define the run "
    "(defaults as in `hessian-rank run`)."
)


def _set_help(parser, dest: str, text: str) -> None:
    for action in parser._actions:
        if action.dest == dest:
            action.help = text


def run_option_defaults() -> dict:
    """The options of ``hessian-rank run`` with their defaults, ``{dest: default}``."""
    probe = _Parser(add_help=False)
    add_run_options(probe)
    return {k: v for k, v in vars(probe.parse_args([])).items() if k in RUN_OPTIONS}


def add_sweep_options(parser: argparse.ArgumentParser, task: str) -> None:
    """Options of ``hessian-rank sweep <task>``: every ``run`` option, with the paper's defaults, plus the range."""
    add_run_options(parser, defaults=SWEEP_DEFAULTS[task])
    g = parser.add_argument_group(f"{task} sweep")
    if task == "samplesize":
        _set_help(parser, "n", "not used: the sweep sets n = bs, 2bs, …; give the largest with --n-max")
        g.add_argument("--n-max", "--n_max", dest="n_max", type=int, default=DEFAULT_N_MAX,
                       help=f"largest sample size; the points are n = bs, 2bs, …, n-max (default {DEFAULT_N_MAX})")
    else:
        if task != "channels":
            parser.set_defaults(units=None)
            _set_help(parser, "units", "not used: the sweep sets the hidden widths")
        _set_help(parser, "n", f"number of samples (default {SWEEP_DEFAULTS[task].n})")
    _set_help(parser, "dim", "input dimension d; images are resized to √dim × √dim (default "
                             f"{SWEEP_DEFAULTS[task].dim})")
    if task == "width":
        g.add_argument("--widths", default=DEFAULT_WIDTHS,
                       help=f"widths: start:stop:step (stop included) or a list 4,8,16 (default {DEFAULT_WIDTHS})")
    if task == "depth":
        g.add_argument("--depths", default=DEFAULT_DEPTHS,
                       help=f"numbers of hidden layers: start:stop:step or a list (default {DEFAULT_DEPTHS})")
        g.add_argument("--width", type=int, default=DEFAULT_DEPTH_WIDTH,
                       help=f"width of every hidden layer (default {DEFAULT_DEPTH_WIDTH})")
    if task == "channels":
        _set_help(parser, "conv", f"the kernel of each conv layer as channels:kernel; the channels are swept "
                                  f"(default {DEFAULT_CONV})")
        g.add_argument("--channels", default=DEFAULT_CHANNELS,
                       help=f"channels of every conv layer: start:stop:step or a list (default {DEFAULT_CHANNELS})")
    g.add_argument("--out", default="results",
                   help="root of the result store: rows land in <out>/store/<task>/<loss>/<dataset>/… (default "
                        "results)")
    parser.set_defaults(handler=_cmd_sweep, sweep_task=task)


def _cmd_sweep(args) -> int:
    from ..sweeps import format_summary, make_sweep, run_sweep

    task = args.sweep_task
    fields = dict(vars(args))
    if task == "samplesize":
        if args.n is not None:
            raise ConfigError.invalid("n", args.n, "the sample-size sweep sets n itself (n = bs, 2bs, …); "
                                      "give the largest with --n-max")
    elif task != "channels":
        if args.units is not None:
            other = "--widths" if task == "width" else "--width and --depths"
            raise ConfigError.invalid("units", args.units, f"the {task} sweep sets the hidden widths itself; "
                                                           f"use {other}")
        fields["units"] = "1"  # placeholder: every point sets its own widths
    base = config_from_args(argparse.Namespace(**fields))
    sweep = make_sweep(task, base, n_max=getattr(args, "n_max", None), widths=getattr(args, "widths", None),
                       depths=getattr(args, "depths", None), width=getattr(args, "width", None),
                       channels=getattr(args, "channels", None))
    outcome = run_sweep(sweep, out=args.out, blocks=args.blocks,
                        progress=lambda total: Progress(total, desc=f"{task} sweep"))
    print(format_summary(outcome))
    return 0


_TRAIN_DESCRIPTION = (
    "Train the network (optax sgd, momentum or adam on the mean loss of a batch of the same n samples whose "
    "Hessians are measured) and store, at each checkpoint step, the training loss, the gradient norm, the ranks "
    "of H_L, H_o, H_F with tolerance and gap, the predictions and their kinds, and the largest |eigenvalue| of "
    "each. Rows land in <out>/store/training/<loss>/<dataset>/<d>x…x<K>/ with the parameters of each checkpoint "
    "(npz, one array per leaf); the same command again resumes from the last stored checkpoint."
)


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``hessian-rank train``: every ``run`` option plus the training."""
    add_run_options(parser)
    g = parser.add_argument_group("training")
    g.add_argument("--optimizer", default="sgd", help=f"one of {', '.join(OPTIMIZERS)} (default sgd)")
    g.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    g.add_argument("--steps", type=int, default=100, help="number of training steps (default 100)")
    g.add_argument("--train-batch", "--train_batch", dest="train_batch", type=int, default=None,
                   help="samples per step, reshuffled every epoch with --seed (default: all n, full batch)")
    g.add_argument("--checkpoints", default=None,
                   help="steps at which to measure, e.g. 0,10,100 (default: 0 and about 20 log-spaced steps up "
                        "to --steps)")
    g.add_argument("--out", default="results", help="root of the result store (default results)")
    parser.set_defaults(handler=_cmd_train)


def _cmd_train(args) -> int:
    from ..training import TrainConfig, format_training, parse_checkpoints, run_training

    cfg = config_from_args(args)
    tc = TrainConfig(optimizer=args.optimizer, lr=args.lr, steps=args.steps, train_batch=args.train_batch)
    tc.validate()
    if args.checkpoints is not None:
        tc = TrainConfig(optimizer=tc.optimizer, lr=tc.lr, steps=tc.steps, train_batch=tc.train_batch,
                         checkpoints=parse_checkpoints(args.checkpoints, steps=tc.steps))
    outcome = run_training(cfg, tc, out=args.out, blocks=args.blocks,
                           progress=lambda total: Progress(total, desc="training"))
    print(format_training(outcome))
    return 0


def _yes_no(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError.invalid("normalize", text, "give 1 or 0 (or true/false)")


def add_plot_options(parser: argparse.ArgumentParser, *, paper: bool = False) -> None:
    """Options of ``hessian-rank plot`` (and of the paper's ``plotting.py`` when ``paper``)."""
    add_run_options(parser)
    parser.set_defaults(**{dest: None for dest in run_option_defaults()})  # not given = any value
    g = parser.add_argument_group("plot")
    g.add_argument("--task", default="depth" if paper else None,
                   help="samplesize, width, depth or training" + (" (default depth)" if paper else ""))
    g.add_argument("--optimizer", default=None, help="training: only runs of this optimizer")
    g.add_argument("--lr", type=float, default=None, help="training: only runs of this learning rate")
    g.add_argument("--train-batch", "--train_batch", dest="train_batch", type=int, default=None,
                   help="training: only runs of this training batch")
    g.add_argument("--width", type=int, default=None, help="depth sweep: the width of the hidden layers")
    g.add_argument("--no-bias", dest="bias", action="store_const", const=False, help="only sweeps without biases")
    g.add_argument("--normalize", nargs="?", const="1", default=None, metavar="1|0",
                   help="plot rank / #params (default: on for width and depth, off for samplesize)")
    g.add_argument("--no-normalize", dest="normalize", action="store_const", const=False, help="plot the rank itself")
    g.add_argument("--spectrum", action="store_true",
                   help="draw the sorted |eigenvalues| of H_L, H_o, H_F of one run, with tolerance and cut")
    g.add_argument("--grid", metavar="GRID.toml", help="draw the stored rows of a grid: measured against predicted")
    g.add_argument("--facet", help="--grid: the grid option whose values make the rows of panels")
    g.add_argument("--out", default="results", help="root of the result store (default results)")
    parser.set_defaults(handler=_cmd_plot)


def _cmd_plot(args) -> int:
    from ..grid import load_grid
    from ..plotting import plot_grid, plot_sweep, plot_training

    if args.spectrum:
        paths = _plot_spectrum(args)
    elif args.grid:
        paths = plot_grid(load_grid(args.grid), out=args.out, facet=args.facet)
    elif args.task == "training":
        paths = plot_training(_find_sweep(args))
    else:
        normalize = args.normalize if args.normalize in (None, False) else _yes_no(args.normalize)
        paths = plot_sweep(_find_sweep(args), normalize=normalize)
    for path in paths:
        print(path)
    return 0


def _find_sweep(args):
    """The JSON of the one stored sweep that the given options select."""
    from ..store import IDENTITY_EXCLUDED, find_results

    task = args.task
    if task not in (*TASKS, "training"):
        raise ConfigError.invalid("task", task, f"not one of {', '.join(TASKS)}, training (or give --spectrum)")
    run_options = run_option_defaults()
    given = {k: v for k, v in vars(args).items() if k in run_options and k not in IDENTITY_EXCLUDED and v is not None}
    if "units" in given:
        if task != "samplesize":
            raise ConfigError.invalid("units", given['units'], f"the {task} sweep varies the widths; leave --units out")
        given["units"] = list(parse_units(given["units"]))
    if args.width is not None and task != "depth":
        raise ConfigError.invalid("width", args.width, "only the depth sweep has one hidden width; leave it out")
    if args.width is not None:
        given["width"] = args.width
    training = {k: getattr(args, k, None) for k in ("optimizer", "lr", "train_batch")}
    training = {k: v for k, v in training.items() if v is not None}
    if training and task != "training":
        raise ConfigError.invalid(next(iter(training)), next(iter(training.values())),
                                  "only a training run has this; leave it out")

    def match(meta):
        if meta.get("task") != task:
            return False
        ident = meta["identity"]
        if any(ident.get("training", {}).get(k) != v for k, v in training.items()):
            return False
        return all(ident[k] == v for k, v in given.items() if k in ident)

    root = Path(args.out) / "store" / task
    kind = "training run" if task == "training" else f"{task} sweep"
    found = find_results(root, match)
    wanted = " ".join(_flag_text(k, v) for k, v in {**given, **training}.items()) or "(no options)"
    if not found:
        others = len(find_results(root, lambda meta: meta.get("task") == task))
        raise ConfigError.invalid("task", task, quoted=False, detail=f"no stored {kind} under "
                                                                     f"{str(root)!r} matches {wanted} "
            f"({others} other {kind}(s) stored there); run it first with the same options"
        )
    if len(found) > 1:
        # a training run's own settings (optimizer, lr, train_batch) count as options too
        idents = [{**{k: v for k, v in meta["identity"].items() if k != "training"},
                   **meta["identity"].get("training", {})} for _, meta in found]
        differ = sorted(k for k in set().union(*idents) if len({json.dumps(i.get(k)) for i in idents}) > 1)
        choices = " | ".join(
            " ".join(_flag_text(k, ident.get(k)) for k in differ) + f" ({path.with_suffix('.csv')})"
            for (path, _), ident in zip(found, idents))
        raise ConfigError.invalid("task", task, quoted=False, detail=f"{len(found)} stored {kind}s match "
                                                                     f"{wanted}; "
                          f"add options to choose one: {choices}")
    return found[0][0]


def _flag_text(key, value) -> str:
    key = key.replace("train_batch", "train-batch")
    if key == "bias":
        return "--bias" if value else "--no-bias"
    if isinstance(value, list):
        value = ",".join(map(str, value))
    return f"--{key} {value}"


def _plot_spectrum(args):
    from ..plotting import plot_spectrum
    from ..store import config_identity, spectrum_table, store_spectrum

    defaults = run_option_defaults()
    filled = {k: (defaults[k] if getattr(args, k, None) is None else getattr(args, k)) for k in defaults}
    cfg = config_from_args(argparse.Namespace(**{**vars(args), **filled}))
    if cfg.network != "mlp":
        raise ConfigError.invalid("spectrum", True, f"{cfg.network}: the stored spectrum plot is the MLP's; use "
                                                    "`hessian-rank run --spectrum FILE.csv`", quoted=False)
    data = load_dataset(cfg)
    table = spectrum_table(cfg, n=data.n, d=data.d, out=args.out)
    check_writable(table.csv_path, param="out")
    with table.lock():
        meta = table.read_meta()
        if meta is not None:
            table.claim(config_identity(cfg, task="spectrum"))
        if meta is None or not table.exists():
            store_spectrum(table, run(cfg))
    return plot_spectrum(table.json_path)


_GRID_DESCRIPTION = (
    "Run the Cartesian product of the option lists in GRID.toml's [grid] table (any option of "
    "`hessian-rank run`, e.g. loss = [\"mse\", \"cross\"], units = [\"10,10\", \"5\"]) on Dask: a local cluster "
    "of worker processes, or an existing cluster given by --scheduler. Rows land in "
    "<out>/store/grid/<GRID>/; a rerun computes only the points without a finished row."
)


def add_grid_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``hessian-rank grid``."""
    parser.add_argument("grid", metavar="GRID.toml", help="grid file with a [grid] table")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes of the local cluster (default: one per core)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                        help="use the existing Dask cluster of this scheduler instead of a local one")
    parser.add_argument("--memory-limit", "--memory_limit", dest="memory_limit", default=None,
                        help="memory limit per local worker, e.g. 4GB (default: the machine's memory shared out)")
    parser.add_argument("--out", default="results", help="root of the result store (default results)")
    add_cache_option(parser)
    parser.set_defaults(handler=_cmd_grid)


def _cmd_grid(args) -> int:
    from ..grid import format_grid_summary, load_grid, run_grid

    if args.workers is not None and args.workers < 1:
        raise ConfigError.invalid("workers", args.workers, "need at least 1 worker process")
    if args.workers is not None and args.scheduler:
        raise ConfigError("--workers with --scheduler: the existing cluster has its own workers; give one of them")
    if args.scheduler and "://" not in args.scheduler:
        raise ConfigError.invalid("scheduler", args.scheduler, "give the scheduler address, e.g. tcp://10.0.0.5:8786")
    if args.memory_limit is not None:
        if args.scheduler:
            raise ConfigError("--memory-limit with --scheduler: the existing cluster's workers have their own limits")
        try:
            from dask.utils import parse_bytes  # dask is loaded only for grids

            if parse_bytes(args.memory_limit) <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError.invalid("memory_limit", args.memory_limit, "give a size such as 4GB or 500MiB") from None
    grid = load_grid(args.grid)
    cache = default_cache_dir(args.compile_cache)
    outcome = run_grid(grid, out=args.out, workers=args.workers, scheduler=args.scheduler,
                       memory_limit=args.memory_limit, compile_cache=None if cache is None else str(cache),
                       progress=lambda total: Progress(total, desc=f"grid {grid.name}"))
    print(format_grid_summary(outcome))
    return 0


def script_main(prog: str, command, argv=None) -> int:
    """Run ``command`` (``("sweep", task)`` or ``("plot",)``) as the standalone script ``prog``:
    the paper's root scripts. Errors as in :func:`main`, prefixed with ``prog``."""
    parser = _Parser(prog=prog, description=_SWEEP_HELP.get(command[-1], _PLOT_DESCRIPTION))
    if command[0] == "sweep":
        add_sweep_options(parser, command[1])
    else:
        add_plot_options(parser, paper=True)
    return _guarded(parser, argv, lambda args: prog)


def main(argv=None) -> int:
    """Run ``hessian-rank`` with ``argv``; return the exit status (2: bad input, one line on stderr)."""
    return _guarded(build_parser(), argv, lambda args: f"hessian-rank {getattr(args, 'command', '') or ''}".strip())


#: set once a ``run`` command has started: what it writes (stdout, ``--spectrum``) is complete when it returns
_RAN = []


def entry() -> None:
    """The ``hessian-rank`` console script and ``python3 -m hessrank.cli``: :func:`main`, then exit.

    After ``run`` the process leaves without the interpreter's teardown, once stdout and stderr
    are flushed: JAX's exit handlers clear its backends and caches and the modules are
    collected, 0.13–0.16 s of a 2.6 s run at p = 4560, paid again by every point of a scripted
    sweep. Nothing of ``run`` is left to finish by then (results printed, ``--spectrum``
    written atomically, compiled programs cached when compiled). Every other command (sweeps,
    Dask grids, plots) exits normally."""
    code = main()
    if _RAN:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed or broken stream: the normal exit reports it
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


#: exit status when stdout was closed by the reader (``… | head -1``), as a shell reports SIGPIPE
EXIT_BROKEN_PIPE = 141


def _guarded(parser, argv, name) -> int:
    """Parse ``argv`` and run its handler; every failure ends in one line on stderr."""
    args = None
    try:
        args = parser.parse_args(argv)
        cache = default_cache_dir(getattr(args, "compile_cache", None))
        if cache is not None:
            enable_compile_cache(cache)
        return args.handler(args)
    except HessrankError as err:
        return _fail(name(args), error_line(err))
    except BrokenPipeError:
        _detach_stdout()
        return EXIT_BROKEN_PIPE
    except MemoryError as err:  # a size that passed every check but still did not fit
        return _fail(name(args), f"out of memory ({err}); use a smaller problem (n, dim, units)")
    except OSError as err:  # a file system failure no check foresaw (disk full, I/O error)
        where = f" {err.filename!r}" if err.filename else ""
        return _fail(name(args), f"cannot access{where}: {err.strerror or err}")
    except KeyboardInterrupt:
        print(f"{name(args)}: interrupted", file=sys.stderr)
        return 130


def _fail(prog: str, line: str) -> int:
    try:
        print(f"{prog}: error: {line}", file=sys.stderr)
    except OSError:
        pass
    return EXIT_USAGE


def _detach_stdout() -> None:
    """After a reader closed stdout: point it at /dev/null so that the final flush at exit is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout replaced by an object without a descriptor
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
