"""The outlier count of H_L and H_o against the number of classes K, for a ReLU
network on real Fashion-MNIST at its initialisation (the loss-landscape literature reports
"about K outliers", or K − 1, or K²; Sagun et al. 2017, Papyan 2019/2020).

    python3 benchmarks/outliers_vs_K.py [--n 200] [--seeds 1,2,3]

For each K in 5, 10, each loss (mse, cross) and each seed, `hessrank.spectrum` (dense:
exact eigenvalues) of the network 64-20-20-K (ReLU, biases, glorot) on the first n samples of
the first K classes, 8×8 images. Printed per row: the outlier count of H_L and H_o under the
tool's rule (log10|λ| more than 3 robust standard deviations above the median over the
non-zero spectrum), and, as a rule-free cross-check, the index i ≤ 3K at which the ratio
λ_i/λ_{i+1} of the sorted |eigenvalues| is largest (where the top of the spectrum breaks).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from hessrank import RunConfig, spectrum


def largest_break(top, limit):
    mags = np.abs(np.asarray(top[:limit + 1], dtype=np.float64))
    mags = mags[mags > 0]
    ratios = mags[:-1] / mags[1:]
    return int(np.argmax(ratios)) + 1, float(ratios.max())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--dataset", default="FashionMNIST")
    args = ap.parse_args(argv)
    print(f"{'K':>3} {'loss':<6}{'seed':>5}{'p':>6}  {'out H_L':>8}{'out H_o':>8}  {'break H_L':>10}{'break H_o':>10}"
          f"   top K+2 of H_o")
    for K in (5, 10):
        for loss in ("mse", "cross"):
            for seed in map(int, args.seeds.split(",")):
                cfg = RunConfig(dataset=args.dataset, n=args.n, dim=64, K=K, units=(20, 20), activation="relu",
                                bias=True, loss=loss, seed=seed, method="dense")
                res = spectrum(cfg, top=3 * K + 1, trace=False, density=False)
                L, o = res.matrices["H_L"], res.matrices["H_o"]
                bL, rL = largest_break(L.top, 3 * K)
                bo, ro = largest_break(o.top, 3 * K)
                print(f"{K:>3} {loss:<6}{seed:>5}{res.p:>6}  {L.outliers:>8}{o.outliers:>8}  {bL:>4} ({rL:3.1f}×)"
                      f"{bo:>4} ({ro:3.1f}×)   " + " ".join(f"{v:.3g}" for v in o.top[:K + 2]), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
