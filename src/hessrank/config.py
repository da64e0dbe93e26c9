"""One frozen configuration per run, validated in one place.

Every user-facing setting lives in :class:`RunConfig`. :meth:`RunConfig.validate`
raises :class:`~hessrank.errors.ConfigError` with a one-line message that names the
field, the bad value and what is allowed; the command line translates the field into
its flag, prints that line and exits with status 2. :func:`config_from_options` builds
a configuration from option values as text (a grid file, the command line).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

ACTIVATIONS = ("linear", "relu", "leaky_relu", "tanh", "elu", "sigmoid")
INITS = ("glorot", "uniform", "orthogonal")
LOSSES = ("mse", "cross", "cosh")
METHODS = ("auto", "dense", "matrix-free")
#: the optimizers of ``hessian-rank train`` (:mod:`hessrank.training`)
OPTIMIZERS = ("sgd", "momentum", "adam")
#: image resizing rules (see hessrank.data.preprocess); "nearest" is the paper's
RESIZES = ("nearest", "nearest-exact", "bilinear", "area")
#: the built-in networks: the paper's fully-connected one, and a convolutional one
ARCHS = ("mlp", "cnn")
#: the CNN's conv layers when ``conv`` is not given (channels:kernel per layer)
DEFAULT_CONV = "8:3,8:3"
PADDINGS = ("valid", "same")
#: ``avg``: a 2×2 average pool after each conv layer; ``global``: the average over all
#: positions after the last one (global average pooling before the dense head)
POOLS = ("none", "avg", "global")
#: the fields that describe a network other than the MLP; at their defaults they stay out
#: of :meth:`RunConfig.to_dict` (and so of every stored identity made before they existed)
NETWORK_FIELDS = ("arch", "conv", "stride", "padding", "pool", "model")
#: what a name that becomes a folder of the result store may hold
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")


def is_safe_name(name: str) -> bool:
    """Whether ``name`` may become a folder name of the result store: only ``[A-Za-z0-9._-]``,
    and not made of dots alone (``.``, ``..``)."""
    return bool(_SAFE_NAME.fullmatch(name)) and name.strip(".") != ""
#: the named data sets (:func:`hessrank.data.load_dataset`); anything else is a .npz or .csv file
DATASETS = ("digits", "gaussian", "MNIST", "FashionMNIST", "CIFAR10")
#: the named data sets read from files that can be downloaded (the others need no files)
DOWNLOADABLE = ("MNIST", "FashionMNIST", "CIFAR10")
#: a named data set's sample count and input dimension when ``n`` and ``dim`` are not given
DEFAULT_N = 100
DEFAULT_DIM = 64
#: at most this many samples per batch when ``batch_size`` is not given (:meth:`RunConfig.effective_batch_size`)
DEFAULT_BATCH_CAP = 100
#: the named ways to cut θ into diagonal blocks (:func:`hessrank.measure.blocks.resolve_blocks`)
BLOCK_KINDS = ("leaves", "layers")
#: what a spectrum computes unless told otherwise: the defaults of
#: :class:`hessrank.measure.SpectrumOptions` (kept here, in plain Python, so that the command
#: line can show them without loading JAX)
SPECTRUM_DEFAULTS = {"top": 20, "trace": True, "density": True, "eigenvectors": False, "trace_samples": 32,
                     "probes": 8, "lanczos_steps": 64, "density_points": 512, "seed": 0}
#: how a network is trained unless told otherwise: the defaults of
#: :class:`hessrank.training.TrainConfig` (``train_batch`` None: all n samples per step)
TRAIN_DEFAULTS = {"optimizer": "sgd", "lr": 0.01, "steps": 100, "train_batch": None}
#: about this many log-spaced checkpoints of a training run when none are given
DEFAULT_CHECKPOINTS = 20


def parse_conv(spec: str) -> tuple[tuple[int, int], ...]:
    """``"8:3,8:3"`` -> ``((8, 3), (8, 3))``: (channels, kernel) of each conv layer."""
    layers = []
    for part in str(spec).split(","):
        try:
            c, k = (int(x) for x in part.split(":"))
        except ValueError:
            raise ConfigError.invalid("conv", spec, "give channels:kernel per layer, e.g. 8:3,8:3") from None
        if c < 1 or k < 1:
            raise ConfigError.invalid("conv", spec, "channels and kernel must be >= 1")
        if c > MAX_SIZE or k > MAX_SIZE:
            raise ConfigError.invalid("conv", spec, f"channels and kernel must be at most {MAX_SIZE}")
        layers.append((c, k))
    if len(layers) > MAX_LAYERS:
        raise ConfigError.invalid("conv", f"{len(layers)} layers", f"at most {MAX_LAYERS} conv layers", quoted=False)
    return tuple(layers)


def conv_text(layers) -> str:
    """``((8, 3), (8, 3))`` -> ``"8:3,8:3"`` (the canonical text of a conv spec)."""
    return ",".join(f"{c}:{k}" for c, k in layers)


def model_file_hash(spec: str) -> str | None:
    """SHA-256 of the file of a model spec ``FILE.py:FUNCTION`` (``None`` if unreadable):
    an edited model file is another configuration."""
    path = str(spec).rpartition(":")[0]
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


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
    #: the network: ``mlp`` (``units``, ``activation``, ``bias``, ``init``) or ``cnn``
    #: (``conv`` layers channels:kernel, ``stride``, ``padding``, ``pool``; ``activation``, ``bias``)
    arch: str = "mlp"
    #: cnn: channels:kernel of each conv layer (None: :data:`DEFAULT_CONV`)
    conv: str | None = None
    stride: int = 1
    padding: str = "valid"
    pool: str = "none"
    #: a user's network ``FILE.py:FUNCTION`` with ``FUNCTION(d, K, seed) -> (f, params)``
    model: str | None = None
    download: bool = field(default=False, compare=False)

    # ------------------------------------------------------------------ #
    def replace(self, **changes) -> RunConfig:
        """A copy with ``changes`` applied (not validated)."""
        return dataclasses.replace(self, **changes)

    @property
    def widths(self) -> tuple[int, ...]:
        """All layer widths ``(d, M_1, ..., M_{L-1}, K)``; needs a known ``dim``."""
        return (int(self.dim), *self.units, int(self.K))

    @property
    def conv_layers(self) -> tuple[tuple[int, int], ...]:
        """The CNN's ``(channels, kernel)`` per conv layer (``conv``, else :data:`DEFAULT_CONV`)."""
        return parse_conv(DEFAULT_CONV if self.conv is None else self.conv)

    @property
    def network(self) -> str:
        """Which network: ``mlp``, ``cnn`` or ``model`` (a user's file)."""
        return "model" if self.model is not None else self.arch

    def effective_batch_size(self, n: int) -> int:
        """Samples per batch for ``n`` samples: ``batch_size``, else ``min(n, DEFAULT_BATCH_CAP)``."""
        return int(self.batch_size) if self.batch_size is not None else min(n, DEFAULT_BATCH_CAP)

    def validate(self) -> RunConfig:
        """Check every field; return ``self`` or raise :class:`ConfigError`.

        Types are checked first (a boolean is not an integer, a string not a number), then
        ranges; sizes above :data:`MAX_SIZE` are refused here, before anything is allocated
        (what fits the memory is :func:`hessrank.measure.plan` 's rule)."""
        for param in ("dataset", "activation", "init", "loss", "method", "resize"):
            _text(param, getattr(self, param))
        if self.data_dir is not None:
            _text("data_dir", self.data_dir)
        for param in ("bias", "download"):
            if not isinstance(getattr(self, param), bool):
                raise ConfigError.invalid(param, getattr(self, param), "must be true or false")
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("init", self.init, INITS)
        _choice("loss", self.loss, LOSSES)
        _choice("method", self.method, METHODS)
        _choice("resize", self.resize, RESIZES)
        if not _is_number(self.label_noise) or not 0.0 <= self.label_noise <= 1.0:
            raise ConfigError.invalid("label_noise", self.label_noise, "must be a fraction between 0 and 1")
        _size("K", self.K, "the number of outputs must be an integer >= 1")
        if self.loss == "cross" and self.K == 1:
            raise ConfigError.invalid(
                "K", 1, "with loss 'cross': softmax cross-entropy of one output is constant; use K >= 2 or loss "
                        "mse/cosh"
            )
        if self.n is not None:
            _size("n", self.n, "the sample size must be an integer >= 1")
        if self.dim is not None:
            _size("dim", self.dim, "the input dimension must be an integer >= 1")
        if not isinstance(self.units, tuple):
            raise ConfigError.invalid("units", self.units, "must be a tuple of integer widths, e.g. (10, 10)")
        if not self.units:
            raise ConfigError.invalid("units", "", "give at least one hidden layer width, e.g. 10,10")
        if len(self.units) > MAX_LAYERS:
            raise ConfigError.invalid("units", f"{len(self.units)} widths", f"at most {MAX_LAYERS} hidden layers",
                                      quoted=False)
        for u in self.units:
            _size("units", u, "every width must be an integer >= 1", shown=_units_text(self.units))
        if self.batch_size is not None:
            _size("batch_size", self.batch_size, "must be an integer >= 1")
            if self.n is not None and self.batch_size > self.n:
                raise ConfigError.invalid(
                    "batch_size", self.batch_size, f"larger than the sample size n = {self.n}; use 1..{self.n}"
                )
        check_tolerances(self.rtol, self.atol)
        if not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError.invalid("seed", self.seed, f"must be an integer from 0 to {MAX_SEED} (2^63 - 1)")
        self._validate_network()
        return self

    def _validate_network(self) -> None:
        """The fields of :data:`NETWORK_FIELDS`: each valid, and only where its network uses it."""
        _text("arch", self.arch)
        _choice("arch", self.arch, ARCHS)
        if self.conv is not None:
            _text("conv", self.conv)
            parse_conv(self.conv)
        _size("stride", self.stride, "the stride must be an integer >= 1")
        _text("padding", self.padding)
        _choice("padding", self.padding, PADDINGS)
        _text("pool", self.pool)
        _choice("pool", self.pool, POOLS)
        if self.arch != "cnn":
            for param, default in (("conv", None), ("stride", 1), ("padding", "valid"), ("pool", "none")):
                if getattr(self, param) != default:
                    raise ConfigError.invalid(param, getattr(self, param), "only for a convolutional network "
                                                                           "(arch cnn)")
        elif self.init != "glorot":
            raise ConfigError.invalid("init", self.init, "the CNN is initialised glorot (normal) only")
        if self.model is not None:
            _text("model", self.model)
            path, sep, name = self.model.rpartition(":")
            if not sep or not path or not name:
                raise ConfigError.invalid("model", self.model, "give FILE.py:FUNCTION, e.g. mynet.py:build")
            if not name.isidentifier() or not name.isascii():
                raise ConfigError.invalid("model", self.model, f"FUNCTION {name!r} is not a Python name (letters, "
                                                               "digits, _; it names the result folder too)")
            if not _SAFE_NAME.fullmatch(Path(path).stem) or Path(path).stem.strip(".") == "":
                raise ConfigError.invalid("model", self.model, f"the file name {Path(path).name!r} names the result "
                                                               "folder: use only letters, digits, '.', '_', '-'")
            if not Path(path).is_file():
                raise ConfigError.invalid("model", self.model, f"no such file {path!r}")
            if self.arch != "mlp":
                raise ConfigError.invalid("arch", self.arch, "a model file replaces the built-in networks; give "
                                                             "one of them")

    def to_dict(self) -> dict:
        """The configuration as JSON-ready values (``units`` a list)."""
        d = dataclasses.asdict(self)
        d["units"] = list(self.units)
        for name in NETWORK_FIELDS:  # left out at their defaults: older identities stay the same
            if d[name] == _NETWORK_DEFAULTS[name]:
                del d[name]
        if self.arch == "cnn":
            d["conv"] = conv_text(self.conv_layers)
        if self.network != "mlp":  # settings only the MLP reads
            for name in ("units", "init") + (("activation", "bias") if self.network == "model" else ()):
                del d[name]
        if self.model is not None:
            d["model_sha256"] = model_file_hash(self.model)
        return d


#: the largest value any size (n, dim, K, a width, batch_size) may take: far beyond any
#: machine's memory, and small enough that products of sizes stay exact in int64
MAX_SIZE = 2**31 - 1
#: the most hidden layers a network may have
MAX_LAYERS = 1000
#: seeds are NumPy/JAX seeds: non-negative, at most 64 bits signed
MAX_SEED = 2**63 - 1


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _size(param: str, value, detail: str, *, shown=None) -> None:
    if not _is_int(value) or value < 1:
        raise ConfigError.invalid(param, value if shown is None else shown, detail, quoted=shown is None)
    if value > MAX_SIZE:
        raise ConfigError.invalid(param, value if shown is None else shown,
                                  f"larger than any size this tool can allocate (at most {MAX_SIZE})",
                                  quoted=shown is None)


def _text(param: str, value) -> None:
    if not isinstance(value, str) or "\0" in value:
        raise ConfigError.invalid(param, value, "must be text")


def _units_text(units) -> str:
    try:
        return ",".join(map(str, units))
    except TypeError:
        return repr(units)


def check_tolerances(rtol, atol) -> None:
    """Refuse, in one line naming it, an ``rtol`` or ``atol`` that is not None or a finite number >= 0
    (the rank rule's tolerances, wherever they are given)."""
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                  or not (math.isfinite(value) and value >= 0)):
            raise ConfigError.invalid(name, value, "give a finite tolerance >= 0 (a number)")


def check_loss(name) -> str:
    """``name`` when it names a loss (``mse``, ``cross``, ``cosh``); else :class:`ConfigError` naming ``loss``."""
    if not isinstance(name, str) or name not in LOSSES:
        raise ConfigError.invalid("loss", name, f"not one of {', '.join(LOSSES)}")
    return name


def _choice(param: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError.invalid(param, value, f"not one of {', '.join(allowed)}")


_NETWORK_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig) if f.name in NETWORK_FIELDS}

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


# The sweeps (``hessian-rank sweep TASK``, :mod:`hessrank.sweeps`) and the reference setup of
# the paper's scripts: here, beside the run options, so that the command line can offer them
# without importing the sweeps (and the result store) for a plain ``run``.
TASKS = ("samplesize", "width", "depth", "channels")
DEFAULT_N_MAX = 400
DEFAULT_WIDTHS = "4:56:4"
DEFAULT_DEPTHS = "1:9:1"
DEFAULT_DEPTH_WIDTH = 25
DEFAULT_CHANNELS = "2:16:2"
#: the sweeps whose figure shows rank / #params unless told otherwise (as in the paper)
NORMALIZED_TASKS = ("width", "depth")
SWEEP_DEFAULTS = {
    "samplesize": RunConfig(dataset="MNIST", n=None, dim=64, K=10, units=(10, 10), batch_size=10),
    "width": RunConfig(dataset="MNIST", n=100, dim=64, K=10, batch_size=10),
    "depth": RunConfig(dataset="MNIST", n=50, dim=16, K=10, batch_size=10),
    "channels": RunConfig(dataset="MNIST", n=100, dim=64, K=10, batch_size=10, arch="cnn"),
}
