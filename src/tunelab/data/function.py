"""`data.function: "module:function"`: arrays from the user's own code.

The module must be importable; the current directory is put first on `sys.path` so a file next to
the experiment works. The function takes no arguments and returns `(x, y)` or a dict with `x`, `y`
and optionally `x_val`, `y_val`, `x_test`, `y_test`, `task`, `feature_names` (numpy or torch arrays).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tunelab.config.schema import DataSection
from tunelab.data.raw import RawData
from tunelab.errors import ConfigError
from tunelab.importing import import_user_module

KEY = "data.function"
ALLOWED_KEYS = ("x", "y", "x_val", "y_val", "x_test", "y_test", "task", "feature_names")


def _fail(message: str) -> ConfigError:
    return ConfigError(" ".join(message.split()), key=KEY)


def _call(spec: str) -> Any:
    module_name, _, func_name = spec.partition(":")
    module = import_user_module(module_name, key=KEY)
    func = getattr(module, func_name, None)
    if not callable(func):
        raise _fail(f"module {module_name!r} has no function {func_name!r}")
    try:
        return func()
    except Exception as exc:
        raise _fail(f"{spec}() raised {type(exc).__name__}: {exc}") from exc


def _array(value: Any, what: str) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise _fail(f"{what} is not an array: {type(value).__name__}") from exc
    if array.ndim == 0:
        raise _fail(f"{what} must have one row per sample, got a scalar")
    return array


def _features(value: Any, what: str) -> np.ndarray:
    x = _array(value, what)
    if x.dtype.kind not in "fiub":
        raise _fail(f"{what} must be numeric, got dtype {x.dtype}")
    return (x[:, None] if x.ndim == 1 else x).astype(np.float64)


def _as_dict(result: Any) -> dict[str, Any]:
    if isinstance(result, dict):
        unknown = sorted(set(result) - set(ALLOWED_KEYS))
        if unknown:
            raise _fail(f"returned unknown keys {', '.join(unknown)}; allowed: {', '.join(ALLOWED_KEYS)}")
        if "x" not in result or "y" not in result:
            raise _fail("returned a dict without 'x' and 'y'")
        return result
    if isinstance(result, tuple | list) and len(result) == 2:
        return {"x": result[0], "y": result[1]}
    raise _fail(f"must return (x, y) or a dict with x and y, got {type(result).__name__}")


def load_function(cfg: DataSection, path: Path | None = None) -> RawData:
    """Call the user's function and check what comes back (shapes, lengths, keys)."""
    spec = cfg.function or ""
    parts = _as_dict(_call(spec))
    xs, ys, native = [], [], {}
    start = 0
    for split, suffix in (("train", ""), ("val", "_val"), ("test", "_test")):
        if f"x{suffix}" not in parts and f"y{suffix}" not in parts:
            continue
        if f"x{suffix}" not in parts or f"y{suffix}" not in parts:
            raise _fail(f"returned only one of x{suffix} and y{suffix}")
        x = _features(parts[f"x{suffix}"], f"x{suffix}")
        y = _array(parts[f"y{suffix}"], f"y{suffix}")
        if len(x) != len(y):
            raise _fail(f"x{suffix} has {len(x)} rows but y{suffix} has {len(y)}")
        if xs and x.shape[1:] != xs[0].shape[1:]:
            raise _fail(f"x{suffix} rows have shape {x.shape[1:]}, x rows have {xs[0].shape[1:]}")
        if y.ndim > 2:
            raise _fail(f"y{suffix} must be (n,) or (n, targets), got shape {y.shape}")
        xs.append(x)
        ys.append(y)
        native[split] = np.arange(start, start + len(x))
        start += len(x)
    task = parts.get("task")
    if task is not None and task not in ("regression", "classification"):
        raise _fail(f"returned task {task!r}; allowed: regression, classification")
    names = [str(n) for n in parts.get("feature_names") or []]
    n_features = int(np.prod(xs[0].shape[1:]))
    if names and len(names) != n_features:
        raise _fail(f"returned {len(names)} feature_names for {n_features} features")
    y_all = np.concatenate(ys)
    return RawData(
        x=np.concatenate(xs),
        y=y_all.astype(str) if y_all.dtype == object else y_all,
        task=task,
        source=f"function {spec}",
        feature_names=names or ([f"x{i}" for i in range(n_features)] if xs[0].ndim == 2 else []),
        target_names=["y"] if y_all.ndim == 1 else [f"y{i}" for i in range(y_all.shape[1])],
        native=native if len(native) > 1 else None,
    )
