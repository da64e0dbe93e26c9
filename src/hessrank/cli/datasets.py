"""``hessian-rank datasets``: which data sets are here, where, and how to get a missing one."""

from __future__ import annotations

import argparse
import json
import sys

from ..config import DOWNLOADABLE

HELP = "list the data sets, where they are, how to get a missing one"
DESCRIPTION = None


def add_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``hessian-rank datasets``."""
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", help="also look here (first)")
    parser.add_argument("--download", nargs="+", metavar="NAME", default=[],
                        help=f"fetch these data sets ({', '.join(DOWNLOADABLE)}) unless present; needs internet")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.set_defaults(handler=_cmd_datasets)


def _cmd_datasets(args) -> int:
    from ..data import availability, describe_roots, download_root, fetch, search_roots

    for name in args.download:
        name, folder, fetched = fetch(name, args.data_dir)
        print(f"{name}: {'downloaded to' if fetched else 'already available in'} {folder}", file=sys.stderr)
    rows = availability(args.data_dir)
    if args.json:
        searched = [{"root": str(r), "origin": o} for r, o in search_roots(args.data_dir)]
        print(json.dumps({"datasets": rows, "searched": searched,
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
