"""Networks and losses: the built-in fully-connected network and the per-sample losses.

Internal: the stable API is ``hessrank.*``; names here may change between versions."""

from .._lazy import lazy_names

#: per submodule, the names it offers here (each imported on first use, none with the package)
__getattr__, __dir__, __all__ = lazy_names(__name__, {
    "base": ("Model", "ParameterLayout"),
    "cnn": ("build_cnn", "cnn_num_params"),
    "function": ("function_model",),
    "losses": ("Loss", "get_loss"),
    "mlp": ("MLP",),
    "user": ("load_user_model",),
})
