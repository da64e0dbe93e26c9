"""A user's model file: ``path/to/file.py:build`` with ``build(d, K, seed) -> (f, params)`` (JAX) or
``build(d, K, seed) -> torch.nn.Module`` (PyTorch, recognised by its type)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from ..errors import ConfigError, first_line


def load_user_model(spec: str, d: int, K: int, seed: int):
    """``(f, params)`` from ``build(d, K, seed)`` in the file of ``spec`` (``FILE.py:FUNCTION``);
    ``(module, None)`` when ``build`` returns a ``torch.nn.Module``.

    Raises :class:`ConfigError` naming ``model``: no ``:``, a missing file, a file that
    fails to import, a missing function, or a ``build`` that fails or returns no ``(f, params)``.
    """
    path, sep, name = str(spec).rpartition(":")
    if not sep or not path or not name:
        raise ConfigError.invalid("model", spec, "give FILE.py:FUNCTION, e.g. mynet.py:build")
    file = Path(path)
    if not file.is_file():
        raise ConfigError.invalid("model", spec, f"no such file {str(file)!r}")
    module_name = f"hessrank_user_model_{abs(hash(str(file.resolve())))}"
    try:
        loader = importlib.util.spec_from_file_location(module_name, file)
        module = importlib.util.module_from_spec(loader)
        sys.modules[module_name] = module
        loader.loader.exec_module(module)
    except Exception as err:  # the user's code: one line
        raise ConfigError.invalid("model", spec, f"importing {file.name} raised {type(err).__name__}: "
                                                 f"{first_line(err)}") from None
    build = getattr(module, name, None)
    if not callable(build):
        raise ConfigError.invalid("model", spec, f"{file.name} has no function {name!r}")
    try:
        out = build(d, K, seed)
    except Exception as err:
        raise ConfigError.invalid("model", spec, f"{name}(d={d}, K={K}, seed={seed}) raised {type(err).__name__}: "
                                                 f"{first_line(err)}") from None
    if is_torch_module(out):
        return out, None
    if not (isinstance(out, tuple | list) and len(out) == 2 and callable(out[0])):
        raise ConfigError.invalid("model", spec, f"{name}(d, K, seed) must return (f, params) with f(params, X) -> "
                                                 f"(n, K), or a torch.nn.Module; got {type(out).__name__}")
    return out[0], out[1]


def is_torch_module(obj) -> bool:
    """Whether ``obj`` is a ``torch.nn.Module`` (checked by class name, without importing PyTorch)."""
    return any(cls.__name__ == "Module" and cls.__module__.startswith("torch.nn") for cls in type(obj).__mro__)

