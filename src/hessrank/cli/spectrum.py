"""``hessian-rank spectrum``: top eigenvalues, trace, density, outliers and condition of
H_L, H_o, H_F, for the built-in networks, ``--arch cnn`` and ``--model FILE.py:build``."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from contextlib import contextmanager
from pathlib import Path

from ..config import SPECTRUM_DEFAULTS, RunConfig
from ..errors import ConfigError
from .options import add_run_options, config_from_args

HELP = "top eigenvalues, trace, density, outliers and condition of H_L, H_o, H_F"
DESCRIPTION = (
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


def add_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``hessian-rank spectrum``: every ``run`` option plus what to compute."""
    add_run_options(parser)
    d = SPECTRUM_DEFAULTS
    g = parser.add_argument_group("spectrum")
    g.add_argument("--top", type=int, default=d["top"], metavar="K",
                   help=f"the K eigenvalues of largest magnitude of each matrix (default {d['top']})")
    g.add_argument("--trace", action=argparse.BooleanOptionalAction, default=d["trace"],
                   help="the trace of each matrix (default on)")
    g.add_argument("--density", action=argparse.BooleanOptionalAction, default=d["density"],
                   help="the eigenvalue density of each matrix, and its figure (default on)")
    g.add_argument("--eigenvectors", metavar="FILE.npz",
                   help="write the eigenvectors of the --top eigenvalues (arrays H_L_values, H_L_vectors, …)")
    g.add_argument("--trace-samples", "--trace_samples", dest="trace_samples", type=int, default=d["trace_samples"],
                   help=f"probes of a stochastic trace estimate (default {d['trace_samples']})")
    g.add_argument("--probes", type=int, default=d["probes"],
                   help=f"random probes of stochastic Lanczos quadrature (default {d['probes']})")
    g.add_argument("--lanczos-steps", "--lanczos_steps", dest="lanczos_steps", type=int, default=d["lanczos_steps"],
                   help=f"Lanczos steps per probe (default {d['lanczos_steps']})")
    g.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    g.add_argument("--out", default="results", help="root of the result store (default results)")
    parser.set_defaults(handler=_cmd_spectrum)


def _cmd_spectrum(args) -> int:
    import numpy as np

    from ..atomicio import atomic_output, check_writable
    from ..data import load_dataset
    from ..measure import SpectrumOptions, function_spectrum, hessian_spectrum_mlp
    from ..plotting import plot_block_density, plot_density
    from ..store import spectra_table, store_spectra
    from .format import format_block_spectra, format_spectrum

    cfg = config_from_args(args)
    options = SpectrumOptions(top=args.top, trace=args.trace, density=args.density,
                              eigenvectors=bool(args.eigenvectors), trace_samples=args.trace_samples,
                              probes=args.probes, lanczos_steps=args.lanczos_steps).validate()
    if args.eigenvectors:
        if not str(args.eigenvectors).endswith(".npz"):
            raise ConfigError.invalid("eigenvectors", args.eigenvectors, "give a file name ending in .npz")
        check_writable(args.eigenvectors, param="eigenvectors")
        eig, out = Path(os.path.abspath(args.eigenvectors)), Path(os.path.abspath(args.out))
        if eig == out or eig in out.parents:  # the store would need this file as a folder
            raise ConfigError.invalid("eigenvectors", args.eigenvectors, f"the result store --out {args.out!r} is "
                                                                         "this path or lies inside it; give another "
                                                                         "file")
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


# Any model in `hessian-rank spectrum`: `--model FILE.py:build`, `--arch cnn`.

def _any_model(args, cfg: RunConfig, data):
    """``(f, params, label, folder)`` of ``--model FILE.py:build`` or ``--arch cnn`` for ``data``:
    the label describes the network, the folder names it in the result store."""
    from ..models import build_cnn, load_user_model

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
