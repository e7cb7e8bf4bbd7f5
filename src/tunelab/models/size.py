"""Estimate a network's memory before building it: parameters, optimizer state and one batch's
activations, measured on PyTorch's meta device (shapes only, nothing allocated).

`hidden_dims: [65536, 65536, 65536]` is inside every per-layer bound and still 8.6 billion
parameters; this refuses it in one line naming the estimate and the limit, which the user can
raise with `TUNELAB_MAX_MODEL_GB`.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import nn

from tunelab.config.space_limits import env_limit
from tunelab.errors import ConfigError

MAX_MODEL_GB_ENV = "TUNELAB_MAX_MODEL_GB"
DEFAULT_MAX_MODEL_GB = 16.0  # past this a model is a typo on the machines tunelab targets
# fp32 weights, their gradients and Adam's two moments: four copies of every parameter
BYTES_PER_PARAM = 4 * 4
# each activation is kept for backward and has a gradient of its own
BYTES_PER_ACTIVATION = 4 * 2
# built-in and buildable on the meta device; others load weights or user code
ESTIMATED_FAMILIES = ("mlp", "cnn", "resnet")
# `_estimate_key` -> (parameters, bytes): every trial's model is checked when it is built (and again
# for its cost), a meta-device forward of 2-3 ms each for seed 000's MLP
_ESTIMATES: dict[tuple[Any, ...], tuple[int, int]] = {}


def max_model_gb() -> float:
    """The limit in force: `$TUNELAB_MAX_MODEL_GB` when set to a positive number, else the default."""
    return env_limit(MAX_MODEL_GB_ENV, DEFAULT_MAX_MODEL_GB, float, "a positive number of GB")


def estimate_bytes(
    cfg: Any, input_shape: tuple[int, ...], output_dim: int, batch_rows: int
) -> tuple[int, int] | None:
    """(parameters, bytes for training one batch), or None for a family not estimated here.
    Cached per model section and shapes: the estimate depends on nothing else."""
    from tunelab.models.registry import MODEL_FAMILIES

    if cfg.family not in ESTIMATED_FAMILIES:
        return None
    key = _estimate_key(cfg, input_shape, output_dim, batch_rows)
    if key is not None and key in _ESTIMATES:
        return _ESTIMATES[key]
    with torch.device("meta"):
        model = MODEL_FAMILIES[cfg.family](cfg, tuple(input_shape), int(output_dim))
        n_params = sum(p.numel() for p in model.parameters())
        activations = _activation_numel(model, (max(1, batch_rows), *input_shape))
    found = n_params, n_params * BYTES_PER_PARAM + activations * BYTES_PER_ACTIVATION
    if key is not None:
        _ESTIMATES[key] = found
    return found


def _estimate_key(cfg: Any, input_shape: tuple[int, ...], output_dim: int, batch_rows: int) -> tuple[Any, ...] | None:
    """What an estimate depends on: the model section, where a dropout rate counts only as zero or not
    (a rate changes no shape, but a zero rate builds no Dropout layer), and the shapes. A TPE study
    draws a new dropout rate for every trial."""
    dump = getattr(cfg, "model_dump", None)
    if dump is None:
        return None
    fields = {k: v > 0 if "dropout" in k and isinstance(v, float) else v for k, v in dump(mode="json").items()}
    return json.dumps(fields, sort_keys=True), tuple(input_shape), int(output_dim), int(batch_rows)


def check_model_size(cfg: Any, input_shape: tuple[int, ...], output_dim: int, batch_rows: int) -> None:
    """Refuse a model whose estimated training memory is past the limit, before it is built.

    Raises:
        ConfigError: naming the parameters, the estimate and the limit (key `model`).
    """
    estimate = estimate_bytes(cfg, input_shape, output_dim, batch_rows)
    if estimate is None:
        return
    n_params, needed = estimate
    limit = max_model_gb()
    if needed > limit * 1e9:
        raise ConfigError(
            f"this model has {n_params:,} parameters and needs about {needed / 1e9:.1f} GB to train "
            f"(batch of {batch_rows} rows), over the limit of {limit:g} GB; use smaller layers or batches, "
            f"or raise the limit with {MAX_MODEL_GB_ENV}=N",
            key="model",
        )


def _activation_numel(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Elements every leaf module outputs for one batch (a forward pass on meta tensors)."""
    total = 0

    def count(_module: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    handles = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.empty(shape, device="meta"))
    except Exception:  # a shape the model rejects is reported by the real build; count parameters only
        total = 0
    finally:
        for handle in handles:
            handle.remove()
    return total
