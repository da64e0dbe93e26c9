"""The paper's samplesize sweep, with its flags and defaults (see `hessian-rank sweep samplesize --help`).

    python3 rank_vs_sample_size.py --units 10,10 --loss mse --dataset MNIST --batch_size 10 --init glorot --dim 64 --K 10

Rows land in results/store/samplesize/<loss>/<dataset>/…; a rerun computes only the missing points.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))  # works without installing

if __name__ == "__main__":
    from hessrank.cli import script_main

    sys.exit(script_main("rank_vs_sample_size.py", ("sweep", "samplesize")))
