"""``python3 -m hessrank.cli``: the same as ``hessian-rank``."""

from .main import entry

entry()
