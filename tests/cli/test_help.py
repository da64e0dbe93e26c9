"""Every ``--help`` tells the truth: the defaults it shows are the ones the code uses, the
choices it lists are every choice the code accepts, and it answers without loading JAX."""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import hessrank
from hessrank import config
from hessrank._version import __version__
from hessrank.cli import build_parser, main
from hessrank.cli.plot import PLOT_TASKS
from hessrank.cli.sweep import TASK_HELP
from hessrank.data import FILESETS, canonical_name, expected_shape, resize_images
from hessrank.measure import SpectrumOptions
from hessrank.models import get_loss
from hessrank.plotting.figures import default_normalize
from hessrank.training import TrainConfig, default_checkpoints

SRC = Path(hessrank.__file__).resolve().parents[1]
ROOT = SRC.parent


def _subparsers(parser):
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return actions[0].choices if actions else {}


def _commands():
    """``{"run": parser, …, "sweep width": parser, …}``: every command's own parser."""
    out = {}
    for name, sub in _subparsers(build_parser()).items():
        tasks = _subparsers(sub)
        out.update({f"{name} {t}": p for t, p in tasks.items()} if tasks else {name: sub})
    return out


COMMANDS = _commands()


def _action(parser, flag):
    return next(a for a in parser._actions if flag in a.option_strings)


def _help(parser, flag) -> str:
    return " ".join(_action(parser, flag).help.split())


def _listed(text: str) -> list[str]:
    """The names after "one of" in a help text: ``one of a, b, c (default a)`` -> [a, b, c]."""
    m = re.search(r"one of (.*?)(?: \(|, or |:|$)", text)
    assert m, text
    return [x.strip() for x in m.group(1).replace(" or ", ", ").split(",")]


def _refuse(name):
    raise hessrank.ConfigError.invalid("dataset", name, "not a data set")


def test_every_command_is_reachable_and_sweeps_are_the_tasks():
    assert set(COMMANDS) == {"run", "spectrum", "train", "datasets", "plot", "grid",
                             *(f"sweep {t}" for t in config.TASKS)}
    assert tuple(TASK_HELP) == config.TASKS
    line = next(x for x in build_parser().format_help().splitlines() if x.strip().startswith("sweep "))
    for task in config.TASKS:   # the command's one-line help names every sweep
        assert {"samplesize": "sample size"}.get(task, task) in line


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_shown_default_is_the_parsed_default(name):
    # "(default X)" in a help text is what the option holds when it is not given
    parser = COMMANDS[name]
    for action in parser._actions:
        text = " ".join((action.help or "").split())
        m = re.search(r"\(default ([^\s;,)]+)\)", text)
        if not m or action.default is None:
            continue
        shown, value = m.group(1), action.default
        if isinstance(value, bool):
            assert shown == ("on" if value else "off"), (name, action.option_strings, text)
        elif isinstance(value, float):
            assert float(shown) == value, (name, action.option_strings, text)
        else:
            assert shown == str(value), (name, action.option_strings, text)


def test_run_defaults_are_the_library_defaults():
    args = COMMANDS["run"].parse_args([])
    assert config.config_from_options({k: v for k, v in vars(args).items() if k in config.RUN_OPTIONS}) == \
        config.RunConfig().validate()
    # the defaults that the data set and the batching decide, as the help words them
    run = COMMANDS["run"]
    n, dim = expected_shape(config.RunConfig()).values()
    assert f"(default {n};" in _help(run, "--n") and f"(default {dim};" in _help(run, "--dim")
    cap = int(re.search(r"min\(n, (\d+)\)", _help(run, "--batch_size")).group(1))
    assert config.RunConfig().effective_batch_size(10**6) == cap
    assert config.RunConfig().effective_batch_size(7) == 7


@pytest.mark.parametrize("task", config.TASKS)
def test_sweep_help_shows_the_sweep_defaults_not_the_run_defaults(task):
    parser, d = COMMANDS[f"sweep {task}"], config.SWEEP_DEFAULTS[task]
    args = parser.parse_args([])
    assert args.batch_size == d.batch_size and f"(default {d.batch_size})" in _help(parser, "--batch_size")
    assert args.dataset == d.dataset and args.dim == d.dim and args.K == d.K and args.arch == d.arch
    if task != "samplesize":
        assert args.n == d.n and f"(default {d.n})" in _help(parser, "--n")


def test_spectrum_and_train_defaults_are_those_of_the_library():
    args = COMMANDS["spectrum"].parse_args([])
    lib = SpectrumOptions()
    for field in ("top", "trace", "density", "trace_samples", "probes", "lanczos_steps"):
        assert getattr(args, field) == getattr(lib, field), field
    assert not args.eigenvectors and not lib.eigenvectors
    args = COMMANDS["train"].parse_args([])
    lib = TrainConfig()
    for field in ("optimizer", "lr", "steps", "train_batch"):
        assert getattr(args, field) == getattr(lib, field), field
    count = int(re.search(r"about (\d+) log-spaced", _help(COMMANDS["train"], "--checkpoints")).group(1))
    assert abs(len(default_checkpoints(10**6)) - 2 - count) <= 1    # 0, ~count log-spaced steps, the last


@pytest.mark.parametrize("flag, accepts", [
    ("--activation", lambda a: config.RunConfig(activation=a).validate()),
    ("--init", lambda i: config.RunConfig(init=i).validate()),
    ("--loss", get_loss),
    ("--method", lambda m: config.RunConfig(method=m).validate()),
    ("--resize", lambda r: resize_images(np.zeros((1, 4, 4)), 2, r)),
    ("--arch", lambda a: config.RunConfig(arch=a).validate()),
    ("--padding", lambda p: config.RunConfig(arch="cnn", padding=p).validate()),
    ("--pool", lambda p: config.RunConfig(arch="cnn", pool=p).validate()),
    ("--dataset", lambda d: canonical_name(d) or _refuse(d)),
])
def test_listed_choices_are_every_choice_the_code_accepts(flag, accepts):
    listed = _listed(_help(COMMANDS["run"], flag))
    registry = {"--activation": config.ACTIVATIONS, "--init": config.INITS, "--loss": config.LOSSES,
                "--method": config.METHODS, "--resize": config.RESIZES, "--arch": config.ARCHS,
                "--padding": config.PADDINGS, "--pool": config.POOLS, "--dataset": config.DATASETS}[flag]
    assert listed == list(registry)
    for choice in listed:
        accepts(choice)
    with pytest.raises(hessrank.HessrankError):
        accepts("no-such-choice")


def test_other_listed_choices():
    from hessrank.data import _LOADERS

    assert tuple(_LOADERS) == config.DATASETS
    assert tuple(FILESETS) == config.DOWNLOADABLE
    assert _listed(_help(COMMANDS["train"], "--optimizer")) == list(config.OPTIMIZERS)
    for opt in config.OPTIMIZERS:
        TrainConfig(optimizer=opt).validate()
    plot = COMMANDS["plot"]
    assert _listed(_help(plot, "--task")) == list(PLOT_TASKS) == [*config.TASKS, "training"]
    shown = re.search(r"on for (.*?), off", _help(plot, "--normalize")).group(1).split(" and ")
    assert [t for t in config.TASKS if default_normalize(t)] == shown
    assert _action(COMMANDS["run"], "--blocks").choices == config.BLOCK_KINDS
    for name in config.DOWNLOADABLE:
        assert name in _help(COMMANDS["datasets"], "--download") and name in _help(COMMANDS["run"], "--download")


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"hessian-rank {__version__}" == f"hessian-rank {hessrank.__version__}"
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hessrank._version.__version__"}


def test_old_top_spelling_still_works_with_one_line_on_stderr(capsys):
    parser = COMMANDS["spectrum"]
    assert parser.parse_args(["--top", "7"]).top == 7 == parser.parse_args(["--top-eigenvalues", "7"]).top
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--top is deprecated" in err and "--top-eigenvalues" in err
    assert "--top " not in parser.format_help()   # not offered any more
    assert main(["spectrum", "--top-eigenvalues", "0"]) == 2
    assert "--top-eigenvalues 0: give an integer >= 1" in capsys.readouterr().err


_LIGHT = """
import sys
import hessrank.cli
for argv in ([], ["run"], ["spectrum"], ["sweep", "depth"], ["plot"], ["grid"], ["train"], ["datasets"]):
    try:
        hessrank.cli.main([*argv, "--help"])
    except SystemExit:
        pass
print(__import__("json").dumps(sorted(sys.modules)))
"""


def test_building_the_parser_and_help_import_no_engine():
    # every --help answers without JAX, NumPy or the engine: only a command that runs imports them
    done = subprocess.run([sys.executable, "-c", _LIGHT], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    heavy = [m for m in loaded if m.split(".")[0] in ("jax", "numpy", "scipy", "matplotlib", "pandas", "dask")]
    assert heavy == []
    ours = {m for m in loaded if m.startswith("hessrank.") and m != "hessrank.cli"}
    assert ours <= {"hessrank._version", "hessrank.config", "hessrank.errors", "hessrank.compile_cache"} | \
        {m for m in ours if m.startswith("hessrank.cli.") and m != "hessrank.cli.format"}, ours
