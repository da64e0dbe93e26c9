"""``hessian-rank sweep samplesize|width|depth|channels``: rank H_L, H_o, H_F along one axis,
with the paper's defaults (also the root scripts ``rank_vs_*.py``)."""

from __future__ import annotations

import argparse

from ..config import (
    DEFAULT_CHANNELS,
    DEFAULT_CONV,
    DEFAULT_DEPTH_WIDTH,
    DEFAULT_DEPTHS,
    DEFAULT_N_MAX,
    DEFAULT_WIDTHS,
    SWEEP_DEFAULTS,
)
from ..errors import ConfigError
from .options import (
    Parser,
    add_execution_options,
    add_run_options,
    config_from_args,
    joins_processes,
    native_stdout_to_stderr,
    set_help,
    start_processes_from_args,
)

HELP = "rank H_L, H_o, H_F against sample size, width, depth or channels"

#: the one-line help of each sweep, ``{task: text}``
TASK_HELP = {
    "samplesize": "rank against sample size n = bs, 2bs, …, n-max, H accumulated batch by batch",
    "width": "rank against width: two hidden layers of each width, fixed n",
    "depth": "rank against depth: 1, 2, … hidden layers of --width, fixed n",
    "channels": "rank against channels: a CNN (--arch cnn) with every conv layer of each number of channels, "
                "fixed n",
}


def add_parsers(sub) -> None:
    """``hessian-rank sweep`` and one subcommand per task under the subparsers ``sub``."""
    p_sweep = sub.add_parser("sweep", help=HELP)
    tasks = p_sweep.add_subparsers(dest="task", metavar="TASK", parser_class=Parser)
    tasks.required = True
    for task, text in TASK_HELP.items():
        add_options(tasks.add_parser(task, help=text, description=text), task)


def add_options(parser: argparse.ArgumentParser, task: str) -> None:
    """Options of ``hessian-rank sweep <task>``: every ``run`` option, with the paper's defaults, plus the range."""
    add_run_options(parser, defaults=SWEEP_DEFAULTS[task])
    g = parser.add_argument_group(f"{task} sweep")
    if task == "samplesize":
        set_help(parser, "n", "not used: the sweep sets n = bs, 2bs, …; give the largest with --n-max")
        g.add_argument("--n-max", "--n_max", dest="n_max", type=int, default=DEFAULT_N_MAX,
                       help=f"largest sample size; the points are n = bs, 2bs, …, n-max (default {DEFAULT_N_MAX})")
    else:
        if task != "channels":
            parser.set_defaults(units=None)
            set_help(parser, "units", "not used: the sweep sets the hidden widths")
    if task == "width":
        g.add_argument("--widths", default=DEFAULT_WIDTHS,
                       help=f"widths: start:stop:step (stop included) or a list 4,8,16 (default {DEFAULT_WIDTHS})")
    if task == "depth":
        g.add_argument("--depths", default=DEFAULT_DEPTHS,
                       help=f"numbers of hidden layers: start:stop:step or a list (default {DEFAULT_DEPTHS})")
        g.add_argument("--width", type=int, default=DEFAULT_DEPTH_WIDTH,
                       help=f"width of every hidden layer (default {DEFAULT_DEPTH_WIDTH})")
    if task == "channels":
        set_help(parser, "conv", f"the kernel of each conv layer as channels:kernel; the channels are swept "
                                 f"(default {DEFAULT_CONV})")
        g.add_argument("--channels", default=DEFAULT_CHANNELS,
                       help=f"channels of every conv layer: start:stop:step or a list (default {DEFAULT_CHANNELS})")
    g.add_argument("--out", default="results",
                   help="root of the result store: rows land in <out>/store/<task>/<loss>/<dataset>/… (default "
                        "results)")
    add_execution_options(parser)
    parser.set_defaults(handler=_cmd_sweep, sweep_task=task)


def _cmd_sweep(args) -> int:
    from ..sweeps import format_summary, make_sweep, run_sweep
    from .progress import Progress

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
    writer = start_processes_from_args(args)
    with native_stdout_to_stderr(joins_processes(args)):
        outcome = run_sweep(sweep, out=args.out, blocks=args.blocks, threads=args.threads, devices=args.devices,
                            progress=(lambda total: Progress(total, desc=f"{task} sweep")) if writer else None)
    if writer:
        print(format_summary(outcome))
    return 0
