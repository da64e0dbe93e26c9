"""``hessian-rank run``: rank H_L, H_o, H_F of one configuration, beside the theory."""

from __future__ import annotations

import argparse
import json

from .options import (
    add_execution_options,
    add_run_options,
    config_from_args,
    native_stdout_to_stderr,
    start_processes_from_args,
)

HELP = "measure rank H_L, H_o, H_F for one network and data set"
DESCRIPTION = None

#: set once a ``run`` command has started: what it writes (stdout, ``--spectrum``) is complete when it returns
_RAN = []


def add_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``hessian-rank run``."""
    add_run_options(parser)
    parser.add_argument("--spectrum", metavar="FILE.csv", help="write the eigenvalues of H_L, H_o, H_F to a CSV")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--rank-vs-rtol", "--rank_vs_rtol", dest="rank_vs_rtol", action="store_true",
                        help="also print each rank at rtol = 1e-16 … 1e-2 (how much the rank depends on the "
                             "tolerance)")
    parser.add_argument("--explain", action="store_true",
                        help="also print p − rank of each matrix split into what the theory accounts for (data "
                             "span, softmax shift, rescaling symmetries, sample count, linear structure) and what "
                             "remains")
    parser.add_argument("--params", metavar="FILE.npz|FILE.pt", default=None,
                        help="measure at these parameters instead of the initialisation: an .npz of one array per "
                             "leaf W1, b1, … (a JAX network), or a state_dict saved with torch.save (a PyTorch "
                             "module, its buffers included), as `hessian-rank train` saves them")
    add_execution_options(parser)
    parser.set_defaults(handler=_cmd_run)


def _cmd_run(args) -> int:
    from ..atomicio import check_writable
    from ..errors import ConfigError
    from ..measure.network import network_label
    from ..measure.run import run
    from .format import format_blocks, format_explain, format_rank_vs_rtol, format_result

    _RAN.append(True)
    cfg = config_from_args(args)
    writer = start_processes_from_args(args)
    if args.explain and cfg.network == "model":
        raise ConfigError.invalid("explain", True, "model: the theory of null spaces is the built-in networks'; "
                                                   "leave --explain out", quoted=False)
    if args.spectrum and writer:
        check_writable(args.spectrum, param="spectrum")
    several = args.coordinator is not None or args.distributed
    with native_stdout_to_stderr(several):   # the collectives' own messages stay out of the table and the JSON
        result = run(cfg, blocks=args.blocks, params=args.params, params_source=args.params or "", threads=args.threads,
                     devices=args.devices)
        if several:  # every process checked the same certificate
            from ..measure.processes import check_same_ranks

            check_same_ranks(result.ranks, result.method_details)
    if not writer:
        return 0
    if args.spectrum:
        from ..store import write_spectrum_csv

        write_spectrum_csv(args.spectrum, result)
    if args.json:
        out = result.to_dict()
        if cfg.network != "mlp":
            out["model"] = network_label(result.config, result.d)
        if args.params:
            out["params"] = args.params
        print(json.dumps(out, allow_nan=False))
    else:
        print(format_result(result))
        if args.params:
            print(f"measured at the parameters in {args.params} (not the initialisation)")
        if result.blocks:
            print()
            print(format_blocks(result.blocks))
        if args.rank_vs_rtol:
            print()
            print(format_rank_vs_rtol(result))
        if args.explain:
            print()
            print(format_explain(result))
        if args.spectrum:
            print(f"spectra written to {args.spectrum}")
    return 0
