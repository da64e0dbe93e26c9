"""``hessian-rank plot``: draw a stored sweep, training run or grid, or the spectrum of one run
(also the root script ``plotting.py``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import NORMALIZED_TASKS, TASKS, parse_units
from ..errors import ConfigError
from .options import add_run_options, config_from_args, run_option_defaults

HELP = "draw a stored sweep or training run, the rows of a grid, or --spectrum of one run"
DESCRIPTION = (
    "Draw a stored sweep or training run (--task) as PNG and PDF beside its CSV, the stored rows of a grid "
    "(--grid), or with --spectrum the sorted |eigenvalues| of one run. For a sweep or training run, the run "
    "options select which stored one to draw: an option not given matches any value, and if several match the "
    "choices are listed. With --spectrum they define the run (the defaults shown, as in `hessian-rank run`)."
)
#: what ``--task`` draws: a sweep, or a training run
PLOT_TASKS = (*TASKS, "training")


def add_options(parser: argparse.ArgumentParser, *, paper: bool = False) -> None:
    """Options of ``hessian-rank plot`` (and of the paper's ``plotting.py`` when ``paper``)."""
    add_run_options(parser)
    parser.set_defaults(**{dest: None for dest in run_option_defaults()})  # not given = any value
    g = parser.add_argument_group("plot")
    g.add_argument("--task", default="depth" if paper else None,
                   help=f"one of {', '.join(PLOT_TASKS)}" + (" (default depth)" if paper else ""))
    g.add_argument("--optimizer", default=None, help="training: only runs of this optimizer")
    g.add_argument("--lr", type=float, default=None, help="training: only runs of this learning rate")
    g.add_argument("--train-batch", "--train_batch", dest="train_batch", type=int, default=None,
                   help="training: only runs of this training batch")
    g.add_argument("--width", type=int, default=None, help="depth sweep: the width of the hidden layers")
    g.add_argument("--no-bias", dest="bias", action="store_const", const=False, help="only sweeps without biases")
    g.add_argument("--normalize", nargs="?", const="1", default=None, metavar="1|0",
                   help=f"plot rank / #params (default: on for {' and '.join(NORMALIZED_TASKS)}, off otherwise)")
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


def _yes_no(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError.invalid("normalize", text, "give 1 or 0 (or true/false)")


def _find_sweep(args):
    """The JSON of the one stored sweep that the given options select."""
    from ..store import IDENTITY_EXCLUDED, find_results

    task = args.task
    if task not in PLOT_TASKS:
        raise ConfigError.invalid("task", task, f"not one of {', '.join(PLOT_TASKS)} (or give --spectrum)")
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
    from ..atomicio import check_writable
    from ..data import load_dataset
    from ..measure.run import run
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
