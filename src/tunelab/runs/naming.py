"""Trial folder names: the one place that turns a trial's params into `lr0.00133_do0.475_hd32`.

Names are for people scanning a `trials/` listing, so floats keep 3 significant digits (the exact
values are in each trial's params.json) and long key paths become short, familiar labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ABBREVIATIONS: dict[str, str] = {
    "lr": "lr",
    "hidden_dim": "hdim",
    "hidden_dims": "hd",
    "dropout": "do",
    "batch_size": "bs",
    "weight_decay": "wd",
    "optimizer": "opt",
    "epochs": "ep",
    "activation": "act",
    "num_layers": "nl",
    "momentum": "mom",
    "seed": "seed",
    "kernel_size": "k",
    "loss": "loss",
}
SIGNIFICANT_DIGITS = 3


def value_text(value: Any) -> str:
    """A param value as a name shows it: floats to 3 significant digits, lists joined by `x`."""
    if isinstance(value, list | tuple):
        return "x".join(value_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:.{SIGNIFICANT_DIGITS}g}"
    return str(value)


def trial_name(params: Mapping[str, Any], limit: int = 80) -> str:
    """A folder-safe name from a trial's params, e.g. `lr0.00133_hdim128_do0`; `base` when none."""
    parts = []
    for key, value in params.items():
        last = key.split(".")[-1]
        parts.append(f"{ABBREVIATIONS.get(last, last)}{value_text(value)}")
    name = "_".join(parts) or "base"
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in name)
    return safe[:limit]
