"""``python3 -m hessrank.cli``: the same as ``hessian-rank``."""

import sys

from .main import main

sys.exit(main())
