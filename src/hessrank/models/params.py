r"""Parameters as named arrays, and as ``.npz`` files with one array per leaf.

A flat parameter vector :math:`\theta \in \mathbb{R}^p` of an :class:`~hessrank.models.MLP`
is split into its named leaves (``W1, b1, W2, …``, :attr:`MLP.shapes`) and back. Files are
written whole or not at all (temporary file, then rename) and read with
``allow_pickle=False``; every leaf's name and shape is checked against the network.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..atomicio import atomic_output
from ..errors import ConfigError


def named_arrays(model, theta) -> dict[str, np.ndarray]:
    """``{leaf name: array of its shape}`` of the flat vector ``theta`` (float64 copies)."""
    theta = np.asarray(theta, dtype=np.float64)
    out, start = {}, 0
    for name, shape in model.shapes:
        size = int(np.prod(shape))
        out[name] = theta[start:start + size].reshape(shape).copy()
        start += size
    return out


def flat_params(model, arrays, *, param: str = "params", source: str = "") -> np.ndarray:
    """The flat float64 vector θ of ``model`` from ``arrays`` (``{leaf name: array}``).

    Raises :class:`~hessrank.errors.ConfigError` naming ``param`` (and ``source``, the
    file) when a leaf is missing, extra, of another shape or not finite."""
    where = source or "the parameters"
    expected = dict(model.shapes)
    missing = [k for k in expected if k not in arrays]
    extra = sorted(k for k in arrays if k not in expected)
    layout = ", ".join(f"{k} {tuple(s)}" for k, s in expected.items())
    if missing or extra:
        what = f"no array {missing[0]}" if missing else f"an array {extra[0]} the network does not have"
        raise ConfigError.invalid(param, where, f"{what}; the network {_widths(model)} has {layout}", quoted=False)
    pieces = []
    for name, shape in expected.items():
        a = np.asarray(arrays[name])
        if tuple(a.shape) != tuple(shape):
            raise ConfigError.invalid(param, where, f"{name} has shape {tuple(a.shape)} but the network "
                                                    f"{_widths(model)} needs {tuple(shape)}", quoted=False)
        if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
            raise ConfigError.invalid(param, where, f"{name} holds {a.dtype} values, not numbers", quoted=False)
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ConfigError.invalid(param, where, f"{name} holds NaN or inf", quoted=False)
        pieces.append(a.ravel())
    return np.concatenate(pieces)


def _widths(model) -> str:
    widths = getattr(model, "widths", None)
    return "-".join(map(str, widths)) if widths else f"of p = {model.num_params}"


def save_arrays(path, arrays: dict) -> None:
    """Write ``arrays`` (``{name: array}``) to the ``.npz`` file ``path``, atomically."""
    with atomic_output(path, "wb") as fh:
        np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})


def load_arrays(path, *, param: str = "params") -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` file ``path`` (no pickles). Errors name ``param``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError.invalid(param, str(path), "no such file; give an .npz of one array per leaf "
                                                    "(as `hessian-rank train` saves them)")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(name.endswith("data.pkl") for name in names):
            raise ConfigError.invalid(param, str(path), "a PyTorch file (torch.save), but the network is a JAX "
                                                        "one; give an .npz of one array per leaf (as `hessian-rank "
                                                        "train` saves them)", quoted=False)
        if not all(name.endswith(".npy") for name in names):
            raise ConfigError.invalid(param, str(path), "a zip archive that is not an .npz of arrays; give an .npz "
                                                        "of one array per leaf (as `hessian-rank train` saves them)",
                                      quoted=False)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise ConfigError.invalid(param, str(path), f"not a readable .npz file ({str(err).splitlines()[0][:120]})"
                                  ) from None
