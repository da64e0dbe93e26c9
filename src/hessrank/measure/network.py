"""The network a :class:`~hessrank.config.RunConfig` describes, as one :class:`~hessrank.models.Model`.

``mlp``: the paper's :class:`~hessrank.models.MLP` (``units``, ``activation``, ``bias``,
``init``). ``cnn``: :func:`~hessrank.models.build_cnn` (``conv``, ``stride``, ``padding``,
``pool``, ``activation``, ``bias``). ``model``: a user's ``FILE.py:FUNCTION`` (a JAX function
or a ``torch.nn.Module``, whose products PyTorch computes). The JAX ones are functions over a
pytree, wrapped by :func:`~hessrank.models.function_model`:
every network then goes through the same engine (:func:`~hessrank.measure.run.measure_model_ranks`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from .._torch import torch_model
from ..config import RunConfig, conv_text
from ..errors import ConfigError

if TYPE_CHECKING:
    import jax.numpy as jnp

    from ..models import Model


def build_network(config: RunConfig, d: int, K: int) -> tuple[Model, jnp.ndarray]:
    """``(model, θ)``: the network of ``config`` for inputs of dimension ``d`` and ``K``
    outputs, at its initialisation (seed ``config.seed``). A user's model that fails
    to build, or whose parameters are not floating-point arrays, is refused naming ``model``."""
    from ..curvature.core import float64_scope
    from ..models import MLP, build_cnn, function_model, load_user_model

    if config.network == "mlp":
        model = MLP(widths=(int(d), *config.units, int(K)), activation=config.activation, bias=config.bias)
        return model, model.init(seed=config.seed, scheme=config.init)
    if config.network == "cnn":
        f, params = build_cnn(int(d), int(K), config.conv_layers, stride=config.stride, padding=config.padding,
                              pool=config.pool, activation=config.activation, bias=config.bias, seed=config.seed)
        with float64_scope():
            return function_model(f, params)
    f, params = load_user_model(config.model, int(d), int(K), config.seed)
    if params is None:  # a torch.nn.Module: its products come from PyTorch (hessrank._torch)
        model = torch_model(f)
        return model, model.initial_theta()
    try:
        with float64_scope():
            return function_model(f, params)
    except ConfigError as err:  # the model's own fault: name the option that chose it
        raise ConfigError.invalid("model", config.model, str(err)) from None


def network_num_params(config: RunConfig, d: int, K: int) -> int | None:
    """``p`` of the network of ``config`` counted without building it (``None`` for a
    user's model: only its ``build`` knows)."""
    from ..models import MLP, cnn_num_params

    if config.network == "mlp":
        return MLP(widths=(int(d), *config.units, int(K)), activation=config.activation,
                   bias=config.bias).num_params
    if config.network == "cnn":
        return cnn_num_params(int(d), int(K), config.conv_layers, stride=config.stride, padding=config.padding,
                              pool=config.pool, bias=config.bias)
    return None


def network_folder_name(config: RunConfig, d: int) -> str:
    """The store folder of a network: ``64x10x10x10`` (MLP: d, widths, K, the paper's
    name), ``64xcnn-8k3-8k3x10`` (CNN: channels k kernel per layer, plus ``-s2``,
    ``-same``, ``-avg`` where not the default) or ``64xmodel-mynet.buildx10``."""
    if config.network == "mlp":
        return "x".join(str(int(w)) for w in (d, *config.units, config.K))
    if config.network == "cnn":
        parts = [f"{c}k{k}" for c, k in config.conv_layers]
        parts += [f"s{config.stride}"] if config.stride != 1 else []
        parts += [config.padding] if config.padding != "valid" else []
        parts += [config.pool] if config.pool != "none" else []
        return f"{int(d)}xcnn-{'-'.join(parts)}x{config.K}"
    path, _, name = str(config.model).rpartition(":")
    return f"{int(d)}xmodel-{Path(path).stem}.{name}x{config.K}"


def network_label(config: RunConfig, d: int) -> str:
    """One line describing the network, for tables."""
    if config.network == "mlp":
        net = "-".join(map(str, (d, *config.units, config.K)))
        return f"{net}, {config.activation}, {'bias' if config.bias else 'no bias'}, {config.init} init"
    if config.network == "cnn":
        side = math.isqrt(int(d))
        return (f"cnn {conv_text(config.conv_layers)} on {side}×{side} images, stride {config.stride}, "
                f"{config.padding}, pool {config.pool}, {config.activation}, "
                f"{'bias' if config.bias else 'no bias'}")
    return f"{config.model} (d = {d}, K = {config.K})"


def network_words(config: RunConfig) -> list[str]:
    """The command-line words that choose the network of ``config`` beyond the MLP's
    (``--arch cnn --conv 8:3,8:3 …`` or ``--model FILE.py:FUNCTION``); ``[]`` for the MLP."""
    if config.network == "model":
        return ["--model", str(config.model)]
    if config.network != "cnn":
        return []
    words = ["--arch", "cnn", "--conv", conv_text(config.conv_layers)]
    for flag, value, default in (("--stride", config.stride, 1), ("--padding", config.padding, "valid"),
                                 ("--pool", config.pool, "none")):
        if value != default:
            words += [flag, str(value)]
    return words
