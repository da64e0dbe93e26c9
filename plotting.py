"""The paper's plotting script: draws a stored sweep as PNG and PDF beside its CSV.

    python3 plotting.py --loss mse --dataset MNIST --task width --dim 64 --K 10

Same options as `hessian-rank plot` (plus the paper's default --task depth).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))  # works without installing

if __name__ == "__main__":
    from hessrank.cli import script_main

    sys.exit(script_main("plotting.py", ("plot",)))
