"""Option groups shared by the commands, and library errors translated into flags.

The options of ``hessian-rank run`` (data, network, loss and computation, rank tolerance)
are also those of ``spectrum``, ``train``, ``sweep`` and ``plot``: they are declared once,
here. The library's errors name parameters (``activation='x'``); :func:`error_line`
names the flag that sets them instead (``--activation 'x'``).

Nothing here imports JAX or the engine: the defaults shown by ``--help`` come from
:mod:`hessrank.config`, which is plain Python.
"""

from __future__ import annotations

import argparse

from ..config import (
    ACTIVATIONS,
    ARCHS,
    BLOCK_KINDS,
    DEFAULT_CONV,
    INITS,
    LOSSES,
    METHODS,
    PADDINGS,
    POOLS,
    RESIZES,
    RUN_OPTIONS,
    RunConfig,
    config_from_options,
)
from ..errors import ConfigError, HessrankError

#: parameters whose flag is not ``--<parameter>``
_FLAGS = {"label_noise": "--label-noise", "n_max": "--n-max", "data_dir": "--data-dir",
          "memory_limit": "--memory-limit", "rank_vs_rtol": "--rank-vs-rtol", "scheme": "--init",
          "widths": "--widths", "options": "option", "trace_samples": "--trace-samples",
          "lanczos_steps": "--lanczos-steps", "train_batch": "--train-batch",
          # library parameters with no flag of their own: the flag that chose them
          "operator": "--method matrix-free", "f": "--model"}


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


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message):
        """Raise :class:`ConfigError` with argparse's message (the caller prints it as one line)."""
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


def run_option_defaults() -> dict:
    """The options of ``hessian-rank run`` with their defaults, ``{dest: default}``."""
    probe = Parser(add_help=False)
    add_run_options(probe)
    return {k: v for k, v in vars(probe.parse_args([])).items() if k in RUN_OPTIONS}


def set_help(parser, dest: str, text: str) -> None:
    """Replace the help text of the option stored in ``dest``."""
    for action in parser._actions:
        if action.dest == dest:
            action.help = text
