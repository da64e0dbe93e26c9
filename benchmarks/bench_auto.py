"""Does ``--method auto`` pick the faster method?

    python3 benchmarks/bench_auto.py [--repeat N] [--only-large] [--skip-large] [--only I,J,...]

For every configuration of the agreement battery (``bench_matrix_free.py agreement``;
``--only`` picks some by their index in it, to re-run a marginal one) plus p = 4560
(widths 40,40, K 10) and p = 8040 (widths 60,60, K 10; both Gaussian n = 100, d = 64,
mse), it times whole ``hessian-rank run --json`` processes with ``--method dense``,
``--method matrix-free`` and the default ``auto``, interleaved (the order rotates from one
configuration to the next), and prints per configuration the wall and CPU (user + sys)
seconds of each (medians of ``--repeat`` runs), auto's choice, and two ratios to the
faster method: ``chosen/faster`` (the chosen method's median against the faster one's,
measured side by side) and ``auto/faster`` (auto's own process, which adds its prediction:
milliseconds). A single whole process of a few seconds varies by more than 25 % on a
shared machine, so the same ratio is printed for CPU time and for the in-process time
(``seconds`` of the JSON: the measurement without Python and JAX start-up, whose
few seconds vary most on a shared machine). The summary counts the configurations within
the goal (1.25) by each measure.
The compilation cache is off in every process (each pays its own compilation, as a
first run does). Ranks of the three runs must be identical.

The machines this project runs on set ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``
(old OpenBLAS builds); a user's machine does not, so the timed processes run with both
unset — in their own environment only — and the kernel that ran is printed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _report import command_line, markdown_table, write_report  # noqa: E402

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


def _time(cfg: dict, method: str | None) -> tuple[float, float, dict]:
    """Wall and CPU (user + sys) seconds of one whole process, and its JSON."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(_command(cfg, method), capture_output=True, text=True, check=True, env=_env()).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(out)


def _kernel() -> str:
    code = ("from threadpoolctl import threadpool_info; import numpy, scipy.linalg; "
            "print(','.join(sorted({i.get('architecture', '?') for i in threadpool_info() "
            "if i['internal_api'] == 'openblas'})))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env()).stdout.strip()


def configs(args) -> list[tuple[str, dict]]:
    """``(label, run options)`` of the battery (label: its index) and of the two larger configurations."""
    out = []
    only = None if args.only is None else {int(i) for i in args.only.split(",")}
    if not args.only_large:
        from bench_matrix_free import agreement_configs
        for i, c in enumerate(agreement_configs()):
            if only is None or i in only:
                out.append((str(i), dict(n=c.n, dim=c.dim, units=c.units, K=c.K, loss=c.loss,
                                         activation=c.activation, bias=c.bias, seed=c.seed,
                                         batch_size=c.batch_size)))
    if not args.skip_large and only is None:
        out += [(f"L{i}", cfg) for i, cfg in enumerate(LARGE)]
    return out


def _ratio(values: dict, chosen) -> float:
    return values[chosen] / min(values["dense"], values["matrix-free"])


def main(argv=None) -> int:
    """Run the comparison; exit status 1 if a ratio exceeds the goal or ranks differ."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only-large", action="store_true")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--only", metavar="I,J,...", help="battery configurations by index (no large ones)")
    args = ap.parse_args(argv)
    print(f"OpenBLAS kernel: {_kernel()}; cores: {os.cpu_count()}; load average at start: "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine); compilation cache off", flush=True)
    print("seconds: wall/cpu of whole processes (medians); ratios to the faster method: chosen = the chosen "
          "method's median, auto = auto's own process; in = in-process seconds", flush=True)
    print(f"{'#':>3} {'network':<22}{'loss':<6}{'n':>4}{'p':>6}{'dense':>12}{'m-free':>12}{'auto':>12}  "
          f"{'chose':<7}{'chosen':>7}{'auto':>6}{'cpu':>6}{'in':>6}  ranks", flush=True)
    rows, all_same, table = [], True, []
    started = datetime.datetime.now(datetime.UTC)
    methods = ["dense", "matrix-free", None]
    for i, (label, cfg) in enumerate(configs(args)):
        wall = {m: [] for m in methods}
        cpu = {m: [] for m in methods}
        inner = {m: [] for m in methods}
        results = {}
        for _ in range(args.repeat):
            order = methods[i % 3:] + methods[:i % 3]
            for m in order:
                w, c, res = _time(cfg, m)
                wall[m].append(w)
                cpu[m].append(c)
                inner[m].append(res["seconds"])
                results[m] = res
        med = {m: statistics.median(v) for m, v in wall.items()}
        med_cpu = {m: statistics.median(v) for m, v in cpu.items()}
        med_in = {m: statistics.median(v) for m, v in inner.items()}
        ranks = [results[m]["ranks"] for m in methods]
        same = all(r == ranks[0] for r in ranks)
        all_same &= same
        chosen = results[None]["method"]
        ratios = (_ratio(med, chosen), _ratio(med, None), _ratio(med_cpu, chosen), _ratio(med_in, chosen))
        rows.append(ratios)
        net = (f"{cfg['dim']}-{'-'.join(map(str, cfg['units']))}-{cfg['K']} {cfg.get('activation', 'linear')}"
               f"{' +b' if cfg.get('bias') else ''}")
        times = "".join(f"{med[m]:>6.2f}/{med_cpu[m]:<5.2f}" for m in methods)
        print(f"{label:>3} {net:<22}{cfg['loss']:<6}{cfg['n']:>4}{results['dense']['p']:>6}{times}  "
              f"{'m-free' if chosen == 'matrix-free' else chosen:<7}"
              + "".join(f"{r:>{w}.2f}" for r, w in zip(ratios, (7, 6, 6, 6)))
              + f"  {'same' if same else 'DIFFER'}", flush=True)
        table.append([label, net, cfg["loss"], cfg["n"], results["dense"]["p"],
                      *(f"{med[m]:.2f} / {med_cpu[m]:.2f}" for m in methods), chosen,
                      *(f"{r:.2f}" for r in ratios), "same" if same else "DIFFERENT"])
    names = ("chosen/faster wall", "auto/faster wall", "chosen/faster cpu", "chosen/faster in-process")
    within = [sum(r[j] <= GOAL for r in rows) for j in range(4)]
    worst = [max(r[j] for r in rows) for j in range(4)]
    print("within the goal (<= " f"{GOAL}) of {len(rows)}: "
          + "; ".join(f"{name} {k} (worst {w:.2f})" for name, k, w in zip(names, within, worst)))
    print(f"identical ranks everywhere: {all_same}; "
          f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    write_report("auto", command_line(__file__, argv), markdown_table(
        ["#", "network", "loss", "n", "p", "dense wall / CPU s", "matrix-free wall / CPU s", "auto wall / CPU s",
         "chosen", "chosen / faster", "auto / faster", "CPU", "in-process", "ranks"], table, "lllrrrrrlrrrrl"),
        started=started, notes=f"Whole `hessian-rank run` processes, medians of {args.repeat} interleaved runs, "
        "compilation cache off. Ratios to the faster of dense and matrix-free: the chosen method's wall time, "
        "auto's own process, CPU time, and the in-process seconds. Within the goal (≤ "
        f"{GOAL}) of {len(rows)}: " + "; ".join(f"{name} {k} (worst {w:.2f})"
                                                for name, k, w in zip(names, within, worst))
        + f". Identical ranks everywhere: {'yes' if all_same else 'NO'}.")
    return 0 if (min(worst[0], worst[3]) <= GOAL and all_same) else 1


if __name__ == "__main__":
    sys.exit(main())
