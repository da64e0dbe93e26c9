"""``hessian-rank spectrum``: top eigenvalues, trace, density, outliers and condition of
H_L, H_o, H_F, for the built-in networks, ``--arch cnn`` and ``--model FILE.py:build``."""

from __future__ import annotations

import argparse
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path

from ..config import SPECTRUM_DEFAULTS
from ..errors import ConfigError
from .options import (
    Renamed,
    add_execution_options,
    add_run_options,
    config_from_args,
    joins_processes,
    native_stdout_to_stderr,
    start_processes_from_args,
)

HELP = "top eigenvalues, trace, density, outliers and condition of H_L, H_o, H_F"
DESCRIPTION = (
    "Spectra beyond the rank, for H_L, H_o and H_F of one configuration (every option of `hessian-rank run`): the "
    "--top-eigenvalues N eigenvalues of largest magnitude (dense: exact; matrix-free: Ritz values of the certified "
    "sketch, each within its bound 2δ of an eigenvalue), the trace (exact when dense or from the Gram matrix, "
    "otherwise a stochastic estimate with its standard error), the eigenvalue density (a smoothed histogram of the "
    "exact spectrum, or stochastic Lanczos quadrature), the number of outliers (log10|λ| more than 3 robust "
    "standard deviations above the median over the non-zero spectrum) and the condition number over the non-zero "
    "spectrum. With --blocks, each diagonal block (layer or parameter array) gets its top eigenvalues, rank at the "
    "whole matrix's tolerance, trace, outliers and density (as the whole matrix's, on the block; all at 0 for a "
    "block of rank 0), and a figure of the blocks' densities; --model FILE.py:build and --arch cnn work as for "
    "`hessian-rank run`. The result and the density figures land in the result store under <out>/store/spectra/…"
)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``hessian-rank spectrum``: every ``run`` option plus what to compute."""
    add_run_options(parser)
    d = SPECTRUM_DEFAULTS
    g = parser.add_argument_group("spectrum")
    g.add_argument("--top-eigenvalues", dest="top", type=int, default=d["top"], metavar="N",
                   help=f"how many eigenvalues of largest magnitude to report for each matrix (default {d['top']})")
    g.add_argument("--top", dest="top", type=int, action=Renamed, new="--top-eigenvalues")
    g.add_argument("--trace", action=argparse.BooleanOptionalAction, default=d["trace"],
                   help=f"the trace of each matrix (default {_on(d['trace'])})")
    g.add_argument("--density", action=argparse.BooleanOptionalAction, default=d["density"],
                   help=f"the eigenvalue density of each matrix, and its figure (default {_on(d['density'])})")
    g.add_argument("--eigenvectors", metavar="FILE.npz",
                   help="write the eigenvectors of the --top-eigenvalues eigenvalues (arrays H_L_values, "
                        "H_L_vectors, …)")
    g.add_argument("--trace-samples", "--trace_samples", dest="trace_samples", type=int, default=d["trace_samples"],
                   help=f"probes of a stochastic trace estimate (default {d['trace_samples']})")
    g.add_argument("--probes", type=int, default=d["probes"],
                   help=f"random probes of stochastic Lanczos quadrature (default {d['probes']})")
    g.add_argument("--lanczos-steps", "--lanczos_steps", dest="lanczos_steps", type=int, default=d["lanczos_steps"],
                   help=f"Lanczos steps per probe (default {d['lanczos_steps']})")
    g.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    g.add_argument("--out", default="results", help="root of the result store (default results)")
    add_execution_options(parser)
    parser.set_defaults(handler=_cmd_spectrum)


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _cmd_spectrum(args) -> int:
    import numpy as np

    from ..atomicio import atomic_output, check_writable
    from ..measure.spectrum import SpectrumOptions, spectrum
    from ..plotting import plot_block_density, plot_density
    from ..store import spectra_table, store_spectra

    cfg = config_from_args(args)
    options = SpectrumOptions(top=args.top, trace=args.trace, density=args.density,
                              eigenvectors=bool(args.eigenvectors), trace_samples=args.trace_samples,
                              probes=args.probes, lanczos_steps=args.lanczos_steps).validate()
    writer = start_processes_from_args(args)   # only process 0 checks its files and writes them
    if args.eigenvectors:
        if not str(args.eigenvectors).endswith(".npz"):
            raise ConfigError.invalid("eigenvectors", args.eigenvectors, "give a file name ending in .npz")
        if writer:
            check_writable(args.eigenvectors, param="eigenvectors")
        eig, out = Path(os.path.abspath(args.eigenvectors)), Path(os.path.abspath(args.out))
        if eig == out or eig in out.parents:  # the store would need this file as a folder
            raise ConfigError.invalid("eigenvectors", args.eigenvectors, f"the result store --out {args.out!r} is "
                                                                         "this path or lies inside it; give another "
                                                                         "file")
    _check_arch(args)
    if writer:
        check_writable(Path(args.out) / "store" / "probe", param="out")
    several = joins_processes(args)
    with _model_errors(args), native_stdout_to_stderr(several):
        result = spectrum(cfg, blocks=args.blocks, threads=args.threads, devices=args.devices, **options.__dict__)
        if several:  # every process computed the same spectra
            from ..measure.processes import check_same_ranks

            check_same_ranks(result.matrices)
    if not writer:
        return 0
    arch = _store_folder(args)
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
        print(result.summary())
        print()
        for path in paths:
            print(f"written: {path}")
    return 0


# Any model in `hessian-rank spectrum`: `--model FILE.py:build`, `--arch cnn` (measured by the library's
# `spectrum(config)`; here only their folder in the result store and their errors as flags).

def _store_folder(args) -> str:
    """The folder that names ``--model FILE.py:build`` or ``--arch cnn`` in the result store
    (empty for the built-in MLP)."""
    if args.model:
        return "model_" + _slug(Path(args.model).name)
    if args.arch == "mlp":
        return ""
    return f"cnn_{_slug(args.conv)}_s{args.stride}_{_slug(args.padding)}_{_slug(args.pool)}"


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
