"""The paper's single-run script: edit the hyper-parameters below, then

    python3 hessian_rank.py

It prints rank H_L, H_o, H_F next to the predictions (same as ``hessian-rank run``).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))  # works without installing

# ---- hyper-parameters ------------------------------------------------------
DATASET = "digits"      # digits (bundled), gaussian, or a file-based data set
N = 100                 # sample size
DIM = 64                # input dimension (images: sqrt(dim) x sqrt(dim))
K = 10                  # number of outputs / classes
UNITS = (10, 10)        # hidden layer widths
ACTIVATION = "linear"   # linear, relu, leaky_relu, tanh, elu, sigmoid
BIAS = False
INIT = "glorot"         # glorot, uniform, orthogonal
LOSS = "mse"            # mse, cross, cosh
BATCH_SIZE = 10
SEED = 1
# -----------------------------------------------------------------------------


def main() -> int:
    from hessrank.cli import format_result
    from hessrank.config import ConfigError, RunConfig
    from hessrank.measure.run import run

    try:
        cfg = RunConfig(dataset=DATASET, n=N, dim=DIM, K=K, units=tuple(UNITS), activation=ACTIVATION,
                        bias=BIAS, init=INIT, loss=LOSS, batch_size=BATCH_SIZE, seed=SEED).validate()
        print(format_result(run(cfg)))
    except ConfigError as err:
        print(f"hessian_rank.py: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
