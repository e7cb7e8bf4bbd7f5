"""`tunelab predict`: the final model on new rows, scaled with the training-set statistics (or on texts)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from tunelab.app.predict_checks import check_feature_values
from tunelab.config.load import validate_experiment
from tunelab.config.schema import EncoderHeadModel
from tunelab.errors import DataError, RunFolderError
from tunelab.models import build_model
from tunelab.runs.layout import RunLayout
from tunelab.runs.records import read_json, write_text_atomic
from tunelab.train.losses import model_output_dim, point_prediction


def load_final_model(run_dir: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the final network from `final/params.json` and load its weights (weights_only)."""
    layout = RunLayout(run_dir)
    final = layout.final
    if not layout.final_model.exists() or not layout.final_params.exists():
        raise RunFolderError(f"{run_dir} has no final model; run tunelab final {run_dir}")
    try:
        payload = torch.load(layout.final_model, map_location="cpu", weights_only=True)
        config = read_json(layout.final_params)["config"]
    except Exception as exc:
        raise RunFolderError(f"{final} is damaged: {type(exc).__name__}") from None
    exp = validate_experiment(config, source=str(layout.final_params))
    try:  # a model.pt with missing keys or shapes other than params.json describes
        out_dim = model_output_dim(exp.train.loss, payload["task"], payload["output_dim"])
        model = build_model(exp.model, tuple(payload["input_shape"]), out_dim, seed=0)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        problem = " ".join(str(exc).split())[:160]
        raise RunFolderError(
            f"{layout.final_model} does not fit its params.json: {type(exc).__name__}: {problem}"
        ) from None
    model.eval()
    return model, {**payload, "loss": exp.train.loss, "model_config": exp.model}


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
    numeric = pd.concat(columns, axis=1).set_axis(names, axis=1)
    check_feature_values(numeric, frame, input_path)  # names the first bad cell by row and column
    return torch.from_numpy(numeric.to_numpy(dtype="float32"))


@torch.inference_mode()
def predict_file(run_dir: str | Path, input_path: str | Path) -> str:
    """Predictions as CSV text: the input's row index and one column per target (or the class)."""
    run_dir, input_path = Path(run_dir), Path(input_path)
    model, meta = load_final_model(run_dir)
    if isinstance(meta["model_config"], EncoderHeadModel):
        return _text_predictions(model, meta, read_texts(input_path))
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
    return _predictions(model(x).float(), meta)


def _predictions(outputs: torch.Tensor, meta: dict[str, Any], texts: Sequence[str] | None = None) -> str:
    """CSV text: row, the input text (text runs), then the class and its probability or each target."""
    out = point_prediction(outputs, meta["loss"])
    lead = ["row", "text"] if texts is not None else ["row"]

    def first(i: int) -> list[Any]:
        return [i, texts[i]] if texts is not None else [i]

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if meta["task"] == "classification":
        labels = meta["class_labels"] or [str(i) for i in range(meta["output_dim"])]
        probs = torch.softmax(out, dim=1)
        writer.writerow([*lead, "prediction", "probability"])
        for i, p in enumerate(probs.tolist()):
            k = max(range(len(p)), key=p.__getitem__)
            writer.writerow([*first(i), labels[k], f"{p[k]:.6f}"])
        return buffer.getvalue()
    if meta["target_scaler"]:
        out = out * torch.tensor(meta["target_scaler"]["std"]) + torch.tensor(meta["target_scaler"]["mean"])
    names = meta["target_names"] or [f"y{j}" for j in range(out.shape[1])]
    writer.writerow([*lead, *[f"prediction_{n}" for n in names]])
    for i, row in enumerate(out.tolist()):
        writer.writerow([*first(i), *[f"{v:.6g}" for v in row]])
    return buffer.getvalue()


TEXT_COLUMNS = ("text", "query")


def read_texts(input_path: Path) -> list[str]:
    """Texts to predict: a .txt file (one a line) or a CSV/TSV with a `text` or `query` column."""
    if not input_path.exists():
        raise DataError(f"input file not found: {input_path}")
    if input_path.suffix == ".txt":
        lines = input_path.read_text(encoding="utf-8").splitlines()
        return [line for line in lines if line.strip()]
    sep = "\t" if input_path.suffix == ".tsv" else ","
    try:
        frame = pd.read_csv(input_path, sep=sep, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"cannot read {input_path} as CSV: {type(exc).__name__}") from None
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    for name in TEXT_COLUMNS:
        if name in by_lower:
            return frame[by_lower[name]].astype(str).tolist()
    raise DataError(
        f"{input_path}: no text column; name it text or query in the header, or pass a .txt file with one text a line"
    )


@torch.inference_mode()
def predict_texts(run_dir: str | Path, texts: Sequence[str]) -> str:
    """Predictions of a text run (encoder_head) for the given texts, as CSV text with the texts echoed."""
    model, meta = load_final_model(Path(run_dir))
    if not isinstance(meta["model_config"], EncoderHeadModel):
        raise DataError(f"{run_dir} was trained on features, not texts; predict a CSV of its feature columns")
    return _text_predictions(model, meta, list(texts))


def _text_predictions(model: torch.nn.Module, meta: dict[str, Any], texts: list[str]) -> str:
    if not texts:
        raise DataError("no texts to predict")
    from tunelab.text.features import text_inputs

    return _predictions(model(text_inputs(meta["model_config"], texts)).float(), meta, texts)


def write_predictions(out: Path, text: str) -> None:
    """The predictions CSV written atomically (a half-written file never appears)."""
    write_text_atomic(out, text)
