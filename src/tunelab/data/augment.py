"""uint8 image batches to float, with random crop and flip on training batches only.

Attached to a model as a forward pre-hook, so the trainer, the final model and evaluation all
see the same conversion, and augmentation follows `model.training`: it runs on training
batches and never on validation, test or `eval_train` passes. Random draws come from torch's
global CPU generator, which `build_model` seeds with the trial seed and checkpoints save and
restore, so an augmented run is reproducible and resumes exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from tunelab.config.schema import Augment


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 0..1 (any other dtype passes unchanged)."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


def random_crop(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero-pad (B, C, H, W) by `padding` per side, then cut one random H x W window per image."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (b, 2)).to(x.device)
    rows = (offsets[:, 0:1] + torch.arange(h, device=x.device)).view(b, 1, h, 1)  # (B, 1, H, 1)
    cols = (offsets[:, 1:2] + torch.arange(w, device=x.device)).view(b, 1, 1, w)  # (B, 1, 1, W)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


def horizontal_flip(x: torch.Tensor) -> torch.Tensor:
    """Mirror a random half of the images left-right."""
    flip = (torch.rand(x.shape[0]) < 0.5).to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)


def augment_batch(x: torch.Tensor, augment: Augment) -> torch.Tensor:
    """The configured augmentations, in a fixed order (crop, then flip)."""
    if augment.crop_padding > 0:
        x = random_crop(x, augment.crop_padding)
    if augment.horizontal_flip:
        x = horizontal_flip(x)
    return x


def attach_image_input(model: nn.Module, augment: Augment) -> nn.Module:
    """Make `model` take uint8 image batches; returns the same model (its state dict is unchanged)."""

    def pre_hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = to_float(args[0])
        if module.training:
            x = augment_batch(x, augment)
        return (x, *args[1:])

    model.register_forward_pre_hook(pre_hook)
    return model
