"""Networks and losses: the built-in fully-connected network and the per-sample losses."""

from .base import Model, ParameterLayout
from .cnn import build_cnn, cnn_num_params, parse_conv
from .function import FunctionModel, function_model, leaf_name
from .losses import Loss, get_loss
from .mlp import BIAS_INIT_STD, MLP
from .user import load_user_model

__all__ = ["MLP", "BIAS_INIT_STD", "Loss", "get_loss", "Model", "ParameterLayout", "FunctionModel", "function_model",
           "leaf_name", "build_cnn", "cnn_num_params", "parse_conv", "load_user_model"]
