"""The ``hessian-rank`` command line.

``hessian-rank run`` measures one configuration. Bad input ends with one line on
stderr naming the flag, the value and what is allowed, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from .config import ACTIVATIONS, INITS, LOSSES, METHODS, RESIZES, ConfigError, RunConfig, parse_units

EXIT_USAGE = 2


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
    g.add_argument("--resize", default=d.resize, help=f"image resizing, one of {', '.join(RESIZES)} (default {d.resize})")
    g.add_argument("--label-noise", "--label_noise", dest="label_noise", type=float, default=d.label_noise,
                   metavar="FRACTION", help="give this fraction of the samples a wrong label, drawn with --seed (default 0)")
    g = parser.add_argument_group("network")
    g.add_argument("--units", default=",".join(map(str, d.units)),
                   help=f"hidden widths, comma-separated (default {','.join(map(str, d.units))})")
    g.add_argument("--activation", default=d.activation, help=f"one of {', '.join(ACTIVATIONS)} (default {d.activation})")
    g.add_argument("--bias", action="store_true", default=d.bias, help="add biases (default: none, as in the paper)")
    g.add_argument("--init", default=d.init, help=f"one of {', '.join(INITS)} (default {d.init})")
    g.add_argument("--seed", type=int, default=d.seed, help=f"seed of data and initialisation (default {d.seed})")
    g = parser.add_argument_group("loss and computation")
    g.add_argument("--loss", default=d.loss, help=f"one of {', '.join(LOSSES)} (default {d.loss})")
    g.add_argument("--batch_size", "--batch-size", dest="batch_size", type=int, default=d.batch_size,
                   help="samples per batch when accumulating the Hessians (default min(n, 100))")
    g.add_argument("--method", default=d.method, help=f"one of {', '.join(METHODS)} (default {d.method})")
    g = parser.add_argument_group("rank tolerance")
    g.add_argument("--rtol", type=float, default=d.rtol,
                   help="relative tolerance: tol = rtol * max|eigenvalue| (default size * eps)")
    g.add_argument("--atol", type=float, default=d.atol, help="absolute tolerance (with --rtol, the larger wins)")


def config_from_args(args: argparse.Namespace, **overrides) -> RunConfig:
    """A validated :class:`RunConfig` from parsed ``run`` options."""
    fields = dict(
        dataset=args.dataset, n=args.n, dim=args.dim, K=args.K, units=parse_units(args.units),
        activation=args.activation, bias=args.bias, init=args.init, loss=args.loss,
        batch_size=args.batch_size, seed=args.seed, rtol=args.rtol, atol=args.atol,
        method=args.method, data_dir=args.data_dir,
        resize=args.resize, label_noise=args.label_noise, download=args.download,
    )
    fields.update(overrides)
    return RunConfig(**fields).validate()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hessian-rank", description="Ranks of neural-network Hessian maps next to theory.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    p_run = sub.add_parser("run", help="measure rank H_L, H_o, H_F for one network and data set")
    add_run_options(p_run)
    p_run.add_argument("--spectrum", metavar="FILE.csv", help="write the eigenvalues of H_L, H_o, H_F to a CSV")
    p_run.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p_run.set_defaults(handler=_cmd_run)
    p_data = sub.add_parser("datasets", help="list the data sets, where they are, how to get a missing one")
    p_data.add_argument("--data-dir", "--data_dir", dest="data_dir", help="also look here (first)")
    p_data.add_argument("--download", nargs="+", metavar="NAME", default=[],
                        help="fetch these data sets (MNIST, FashionMNIST, CIFAR10) unless present; needs internet")
    p_data.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p_data.set_defaults(handler=_cmd_datasets)
    return parser


def _cmd_datasets(args) -> int:
    from .data import availability, describe_roots, download_root, fetch, search_roots

    for name in args.download:
        name, folder, fetched = fetch(name, args.data_dir)
        print(f"{name}: {'downloaded to' if fetched else 'already available in'} {folder}", file=sys.stderr)
    rows = availability(args.data_dir)
    if args.json:
        print(json.dumps({"datasets": rows, "searched": [{"root": str(r), "origin": o} for r, o in search_roots(args.data_dir)],
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
    from .experiment import run
    from .store import check_writable, write_spectrum_csv

    cfg = config_from_args(args)
    if args.spectrum:
        check_writable(args.spectrum, flag="--spectrum")
    result = run(cfg)
    if args.spectrum:
        write_spectrum_csv(args.spectrum, result)
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
    else:
        print(format_result(result))
        if args.spectrum:
            print(f"spectra written to {args.spectrum}")
    return 0


def _fmt_gap(gap) -> str:
    if gap is None:
        return "-"
    return "inf" if math.isinf(gap) else f"{gap:.1f}"


def format_result(result) -> str:
    """The human-readable table of one run."""
    c = result.config
    pred = result.prediction
    net = "-".join(map(str, (result.d, *c.units, c.K)))
    lines = [
        f"data     {c.dataset} ({result.dataset_source}): n = {result.n}, d = {result.d}, r = rank(Σ xxᵀ) = {result.r}",
        f"network  {net}, {c.activation}, {'bias' if c.bias else 'no bias'}, {c.init} init, seed {c.seed}; "
        f"loss {c.loss}; p = {result.p}",
        f"theory   K' = {pred.K_eff}, q = {pred.q}, s = {pred.s}, M = {pred.M}, L = {pred.L} "
        f"({'exact for this network' if pred.kind == 'exact' else 'linear formula, an estimate only'})",
        "",
        f"{'matrix':<7}{'rank':>8}{'predicted':>11}  {'kind':<9}{'tolerance':>11}{'gap (decades)':>15}",
    ]
    for name in ("H_L", "H_o", "H_F"):
        info = result.ranks[name]
        mark = "" if info.rank == getattr(pred, name) else "  ≠"
        lines.append(f"{name:<7}{info.rank:>8}{getattr(pred, name):>11}  {pred.kind:<9}{info.tol:>11.2e}"
                     f"{_fmt_gap(info.gap_decades):>15}{mark}")
    lines += ["", f"method {result.method} ({result.method_reason}); {result.seconds:.2f} s"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.handler(args)
    except ConfigError as err:
        cmd = f"hessian-rank {getattr(args, 'command', '')}".strip() if "args" in locals() else "hessian-rank"
        print(f"{cmd}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hessian-rank: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
