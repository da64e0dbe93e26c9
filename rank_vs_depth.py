"""The paper's depth sweep, with its flags and defaults (see `hessian-rank sweep depth --help`).

    python3 rank_vs_depth.py --loss mse --dataset MNIST --batch_size 10 --init glorot --dim 16 --K 10 --width 25

Rows land in results/store/depth/<loss>/<dataset>/…; a rerun computes only the missing points.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))  # works without installing

if __name__ == "__main__":
    from hessrank.cli import script_main

    sys.exit(script_main("rank_vs_depth.py", ("sweep", "depth")))
