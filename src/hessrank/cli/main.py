"""The ``hessian-rank`` command line: the parser of every command, and errors as flags.

Each command's options and body live in its own module (:mod:`.run`, :mod:`.spectrum`,
:mod:`.train`, :mod:`.datasets`, :mod:`.sweep`, :mod:`.plot`, :mod:`.grid`); the options
they share in :mod:`.options`. Building the parser imports no JAX: a command imports the
engine when it runs. Bad input ends with one line on stderr naming the flag, the value
and what is allowed, and exit status 2: the library's errors name parameters
(``activation='x'``), translated here into the flags that set them (``--activation 'x'``).
"""

from __future__ import annotations

import argparse
import os
import sys

from .._version import __version__
from ..compile_cache import default_cache_dir, enable_compile_cache
from ..errors import HessrankError
from . import datasets, grid, plot, run, spectrum, sweep, train
from .options import Parser, error_line
from .streams import survive_any_locale

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``hessian-rank`` and all its commands."""
    parser = Parser(prog="hessian-rank", description="Ranks of neural-network Hessian maps next to theory.")
    parser.add_argument("--version", action="version", version=f"hessian-rank {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name, command in (("run", run), ("spectrum", spectrum), ("train", train), ("datasets", datasets)):
        command.add_options(sub.add_parser(name, help=command.HELP, description=command.DESCRIPTION))
    sweep.add_parsers(sub)
    for name, command in (("plot", plot), ("grid", grid)):
        command.add_options(sub.add_parser(name, help=command.HELP, description=command.DESCRIPTION))
    return parser


def script_main(prog: str, command, argv=None) -> int:
    """Run ``command`` (``("sweep", task)`` or ``("plot",)``) as the standalone script ``prog``:
    the paper's root scripts. Errors as in :func:`main`, prefixed with ``prog``."""
    parser = Parser(prog=prog, description=sweep.TASK_HELP.get(command[-1], plot.DESCRIPTION))
    if command[0] == "sweep":
        sweep.add_options(parser, command[1])
    else:
        plot.add_options(parser, paper=True)
    return _guarded(parser, argv, lambda args: prog)


def main(argv=None) -> int:
    """Run ``hessian-rank`` with ``argv``; return the exit status (2: bad input, one line on stderr)."""
    return _guarded(build_parser(), argv, lambda args: f"hessian-rank {getattr(args, 'command', '') or ''}".strip())


def entry() -> None:
    """The ``hessian-rank`` console script and ``python3 -m hessrank.cli``: :func:`main`, then exit.

    After ``run`` the process leaves without the interpreter's teardown, once stdout and stderr
    are flushed: JAX's exit handlers clear its backends and caches and the modules are
    collected, 0.13–0.16 s of a 2.6 s run at p = 4560, paid again by every point of a scripted
    sweep. Nothing of ``run`` is left to finish by then (results printed, ``--spectrum``
    written atomically, compiled programs cached when compiled). Every other command (sweeps,
    Dask grids, plots) exits normally."""
    code = main()
    if run._RAN:
        try:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:
                    stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: the normal exit reports it
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


#: exit status when stdout was closed by the reader (``… | head -1``), as a shell reports SIGPIPE
EXIT_BROKEN_PIPE = 141


def _guarded(parser, argv, name) -> int:
    """Parse ``argv`` and run its handler; every failure ends in one line on stderr."""
    args = None
    survive_any_locale()
    try:
        args = parser.parse_args(argv)
        if sys.stdout is None:  # started with stdout closed (`>&-`)
            return _fail(name(args), "stdout is closed: there is nowhere to write the results; open it or "
                                     "redirect it to a file")
        if hasattr(args, "compile_cache"):  # a command that compiles (not `datasets`)
            cache = default_cache_dir(args.compile_cache)
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
        if not err.filename and _working_directory_gone():
            return _fail(name(args), f"the working directory {os.environ.get('PWD', '')!r} no longer exists (it was "
                                     "deleted or moved): change into a folder that exists, or give absolute paths")
        where = f" {err.filename!r}" if err.filename else ""
        return _fail(name(args), f"cannot access{where}: {err.strerror or err}")
    except KeyboardInterrupt:
        if sys.stderr is not None:
            print(f"{name(args)}: interrupted", file=sys.stderr)
        return 130


def _working_directory_gone() -> bool:
    try:
        os.getcwd()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def _fail(prog: str, line: str) -> int:
    if sys.stderr is None:  # started with stderr closed (`2>&-`): the status alone says it
        return EXIT_USAGE
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
