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
import contextlib
import os
import sys

from ..config import (
    ACTIVATIONS,
    ARCHS,
    BLOCK_KINDS,
    DATASETS,
    DEFAULT_BATCH_CAP,
    DEFAULT_CONV,
    DEFAULT_DIM,
    DEFAULT_N,
    DOWNLOADABLE,
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
          "lanczos_steps": "--lanczos-steps", "train_batch": "--train-batch", "top": "--top-eigenvalues",
          "num_processes": "--num-processes", "process_id": "--process-id",
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


class Renamed(argparse.Action):
    """The old spelling of an option: stores its value as the new one does, with one line on stderr."""

    def __init__(self, option_strings, dest, *, new: str, **kwargs):
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        """Store ``values`` under the new option's name and say which spelling to use."""
        print(f"{parser.prog}: {option_string} is deprecated and will be removed; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_run_options(parser: argparse.ArgumentParser, *, defaults: RunConfig | None = None) -> None:
    """The options of ``hessian-rank run``; sweeps and grids reuse them."""
    d = defaults or RunConfig()
    g = parser.add_argument_group("data")
    g.add_argument("--dataset", default=d.dataset,
                   help=f"one of {', '.join(DATASETS)}, or a .npz/.csv file of your own (default {d.dataset})")
    g.add_argument("--n", type=int, default=d.n,
                   help="number of samples (default " + (f"{DEFAULT_N}; a .npz/.csv file: all rows)" if d.n is None
                                                         else f"{d.n})"))
    g.add_argument("--dim", type=int, default=d.dim,
                   help="input dimension d; images are resized to √dim × √dim (default "
                        + (f"{DEFAULT_DIM}; a file: its d)" if d.dim is None else f"{d.dim})"))
    g.add_argument("--K", type=int, default=d.K, help=f"number of outputs / classes (default {d.K})")
    g.add_argument("--data-dir", "--data_dir", dest="data_dir", default=d.data_dir,
                   help="where data files live (default: $HESSRANK_DATA, then standard places)")
    g.add_argument("--download", action="store_true", default=d.download,
                   help=f"fetch a missing {'/'.join(DOWNLOADABLE)} from its mirrors (needs internet)")
    g.add_argument("--resize", default=d.resize, help=f"image resizing, one of {', '.join(RESIZES)} (default "
                                                      f"{d.resize})")
    g.add_argument("--label-noise", "--label_noise", dest="label_noise", type=float, default=d.label_noise,
                   metavar="FRACTION", help="give this fraction of the samples a wrong label, drawn with --seed "
                                            f"(default {d.label_noise:g})")
    g = parser.add_argument_group("network")
    g.add_argument("--units", default=",".join(map(str, d.units)),
                   help=f"mlp: hidden widths, comma-separated (default {','.join(map(str, d.units))})")
    g.add_argument("--activation", default=d.activation, help=f"one of {', '.join(ACTIVATIONS)} (default "
                                                              f"{d.activation})")
    g.add_argument("--bias", action="store_true", default=d.bias,
                   help="add biases (default: " + ("biases" if d.bias else "none, as in the paper") + ")")
    g.add_argument("--init", default=d.init, help=f"one of {', '.join(INITS)} (default {d.init})")
    g.add_argument("--seed", type=int, default=d.seed, help=f"seed of data and initialisation (default {d.seed})")
    g.add_argument("--arch", default=d.arch,
                   help=f"one of {', '.join(ARCHS)} (default {d.arch}): cnn is --conv layers on √dim × √dim images, "
                        "then one dense layer to K")
    g.add_argument("--conv", default=d.conv,
                   help=f"cnn: channels:kernel of each conv layer (default {d.conv or DEFAULT_CONV})")
    g.add_argument("--stride", type=int, default=d.stride, help=f"cnn: stride of every conv layer (default "
                                                                 f"{d.stride})")
    g.add_argument("--padding", default=d.padding, help=f"cnn: one of {', '.join(PADDINGS)} (default {d.padding})")
    g.add_argument("--pool", default=d.pool, help=f"cnn: one of {', '.join(POOLS)} (avg: 2×2 average pool after "
                                                  f"each conv layer; global: average over all positions before the "
                                                  f"dense layer; default {d.pool})")
    g.add_argument("--model", metavar="FILE.py:FUNCTION", default=d.model,
                   help="your own network: FUNCTION(d, K, seed) returns (f, params), f(params, X) -> (n, K) "
                        "(--units, --activation, --bias, --init are then not used)")
    g.add_argument("--blocks", choices=BLOCK_KINDS, default=None,
                   help="also rank the diagonal blocks of H_L, H_o, H_F, one per parameter array (leaves) or per "
                        "layer (layers), at the tolerance of the whole matrix")
    g = parser.add_argument_group("loss and computation")
    g.add_argument("--loss", default=d.loss, help=f"one of {', '.join(LOSSES)} (default {d.loss})")
    g.add_argument("--batch_size", "--batch-size", dest="batch_size", type=int, default=d.batch_size,
                   help="samples per batch when accumulating the Hessians (default "
                        + (f"min(n, {DEFAULT_BATCH_CAP}))" if d.batch_size is None else f"{d.batch_size})"))
    g.add_argument("--method", default=d.method,
                   help=f"one of {', '.join(METHODS)}: dense p×p matrices, or Hessian-vector products and a "
                        f"certified randomized sketch (no p×p array); auto: dense when it fits comfortably in "
                        f"memory (default {d.method})")
    g = parser.add_argument_group("rank tolerance")
    g.add_argument("--rtol", type=float, default=d.rtol,
                   help="relative tolerance: tol = rtol * max|eigenvalue| (default: tol = max|eigenvalue| * p * "
                        "eps(float64), NumPy's matrix_rank rule, p the matrix size)")
    g.add_argument("--atol", type=float, default=d.atol,
                   help="absolute tolerance (default none; with --rtol, the larger wins)")
    add_cache_option(parser)


def add_execution_options(parser: argparse.ArgumentParser, *, processes: bool = True) -> None:
    """Where a command computes: BLAS threads, JAX devices, and several processes (``jax.distributed``);
    the options of ``run``, ``spectrum``, the sweeps, ``train`` and ``grid``. ``processes=False``: a command
    that runs as one process, whose process flags are left out of its help (and refused by
    :func:`refuse_processes`)."""
    g = parser.add_argument_group("threads, devices and processes" if processes else "threads and devices")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="BLAS threads for eigenvalues and the sketch, 1 to the machine's logical CPUs (default: "
                        "the cores this process may use, by its CPU affinity and cgroup quota)")
    g.add_argument("--devices", type=int, default=None, metavar="N",
                   help="matrix-free: use the first N JAX devices — the sketch's basis sharded over them and the "
                        "Hessian-vector products split by samples (default: every device; one process on CPUs, "
                        "or a PyTorch --model, keeps everything in host memory)")

    def shown(text: str) -> str:
        return text if processes else argparse.SUPPRESS

    g.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help=shown("run as one of --num-processes processes joined through process 0's HOST:PORT; only "
                              "process 0 prints and writes"))
    g.add_argument("--num-processes", "--num_processes", dest="num_processes", type=int, default=None,
                   metavar="N", help=shown("with --coordinator: how many processes run this command"))
    g.add_argument("--process-id", "--process_id", dest="process_id", type=int, default=None, metavar="I",
                   help=shown("with --coordinator: this process's index, 0 to N-1"))
    g.add_argument("--distributed", action="store_true",
                   help=shown("join the processes of a cluster job that JAX detects by itself (Slurm, Open MPI, "
                              "TPU)"))


#: the flags that join several processes, ``{dest: flag}``
PROCESS_FLAGS = {"coordinator": "--coordinator", "num_processes": "--num-processes", "process_id": "--process-id",
                 "distributed": "--distributed"}


def joins_processes(args: argparse.Namespace) -> bool:
    """Whether the command line asks for several processes (``--coordinator`` or ``--distributed``)."""
    return args.coordinator is not None or bool(args.distributed)


def refuse_processes(args: argparse.Namespace, why: str) -> None:
    """For a command that runs as one process: one line naming the first process flag given, and ``why``."""
    for dest in PROCESS_FLAGS:
        value = getattr(args, dest, None)
        if value is not None and value is not False:
            raise ConfigError.invalid(dest, value, why, quoted=dest == "coordinator")


def check_threads_and_devices(args: argparse.Namespace) -> None:
    """``--threads`` and ``--devices`` checked before any work (one line naming the flag)."""
    from ..measure.threads import resolve_threads

    if args.threads is not None:
        resolve_threads(args.threads)
    if args.devices is not None:
        from ..linalg._mesh import device_mesh

        device_mesh(args.devices)


@contextlib.contextmanager
def native_stdout_to_stderr(active: bool):
    """Within this block, what native libraries write to file descriptor 1 goes to stderr (the
    collectives' own messages of several processes stay out of tables and JSON)."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def start_processes_from_args(args: argparse.Namespace) -> bool:
    """Join the processes of ``--coordinator``/``--distributed`` (before JAX uses a device); whether
    this process prints and writes (process 0, or the only one)."""
    several = args.coordinator is not None or args.num_processes is not None or args.process_id is not None
    if not (several or args.distributed):
        return True
    from ..measure.processes import start_processes

    return start_processes(coordinator=args.coordinator, num_processes=args.num_processes,
                           process_id=args.process_id, detect=args.distributed) == 0


def add_cache_option(parser: argparse.ArgumentParser) -> None:
    """``--compile-cache`` / ``--no-compile-cache``: keep compiled programs between processes, or not."""
    parser.add_argument("--compile-cache", dest="compile_cache", action="store_true", default=None,
                        help="reuse compiled programs across runs, under $HESSRANK_COMPILE_CACHE or "
                             "${XDG_CACHE_HOME:-~/.cache}/hessrank/jax (the default; HESSRANK_COMPILE_CACHE=off "
                             "turns it off)")
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
