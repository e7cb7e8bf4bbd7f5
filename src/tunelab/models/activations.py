"""One place that maps activation names to modules, shared by every family."""

from __future__ import annotations

from torch import nn

ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module (they hold no parameters, so construction uses no RNG)."""
    return ACTIVATION_MODULES[name]()
