"""One frozen configuration per run, validated in one place.

Every user-facing setting lives in :class:`RunConfig`. :meth:`RunConfig.validate`
raises :class:`~hessrank.errors.ConfigError` with a one-line message that names the
field, the bad value and what is allowed; the command line translates the field into
its flag, prints that line and exits with status 2. :func:`config_from_options` builds
a configuration from option values as text (a grid file, the command line).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .errors import ConfigError

ACTIVATIONS = ("linear", "relu", "leaky_relu", "tanh", "elu", "sigmoid")
INITS = ("glorot", "uniform", "orthogonal")
LOSSES = ("mse", "cross", "cosh")
METHODS = ("auto", "dense", "matrix-free")
#: image resizing rules (see hessrank.data.preprocess); "nearest" is the paper's
RESIZES = ("nearest", "nearest-exact", "bilinear", "area")


def parse_units(text: str | None) -> tuple[int, ...]:
    """Parse ``"5,10"`` into ``(5, 10)``; raise :class:`ConfigError` if malformed."""
    if text is None:
        raise ConfigError.about("units", "missing value; give comma-separated positive widths, e.g. 10,10")
    parts = [s.strip() for s in str(text).split(",")]
    try:
        units = tuple(int(s) for s in parts)
    except ValueError:
        raise ConfigError.invalid(
            "units", text, "not a comma-separated list of integers; give positive widths, e.g. 10,10"
        ) from None
    bad = [u for u in units if u <= 0]
    if bad:
        raise ConfigError.invalid("units", text, f"width {bad[0]} is not allowed; every width must be >= 1")
    return units


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one measurement: data, network, loss, tolerance."""

    dataset: str = "digits"
    #: None: the data set's default (100 samples for named sets, every row of a user file)
    n: int | None = None
    #: None: the data set's default (64 for named sets, the file's d for a user file)
    dim: int | None = None
    K: int = 10
    units: tuple[int, ...] = (10, 10)
    activation: str = "linear"
    bias: bool = False
    init: str = "glorot"
    loss: str = "mse"
    batch_size: int | None = None
    seed: int = 1
    rtol: float | None = None
    atol: float | None = None
    method: str = "auto"
    data_dir: str | None = None
    resize: str = "nearest"
    label_noise: float = 0.0
    download: bool = field(default=False, compare=False)

    # ------------------------------------------------------------------ #
    def replace(self, **changes) -> RunConfig:
        """A copy with ``changes`` applied (not validated)."""
        return dataclasses.replace(self, **changes)

    @property
    def widths(self) -> tuple[int, ...]:
        """All layer widths ``(d, M_1, ..., M_{L-1}, K)``; needs a known ``dim``."""
        return (int(self.dim), *self.units, int(self.K))

    def effective_batch_size(self, n: int) -> int:
        """Samples per batch for ``n`` samples: ``batch_size``, else ``min(n, 100)``."""
        return int(self.batch_size) if self.batch_size is not None else min(n, 100)

    def validate(self) -> RunConfig:
        """Check every field; return ``self`` or raise :class:`ConfigError`."""
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("init", self.init, INITS)
        _choice("loss", self.loss, LOSSES)
        _choice("method", self.method, METHODS)
        _choice("resize", self.resize, RESIZES)
        if not isinstance(self.label_noise, (int, float)) or not 0.0 <= self.label_noise <= 1.0:
            raise ConfigError.invalid("label_noise", self.label_noise, "must be a fraction between 0 and 1")
        if not isinstance(self.K, int) or self.K < 1:
            raise ConfigError.invalid("K", self.K, "the number of outputs must be an integer >= 1")
        if self.loss == "cross" and self.K == 1:
            raise ConfigError.invalid(
                "K", 1, "with loss 'cross': softmax cross-entropy of one output is constant; use K >= 2 or loss "
                        "mse/cosh"
            )
        if self.n is not None and (not isinstance(self.n, int) or self.n < 1):
            raise ConfigError.invalid("n", self.n, "the sample size must be an integer >= 1")
        if self.dim is not None and (not isinstance(self.dim, int) or self.dim < 1):
            raise ConfigError.invalid("dim", self.dim, "the input dimension must be an integer >= 1")
        if not self.units:
            raise ConfigError.invalid("units", "", "give at least one hidden layer width, e.g. 10,10")
        for u in self.units:
            if not isinstance(u, int) or u < 1:
                raise ConfigError.invalid("units", ",".join(map(str, self.units)), "every width must be an "
                                                                                   "integer >= 1")
        if self.batch_size is not None:
            if not isinstance(self.batch_size, int) or self.batch_size < 1:
                raise ConfigError.invalid("batch_size", self.batch_size, "must be an integer >= 1")
            if self.n is not None and self.batch_size > self.n:
                raise ConfigError.invalid(
                    "batch_size", self.batch_size, f"larger than the sample size n = {self.n}; use 1..{self.n}"
                )
        for param, value in (("rtol", self.rtol), ("atol", self.atol)):
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                      or not math.isfinite(value) or value < 0):
                raise ConfigError.invalid(param, value, "must be a finite number >= 0")
        if not isinstance(self.seed, int):
            raise ConfigError.invalid("seed", self.seed, "must be an integer")
        return self

    def to_dict(self) -> dict:
        """The configuration as JSON-ready values (``units`` a list)."""
        d = dataclasses.asdict(self)
        d["units"] = list(self.units)
        return d


def _choice(param: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError.invalid(param, value, f"not one of {', '.join(allowed)}")


#: the fields a command line, a grid file or a sweep may set, in the order of ``run --help``
RUN_OPTIONS = tuple(f.name for f in dataclasses.fields(RunConfig))


def run_option_defaults() -> dict:
    """``{option: default}`` for every :data:`RUN_OPTIONS` entry (``units`` as text, ``"10,10"``)."""
    d = RunConfig()
    out = {name: getattr(d, name) for name in RUN_OPTIONS}
    out["units"] = ",".join(map(str, d.units))
    return out


def config_from_options(options: dict, **overrides) -> RunConfig:
    """A validated :class:`RunConfig` from option values (``units`` as text such as
    ``"10,10"``); options not given keep their defaults, ``overrides`` win."""
    fields = {**run_option_defaults(), **options}
    unknown = sorted(set(fields) - set(RUN_OPTIONS))
    if unknown:
        raise ConfigError.invalid("options", unknown[0], f"not an option; use one of {', '.join(RUN_OPTIONS)}")
    fields["units"] = parse_units(fields["units"]) if isinstance(fields["units"], str) or fields["units"] is None \
        else tuple(fields["units"])
    fields.update(overrides)
    return RunConfig(**fields).validate()
