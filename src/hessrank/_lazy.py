"""Packages whose names load on first use (PEP 562): importing the package imports no submodule.

A subpackage's ``__init__`` lists, per submodule, the names it offers from it::

    __getattr__, __dir__, __all__ = lazy_names(__name__, {"mlp": ("MLP",), "losses": ("Loss", "get_loss")})

so that ``from hessrank.models import MLP`` imports ``hessrank.models.mlp`` (and JAX) only then,
and a caller that needs one JAX-free submodule (a PyTorch module's measurement) loads no more.
"""

from __future__ import annotations

import importlib
import sys


def lazy_names(package: str, by_module: dict[str, tuple[str, ...]]):
    """``(__getattr__, __dir__, __all__)`` for the package ``package``: ``by_module`` lists the names
    each submodule (relative to the package) defines; a name is imported on first access and then kept."""
    names = {name: module for module, offered in by_module.items() for name in offered}

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{names[name]}", package), name)
        setattr(sys.modules[package], name, value)   # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__, list(names)
