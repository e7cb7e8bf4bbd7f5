"""The model a `tunelab train` run predicts with: its trial's best.pt plus the preprocessing the run saved.

`train` writes `preprocessing.json` (the training split's scalers, feature names, labels, fill values: the
same plain data the final model's `model.pt` carries beside its weights); `predict` then rebuilds the
network from the run's experiment.yaml and loads the best epoch's weights of the newest training
(a `--continue` folder when there is one, else the trial).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tunelab.data.dataset import Dataset
from tunelab.errors import RunFolderError
from tunelab.runs.layout import RunLayout
from tunelab.runs.records import read_json, write_json_atomic


def model_meta(data: Dataset) -> dict[str, Any]:
    """What predict needs besides the weights, as plain data (JSON and `weights_only` safe)."""
    return {
        "input_shape": list(data.input_shape),
        "output_dim": data.output_dim,
        "task": data.task,
        "feature_names": list(data.feature_names),
        "target_names": list(data.target_names),
        "class_labels": list(data.class_labels) if data.class_labels else None,
        "feature_scaler": data.feature_scaler.to_dict() if data.feature_scaler else None,
        "target_scaler": data.target_scaler.to_dict() if data.target_scaler else None,
        "feature_fill": dict(data.fill_values),  # predict fills an empty cell of these columns the same way
    }


def write_preprocessing(layout: RunLayout, data: Dataset) -> None:
    """`preprocessing.json` of a `tunelab train` run (the scalers were fitted on its training split)."""
    write_json_atomic(layout.preprocessing, {"format": 1, **model_meta(data)})


def trained_weights(layout: RunLayout) -> tuple[Path, dict[str, torch.Tensor]]:
    """The newest training's best epoch's weights and their file (its newest epoch without best.pt)."""
    from tunelab.app.continuation import train_parent
    from tunelab.train import checkpoint as ckpt

    trial = train_parent(layout)
    paths = [trial.best_checkpoint] if trial.best_checkpoint.exists() else []
    paths += [path for _, path in trial.epoch_checkpoints()]
    for path in paths:
        try:
            return path, ckpt.load_checkpoint(path)["model"]
        except Exception:  # a damaged file: an older checkpoint may still load
            continue
    raise RunFolderError(f"{trial.root} has no checkpoint that loads; run its tunelab train command again")


def train_run_payload(run_dir: Path) -> tuple[dict[str, Any], Path] | None:
    """A `tunelab train` run as the final model's payload (weights plus meta) and the weights' file;
    None when the run saved no preprocessing (a study, or a train run from before it was saved)."""
    layout = RunLayout(run_dir)
    if not layout.preprocessing.exists():
        return None
    try:
        meta = read_json(layout.preprocessing)
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{layout.preprocessing} is damaged: {type(exc).__name__}") from None
    path, state = trained_weights(layout)
    return {**meta, "state_dict": state}, path
