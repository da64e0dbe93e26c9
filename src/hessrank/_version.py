"""The version of hessrank, in one place: pyproject.toml reads it (setuptools' dynamic version), and so
do ``hessrank.__version__``, ``hessian-rank --version`` and every stored result's provenance."""

__version__ = "0.1.0"
