"""Hygiene checks of the prepared data (seed 004's rows), computed once per run folder.

What the splits hold, measured and written as plain data (`data_checks.json`); nothing is
changed. The writer is `train/data_checks.py`; the rule that turns these numbers into findings is
`diagnose/data_checks.py`.

- rows duplicated across train / val / test (identical features; texts for text data);
- class counts per split (classification);
- constant columns in train, and columns with no value at all before the median fill;
- target leakage: a single feature that alone predicts the validation target almost perfectly
  (binned on train quantiles, then the majority class / mean target of each bin).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from tunelab.data.dataset import Dataset, Split

LEAK_BINS = 32  # quantile bins of one feature; enough for a monotone or a categorical relation
MAX_LEAK_FEATURES = 512  # pixels of an image are no single-feature leaks; skip wide inputs
HASH_CHUNK_ROWS = 4096
FORMAT = 1


def _row_hashes(split: Split) -> Iterator[str]:
    """A digest per row of features (or text), read chunk by chunk (memory-mapped images too)."""
    if split.texts is not None:
        for text in split.texts:
            yield hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()
        return
    for start in range(0, len(split), HASH_CHUNK_ROWS):
        block = split.x[start : start + HASH_CHUNK_ROWS].reshape(min(HASH_CHUNK_ROWS, len(split) - start), -1)
        block = block.contiguous().numpy()
        for row in block:
            yield hashlib.blake2b(row.tobytes(), digest_size=12).hexdigest()


def duplicates_across_splits(data: Dataset) -> dict[str, Any]:
    """Rows of one split whose features also appear in another: the later split's rows are counted."""
    splits = {"train": data.train, "val": data.val, **({"test": data.test} if data.test is not None else {})}
    hashes = {name: list(_row_hashes(split)) for name, split in splits.items()}
    out: dict[str, Any] = {}
    names = list(hashes)
    for i, a in enumerate(names):
        seen = set(hashes[a])
        for b in names[i + 1 :]:
            rows = [j for j, h in enumerate(hashes[b]) if h in seen]
            out[f"{a}_{b}"] = {"rows": len(rows), "of": len(hashes[b]), "examples": rows[:5]}
    out["within_train"] = len(hashes["train"]) - len(set(hashes["train"]))
    return out


def class_balance(data: Dataset) -> dict[str, Any] | None:
    """Rows per class in each split (classification only)."""
    if data.task != "classification":
        return None
    labels = data.class_labels or [str(i) for i in range(data.output_dim)]
    out = {}
    for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        if split is None:
            continue
        counts = torch.bincount(split.y.reshape(-1), minlength=len(labels)).tolist()
        out[name] = dict(zip(labels, counts, strict=True))
    return out


def _columns(data: Dataset) -> tuple[np.ndarray | None, str]:
    """Train features as a 2-D float array, or None and why the column checks do not apply."""
    if data.is_text:
        return None, "text data: no feature columns"
    if data.is_image:
        return None, "image data: pixels are not columns"
    x = data.train.x.reshape(len(data.train), -1)
    if x.shape[1] == 0:
        return None, "no feature columns"
    return x.double().numpy(), ""


def _names(data: Dataset, width: int) -> list[str]:
    return list(data.feature_names) if len(data.feature_names) == width else [f"x{i}" for i in range(width)]


def _leak_score(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, k: int) -> float:
    """Validation accuracy (k classes) or R² (k=0) of predicting y from one feature's quantile bin."""
    edges = np.unique(np.quantile(train_x, np.linspace(0, 1, LEAK_BINS + 1)[1:-1]))
    tb, vb = np.searchsorted(edges, train_x), np.searchsorted(edges, val_x)
    nb = len(edges) + 1
    if k:
        table = np.zeros((nb, k))
        np.add.at(table, (tb, train_y), 1)
        majority = np.bincount(train_y, minlength=k).argmax()
        guess = np.where(table.sum(1) > 0, table.argmax(1), majority)
        return float((guess[vb] == val_y).mean())
    sums, counts = np.bincount(tb, train_y, nb), np.bincount(tb, minlength=nb)
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), train_y.mean())
    ss_tot = float(((val_y - val_y.mean()) ** 2).sum())
    return 1.0 - float(((val_y - mean[vb]) ** 2).sum()) / ss_tot if ss_tot > 0 else 0.0


def single_feature_leaks(data: Dataset, x: np.ndarray, names: list[str]) -> dict[str, Any]:
    """The feature that alone predicts the validation target best, and its score beside the baseline."""
    if x.shape[1] > MAX_LEAK_FEATURES:
        return {"skipped": f"{x.shape[1]} features (more than {MAX_LEAK_FEATURES})"}
    if len(data.val) == 0:
        return {"skipped": "no validation rows"}
    val_x = data.val.x.reshape(len(data.val), -1).double().numpy()
    classification = data.task == "classification"
    if classification:
        train_y, val_y, k = data.train.y.numpy(), data.val.y.numpy(), data.output_dim
        baseline = float((val_y == np.bincount(train_y, minlength=k).argmax()).mean())
        score_name = "val_accuracy"
    else:
        if data.train.y.reshape(len(data.train), -1).shape[1] != 1:
            return {"skipped": "more than one regression target"}
        train_y, val_y, k = data.train.y.reshape(-1).double().numpy(), data.val.y.reshape(-1).double().numpy(), 0
        baseline, score_name = 0.0, "val_r2"
    scores = [_leak_score(x[:, j], train_y, val_x[:, j], val_y, k) for j in range(x.shape[1])]
    best = int(np.argmax(scores))
    return {"score": score_name, "baseline": round(baseline, 4), "best_feature": names[best],
            "best_score": round(scores[best], 4),
            "top": sorted(((names[j], round(s, 4)) for j, s in enumerate(scores)), key=lambda t: -t[1])[:5]}


def check_data(data: Dataset) -> dict[str, Any]:
    """Every check over the prepared splits, as JSON-ready data."""
    x, why = _columns(data)
    out: dict[str, Any] = {
        "format": FORMAT,
        "data_hash": data.data_hash,
        "task": data.task,
        "rows": {"train": len(data.train), "val": len(data.val), "test": len(data.test) if data.test else 0},
        "duplicates": duplicates_across_splits(data),
        "class_balance": class_balance(data),
    }
    if x is None:
        out["columns"] = {"skipped": why}
        out["leakage"] = {"skipped": why}
        return out
    names = _names(data, x.shape[1])
    constant = [names[j] for j in np.flatnonzero(np.ptp(x, axis=0) == 0)] if len(x) else []
    missing = list(data.missing_per_feature)
    all_missing = [names[j] for j, m in enumerate(missing) if m and m >= data.rows_loaded]
    out["columns"] = {
        "constant_in_train": constant,
        "all_missing": all_missing,
        "missing_values": {names[j]: m for j, m in enumerate(missing) if m} if len(missing) == len(names) else {},
    }
    out["leakage"] = single_feature_leaks(data, x, names)
    return out
