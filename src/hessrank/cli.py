"""The ``hessian-rank`` command line.

``hessian-rank run`` measures one configuration. Bad input ends with one line on
stderr naming the flag, the value and what is allowed, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from .config import ACTIVATIONS, INITS, LOSSES, METHODS, ConfigError, RunConfig, parse_units

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
    g.add_argument("--n", type=int, default=d.n, help=f"number of samples (default {d.n})")
    g.add_argument("--dim", type=int, default=d.dim, help=f"input dimension d (default {d.dim})")
    g.add_argument("--K", type=int, default=d.K, help=f"number of outputs / classes (default {d.K})")
    g.add_argument("--data-dir", "--data_dir", dest="data_dir", default=d.data_dir,
                   help="where data files live (default: $HESSRANK_DATA, then standard places)")
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
    g.add_argument("--method", default=d.method,
                   help=f"one of {', '.join(METHODS)}: dense p×p matrices, or Hessian-vector products and a "
                        f"certified randomized sketch (no p×p array); auto: dense when it fits comfortably in "
                        f"memory (default {d.method})")
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
    return parser


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
    for name, det in result.method_details.items():
        if "residual_bound" in det:
            start = f" ({det['start']})" if "start" in det else ""
            lines.append(f"  {name}: {det['status']}, basis of {det['columns']} vectors{start}, {det['matvecs']} "
                         f"products, ‖(I−P)H‖ ≤ {det['residual_bound']:.1e}")
        else:
            lines.append(f"  {name}: {det['how']}")
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
