"""MODEL_FAMILIES: adding a family is one module and one line here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tunelab.models.cnn import build_cnn
from tunelab.models.encoder_head import build_encoder_head
from tunelab.models.mlp import build_mlp
from tunelab.models.python_builder import build_python
from tunelab.models.resnet import build_resnet

ModelBuilder = Callable[[Any, tuple[int, ...], int], nn.Module]

MODEL_FAMILIES: dict[str, ModelBuilder] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
    "resnet": build_resnet,
    "python": build_python,
    "encoder_head": build_encoder_head,
}


def build_model(cfg: Any, input_shape: tuple[int, ...], output_dim: int, seed: int) -> nn.Module:
    """Seed the global RNG, then build: initialisation depends on the trial seed and nothing else."""
    torch.manual_seed(seed)
    return MODEL_FAMILIES[cfg.family](cfg, tuple(input_shape), int(output_dim))
