import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import hessrank  # noqa: E402,F401  (switches JAX to float64)
