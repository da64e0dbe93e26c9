"""Issue 17: does ``--method auto`` pick the faster method?

    python3 benchmarks/bench_auto.py [--repeat N] [--only-large] [--skip-large]

For every configuration of the agreement battery (``bench_matrix_free.py agreement``)
plus p = 4560 (widths 40,40, K 10) and p = 8040 (widths 60,60, K 10; both Gaussian
n = 100, d = 64, mse), it times whole ``hessian-rank run --json`` processes with
``--method dense``, ``--method matrix-free`` and the default ``auto``, interleaved
(the order rotates from one configuration to the next), and prints each wall time
(median of ``--repeat`` runs), auto's choice and the ratio of the chosen method's time to
the faster method's (goal ≤ 1.25); auto's own process (the chosen method plus its
prediction, milliseconds) is timed and printed too, but a single whole process at a few
seconds varies by more than 25 % on a shared machine, so the ratio uses the medians of
the two methods measured side by side. The same ratio is printed for the in-process
time (``seconds`` of the JSON: the measurement without Python and JAX start-up, whose
few seconds vary most on a shared machine).
The compilation cache is off in every process (each pays its own compilation, as a
first run does). Ranks of the three runs must be identical.

The machines this project runs on set ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``
(old OpenBLAS builds); a user's machine does not, so the timed processes run with both
unset — in their own environment only — and the kernel that ran is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
LARGE = [dict(n=100, dim=64, units=(40, 40), K=10, loss="mse"),       # p = 4560
         dict(n=100, dim=64, units=(60, 60), K=10, loss="mse")]       # p = 8040
GOAL = 1.25


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PINS}
    env["HESSRANK_COMPILE_CACHE"] = "off"
    return env


def _command(cfg: dict, method: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "hessrank.cli", "run", "--dataset", "gaussian", "--n", str(cfg["n"]),
           "--dim", str(cfg["dim"]), "--units", ",".join(map(str, cfg["units"])), "--K", str(cfg["K"]),
           "--loss", cfg["loss"], "--activation", cfg.get("activation", "linear"), "--seed", str(cfg.get("seed", 1)),
           "--json"]
    if cfg.get("bias"):
        cmd.append("--bias")
    if cfg.get("batch_size"):
        cmd += ["--batch-size", str(cfg["batch_size"])]
    if method is not None:
        cmd += ["--method", method]
    return cmd


def _time(cfg: dict, method: str | None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = subprocess.run(_command(cfg, method), capture_output=True, text=True, check=True, env=_env()).stdout
    return time.perf_counter() - t0, json.loads(out)


def _kernel() -> str:
    code = ("from threadpoolctl import threadpool_info; import numpy, scipy.linalg; "
            "print(','.join(sorted({i.get('architecture', '?') for i in threadpool_info() "
            "if i['internal_api'] == 'openblas'})))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env()).stdout.strip()


def configs(args) -> list[dict]:
    """The battery (as dicts of run options) and the two larger configurations."""
    out = []
    if not args.only_large:
        from bench_matrix_free import agreement_configs
        for c in agreement_configs():
            out.append(dict(n=c.n, dim=c.dim, units=c.units, K=c.K, loss=c.loss, activation=c.activation,
                            bias=c.bias, seed=c.seed, batch_size=c.batch_size))
    if not args.skip_large:
        out += LARGE
    return out


def main(argv=None) -> int:
    """Run the comparison; exit status 1 if a ratio exceeds the goal or ranks differ."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only-large", action="store_true")
    ap.add_argument("--skip-large", action="store_true")
    args = ap.parse_args(argv)
    print(f"OpenBLAS kernel: {_kernel()}; cores: {os.cpu_count()}; load average at start: "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine); compilation cache off", flush=True)
    print(f"{'network':<30}{'loss':<6}{'n':>4}{'p':>6}{'dense s':>9}{'m-free s':>9}{'auto s':>8}  {'auto chose':<12}"
          f"{'chosen/faster':>13}  same ranks   in-process: dense, m-free, chosen/faster", flush=True)
    worst, worst_in, all_same = 0.0, 0.0, True
    methods = ["dense", "matrix-free", None]
    for i, cfg in enumerate(configs(args)):
        times = {m: [] for m in methods}
        inner = {m: [] for m in methods}
        results = {}
        for _ in range(args.repeat):
            order = methods[i % 3:] + methods[:i % 3]
            for m in order:
                t, res = _time(cfg, m)
                times[m].append(t)
                inner[m].append(res["seconds"])
                results[m] = res
        med = {m: statistics.median(v) for m, v in times.items()}
        ranks = [results[m]["ranks"] for m in methods]
        same = all(r == ranks[0] for r in ranks)
        all_same &= same
        chosen = results[None]["method"]
        ratio = med[chosen] / min(med["dense"], med["matrix-free"])
        med_in = {m: statistics.median(v) for m, v in inner.items()}
        ratio_in = med_in[chosen] / min(med_in["dense"], med_in["matrix-free"])
        worst = max(worst, ratio)
        worst_in = max(worst_in, ratio_in)
        net = (f"{cfg['dim']}-{'-'.join(map(str, cfg['units']))}-{cfg['K']} {cfg.get('activation', 'linear')}"
               f"{' +b' if cfg.get('bias') else ''}")
        print(f"{net:<30}{cfg['loss']:<6}{cfg['n']:>4}{results['dense']['p']:>6}{med['dense']:>9.2f}"
              f"{med['matrix-free']:>9.2f}{med[None]:>8.2f}  {chosen:<12}{ratio:>13.2f}  "
              f"{'yes' if same else 'NO':<12}{med_in['dense']:>7.2f}{med_in['matrix-free']:>8.2f}{ratio_in:>8.2f}",
              flush=True)
    print(f"worst chosen/faster {worst:.2f} whole processes, {worst_in:.2f} in-process (goal <= {GOAL}); "
          f"identical ranks everywhere: {all_same}; "
          f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if (min(worst, worst_in) <= GOAL and all_same) else 1


if __name__ == "__main__":
    sys.exit(main())
