"""`load_dataset`: the one entry point from a `data` section to split, scaled tensors.

Rows come from a built-in, a CSV/TSV file or a user function (`RawData`), are split
(`split.plan_splits`), gaps are filled with train medians, and features/targets are scaled with
statistics of the training rows only. `data_hash` fingerprints exactly the tensors handed out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from tunelab.config.schema import DataSection, TaskSection
from tunelab.data.dataset import Dataset, Scaler, Split
from tunelab.data.folds import fold_rows
from tunelab.data.function import load_function
from tunelab.data.images import load_image_folder
from tunelab.data.locate import data_roots, download_root, find_files, missing_error
from tunelab.data.raw import RawData, encode_labels, infer_task
from tunelab.data.registry import BUILTINS, check_name, dataset_defaults
from tunelab.data.split import fill_missing, fit_scaler, gap_medians, plan_splits, subsample_rows
from tunelab.data.tabular import load_csv
from tunelab.errors import ConfigError

SPLITS = ("train", "val", "test")


def _load_raw(cfg: DataSection, data_dir: str | None) -> RawData:
    """Rows of the named source; a missing local copy is downloaded only when `data.download` says so."""
    if cfg.name == "csv":
        return load_csv(cfg)
    if cfg.name == "function":
        return load_function(cfg)
    spec = BUILTINS[cfg.name]
    if not spec.file_based:
        return spec.loader(cfg, None)
    roots = data_roots(data_dir, cfg.data_dir)
    found = find_files(spec.name, spec.files, roots)
    if found is None and cfg.download and spec.download is not None:
        dest = download_root(data_dir, cfg.data_dir)
        spec.download(dest)
        found = find_files(spec.name, spec.files, [dest])
    if found is None:
        chosen_by_file = "data.data_dir" if cfg.data_dir and not data_dir else None
        raise missing_error(spec.name, spec.files, roots, spec.how_to_get, key=chosen_by_file)
    return spec.loader(cfg, found)


def _resolve_task(name: str, raw: RawData, task: TaskSection) -> str:
    """A built-in's task is fixed; for user data `auto` takes the declared task, else infers from y."""
    declared = BUILTINS[name].task if name in BUILTINS else raw.task
    if task.type == "auto":
        return declared or infer_task(raw.y)
    if name in BUILTINS and task.type != declared:
        raise ConfigError(f"data set {name} is a {declared} data set, got {task.type}", key="task.type")
    return task.type


def _targets(raw: RawData, task: str) -> tuple[torch.Tensor, list[str] | None, int]:
    """int64 (n,) class codes with their labels, or float32 (n, k) regression targets."""
    if task == "classification":
        if raw.class_labels is not None:
            return torch.as_tensor(raw.y, dtype=torch.int64), list(raw.class_labels), len(raw.class_labels)
        if raw.y.ndim == 2 and raw.y.shape[1] > 1:
            raise ConfigError(
                f"classification needs one label per row, got targets of shape {raw.y.shape}", key="task.type"
            )
        codes, labels = encode_labels(raw.y)
        return torch.from_numpy(codes), labels, len(labels)
    if raw.y.dtype.kind not in "fiub":
        raise ConfigError(
            f"regression needs a numeric target, got values like {raw.y.reshape(-1)[0]!r}", key="task.type"
        )
    y = raw.y.astype(np.float32)
    y = y[:, None] if y.ndim == 1 else y
    return torch.from_numpy(np.ascontiguousarray(y)), None, int(y.shape[1])


def _hash(splits: dict[str, Split | None]) -> str:
    """sha256 (16 hex) over every final tensor's shape and bytes, and the texts of text data."""
    digest = hashlib.sha256()
    for name in SPLITS:
        part = splits[name]
        digest.update(name.encode())
        if part is None:
            digest.update(b"none")
            continue
        for tensor in (part.x, part.y):
            digest.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
            digest.update(tensor.contiguous().numpy().tobytes())
        if part.texts is not None:
            digest.update("\x1e".join(part.texts).encode("utf-8"))
    return digest.hexdigest()[:16]


def load_dataset(
    cfg: DataSection, task: TaskSection, *, data_dir: str | None = None, merge_val: bool = False
) -> Dataset:
    """Load, split and scale the data a study trains on; scalers see training rows only.

    Args:
        cfg: the experiment's `data` section (`null` standardize keys take the data set's default).
        task: the `task` section; `auto` lets the data set or the target column decide.
        data_dir: `--data-dir` from the command line; wins over `data.data_dir` and `$TUNELAB_DATA_DIR`.
        merge_val: for the final model: train = train + val (scaler refitted on them), val empty.

    Raises:
        ConfigError: unknown data set, column, task mismatch or broken user function.
        DataError: a missing or unreadable file (the message says where it looked and what to do).
    """
    check_name(cfg.name)
    if cfg.name == "image_folder":  # uint8 memory-mapped images: their own path (data/images.py)
        return load_image_folder(cfg, task, merge_val=merge_val)
    raw = _load_raw(cfg, data_dir)
    task_name = _resolve_task(cfg.name, raw, task)
    rows = subsample_rows(plan_splits(len(raw.y), raw.native, cfg), cfg.max_rows, cfg.split_seed)
    if cfg.cv_folds is not None:  # checked on every load, so a bad k stops the study before it starts
        folded = fold_rows(rows["train"], rows["val"], cfg.cv_folds, cfg.cv_fold or 0, cfg.split_seed)
        if cfg.cv_fold is not None and not merge_val:
            rows = {**rows, **folded}
    if merge_val:
        rows = {
            "train": np.concatenate([rows["train"], rows["val"]]),
            "val": rows["val"][:0],
            "test": rows["test"],
        }
    x_all = torch.from_numpy(np.ascontiguousarray(fill_missing(raw.x, rows["train"]), dtype=np.float32))
    y_all, class_labels, output_dim = _targets(raw, task_name)

    defaults = dataset_defaults(cfg.name)
    standardize = bool(defaults["standardize"] if cfg.standardize is None else cfg.standardize)
    standardize_target = bool(
        defaults["standardize_target"] if cfg.standardize_target is None else cfg.standardize_target
    )
    index = {name: torch.from_numpy(np.asarray(idx, dtype=np.int64)) for name, idx in rows.items()}
    feature_scaler: Scaler | None = None
    if standardize and x_all[0].numel() > 0:
        feature_scaler = fit_scaler(x_all[index["train"]])
    target_scaler: Scaler | None = None
    if standardize_target and task_name == "regression":
        target_scaler = fit_scaler(y_all[index["train"]])

    splits: dict[str, Split | None] = {}
    for name in SPLITS:
        idx = index[name]
        if name == "test" and len(idx) == 0:
            splits[name] = None
            continue
        x, y = x_all[idx], y_all[idx]
        if feature_scaler is not None:
            x = feature_scaler.transform(x)
        if target_scaler is not None:
            y = target_scaler.transform(y)
        texts = [raw.texts[i] for i in rows[name]] if raw.texts is not None else None
        splits[name] = Split(x=x.contiguous(), y=y.contiguous(), texts=texts)

    train, val = splits["train"], splits["val"]
    assert train is not None and val is not None  # plan_splits always returns train and val rows
    return Dataset(
        name=cfg.name,
        task=task_name,  # type: ignore[arg-type]
        train=train,
        val=val,
        test=splits["test"],
        input_shape=tuple(int(d) for d in raw.x.shape[1:]),
        output_dim=output_dim,
        feature_names=list(raw.feature_names),
        target_names=list(raw.target_names),
        class_labels=class_labels,
        feature_scaler=feature_scaler,
        target_scaler=target_scaler,
        data_hash=_hash(splits),
        source=raw.source or str(Path(cfg.path or cfg.name)),
        missing_per_feature=_missing_per_feature(raw.x),
        rows_loaded=len(raw.y),
        fill_values=_fill_values(raw, rows["train"]),
    )


def _fill_values(raw: RawData, train_rows: np.ndarray) -> dict[str, float]:
    """The train median of every feature when the data have gaps, by name (none for unnamed or image columns)."""
    fills = gap_medians(raw.x, train_rows)
    names = raw.feature_names
    return {names[c]: v for c, v in fills.items() if c < len(names)} if len(names) == raw.x[0].size else {}


def _missing_per_feature(x: np.ndarray) -> tuple[int, ...]:
    """NaN count of each feature column before filling (empty for non-float or featureless data)."""
    if x.dtype.kind != "f" or x.ndim < 2 or x[0].size == 0:
        return ()
    return tuple(int(v) for v in np.isnan(x.reshape(len(x), -1)).sum(axis=0))


def describe_split_sizes(ds: Dataset) -> str:
    """Split sizes for logs and reports, e.g. `train 180 / val 60 / test none`."""
    test = str(len(ds.test)) if ds.test is not None else "none"
    return f"train {len(ds.train)} / val {len(ds.val)} / test {test}"
