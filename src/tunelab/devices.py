"""Which torch device a configuration runs on; shared by training, text features and the final model."""

from __future__ import annotations

import torch

from tunelab.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` takes a GPU when one is visible; asking for cuda without one is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("cuda requested but no GPU is visible; use auto or cpu", key="train.device")
    return torch.device(name)
