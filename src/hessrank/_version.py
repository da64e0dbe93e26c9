"""The package version, read by pyproject.toml (``[tool.setuptools.dynamic]``) and ``hessian-rank --version``."""

__version__ = "0.1.0"
