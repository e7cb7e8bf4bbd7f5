"""`tunelab predict`: the final model on new rows, scaled with the training-set statistics."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from tunelab.config.load import validate_experiment
from tunelab.errors import DataError, RunFolderError
from tunelab.models import build_model
from tunelab.runs.layout import RunLayout
from tunelab.runs.records import read_json
from tunelab.train.losses import model_output_dim, point_prediction


def load_final_model(run_dir: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the final network from `final/params.json` and load its weights (weights_only)."""
    final = RunLayout(run_dir).final
    if not (final / "model.pt").exists() or not (final / "params.json").exists():
        raise RunFolderError(f"{run_dir} has no final model; run tunelab final {run_dir}")
    try:
        payload = torch.load(final / "model.pt", map_location="cpu", weights_only=True)
        config = read_json(final / "params.json")["config"]
    except Exception as exc:
        raise RunFolderError(f"{final} is damaged: {type(exc).__name__}") from None
    exp = validate_experiment(config, source=str(final / "params.json"))
    out_dim = model_output_dim(exp.train.loss, payload["task"], payload["output_dim"])
    model = build_model(exp.model, tuple(payload["input_shape"]), out_dim, seed=0)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, {**payload, "loss": exp.train.loss}


def _features(frame: pd.DataFrame, names: list[str], input_path: Path) -> torch.Tensor:
    """Columns by the training feature names; `col=value` names are one-hot indicators of `col`."""
    columns = []
    for name in names:
        if name in frame.columns:
            columns.append(pd.to_numeric(frame[name], errors="coerce"))
            continue
        col, sep, value = name.partition("=")
        if sep and col in frame.columns:
            columns.append((frame[col].astype(str).fillna("NA") == value).astype(float))
            continue
        raise DataError(f"{input_path}: missing feature column {name!r}; expected columns: {', '.join(names[:20])}")
    x = pd.concat(columns, axis=1).to_numpy(dtype="float32")
    if pd.isna(x).any():
        raise DataError(f"{input_path}: empty or non-numeric values in feature columns")
    return torch.from_numpy(x)


@torch.inference_mode()
def predict_file(run_dir: str | Path, input_path: str | Path) -> str:
    """Predictions as CSV text: the input's row index and one column per target (or the class)."""
    run_dir, input_path = Path(run_dir), Path(input_path)
    model, meta = load_final_model(run_dir)
    if not input_path.exists():
        raise DataError(f"input file not found: {input_path}")
    sep = "\t" if input_path.suffix == ".tsv" else ","
    try:
        frame = pd.read_csv(input_path, sep=sep)
    except Exception as exc:
        raise DataError(f"cannot read {input_path} as CSV: {type(exc).__name__}") from None
    x = _features(frame, meta["feature_names"], input_path)
    if meta["feature_scaler"]:
        mean = torch.tensor(meta["feature_scaler"]["mean"]).reshape(1, -1)
        std = torch.tensor(meta["feature_scaler"]["std"]).reshape(1, -1)
        x = (x - mean) / std
    x = x.reshape(len(x), *meta["input_shape"])
    out = point_prediction(model(x).float(), meta["loss"])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if meta["task"] == "classification":
        labels = meta["class_labels"] or [str(i) for i in range(meta["output_dim"])]
        probs = torch.softmax(out, dim=1)
        writer.writerow(["row", "prediction", "probability"])
        for i, p in enumerate(probs.tolist()):
            k = max(range(len(p)), key=p.__getitem__)
            writer.writerow([i, labels[k], f"{p[k]:.6f}"])
        return buffer.getvalue()
    if meta["target_scaler"]:
        out = out * torch.tensor(meta["target_scaler"]["std"]) + torch.tensor(meta["target_scaler"]["mean"])
    names = meta["target_names"] or [f"y{j}" for j in range(out.shape[1])]
    writer.writerow(["row", *[f"prediction_{n}" for n in names]])
    for i, row in enumerate(out.tolist()):
        writer.writerow([i, *[f"{v:.6g}" for v in row]])
    return buffer.getvalue()
