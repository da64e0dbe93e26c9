"""Networks and losses: the built-in fully-connected network and the per-sample losses.

Internal: the stable API is ``hessrank.*``; names here may change between versions."""

from .base import Model, ParameterLayout
from .cnn import build_cnn, cnn_num_params
from .function import function_model
from .losses import Loss, get_loss
from .mlp import MLP
from .user import load_user_model

__all__ = [
    "MLP", "Loss", "get_loss", "Model", "ParameterLayout", "function_model", "build_cnn", "cnn_num_params",
    "load_user_model",
]
