"""`family: python`: the user's own builder, the one place the experiment file runs user code."""

from __future__ import annotations

from torch import nn

from tunelab.config.schema import PythonModel
from tunelab.errors import ConfigError
from tunelab.importing import import_object


def build_python(cfg: PythonModel, input_shape: tuple[int, ...], output_dim: int) -> nn.Module:
    """Call `module:function(params, input_shape, output_dim)` and check it returned a module."""
    builder = import_object(cfg.builder, key="model.builder")
    try:
        model = builder(dict(cfg.params), tuple(input_shape), int(output_dim))
    except Exception as exc:  # the user's code: report it as their error, in one line
        raise ConfigError(f"{cfg.builder} raised {type(exc).__name__}: {exc}", key="model.builder") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"{cfg.builder} must return a torch.nn.Module, got {type(model).__name__}", key="model.builder"
        )
    return model
