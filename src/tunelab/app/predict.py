"""`tunelab predict` and `tunelab.predict`: the final model on new rows, as the loader and the training-set
statistics prepared them (or on texts)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from tunelab.app.predict_checks import check_feature_values
from tunelab.app.predict_inputs import Rows, as_frame, id_column, read_texts
from tunelab.app.trained_model import train_run_payload
from tunelab.config.load import validate_experiment
from tunelab.config.schema import EncoderHeadModel
from tunelab.data.raw_inputs import as_loaded
from tunelab.errors import DataError, RunFolderError
from tunelab.models import build_model
from tunelab.runs.claim import load_run_experiment
from tunelab.runs.layout import RunLayout, not_a_run_folder
from tunelab.runs.records import read_json, write_text_atomic
from tunelab.train.losses import model_output_dim, point_prediction

log = logging.getLogger(__name__)


def load_final_model(run_dir: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the final network from `final/params.json` and load its weights (weights_only); a
    `tunelab train` run predicts with its trial's best epoch and the preprocessing it saved."""
    layout = RunLayout(run_dir)
    final = layout.final_of()
    if final.model.exists() and final.params.exists():
        try:
            payload = torch.load(final.model, map_location="cpu", weights_only=True)
            config = read_json(final.params)["config"]
        except Exception as exc:
            raise RunFolderError(f"{final.root} is damaged: {type(exc).__name__}") from None
        exp = validate_experiment(config, source=str(final.params))
        weights, described = final.model, "its params.json"
    else:
        trained = train_run_payload(run_dir) if layout.experiment_yaml.exists() else None
        if trained is None:
            raise no_final_model(layout, run_dir)
        payload, weights = trained
        exp = load_run_experiment(run_dir)
        described = "the run's experiment.yaml"
    try:  # a model.pt with missing keys or shapes other than params.json describes
        out_dim = model_output_dim(exp.train.loss, payload["task"], payload["output_dim"])
        model = build_model(exp.model, tuple(payload["input_shape"]), out_dim, seed=0)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        problem = " ".join(str(exc).split())[:160]
        raise RunFolderError(
            f"{weights} does not fit {described}: {type(exc).__name__}: {problem}"
        ) from None
    model.eval()
    return model, {**payload, "loss": exp.train.loss, "model_config": exp.model, "data_name": exp.data.name}


def no_final_model(layout: RunLayout, run_dir: Path) -> RunFolderError:
    """Why there is no final model to predict with, and the command that makes one: a folder that is
    no run folder, or one `tunelab train` made (no study to pick a final configuration from), says so
    instead of sending the user to `tunelab final`, which would refuse it."""
    if not layout.experiment_yaml.exists():
        return RunFolderError(not_a_run_folder(run_dir))
    if layout.is_train_run():  # from before `train` saved its preprocessing.json
        return RunFolderError(
            f"{run_dir} has no preprocessing.json to predict with; run its tunelab train command again "
            "(the finished run is kept and the file written)"
        )
    return RunFolderError(f"{run_dir} has no final model; run tunelab final {run_dir}")


def _features(frame: pd.DataFrame, names: list[str], where: str) -> pd.DataFrame:
    """Columns by the training feature names; `col=value` names are one-hot indicators of `col`."""
    columns, known = [], {}
    for name in names:
        if name in frame.columns:
            columns.append(pd.to_numeric(frame[name], errors="coerce"))
            continue
        col, sep, value = name.partition("=")
        if sep and col in frame.columns:
            columns.append((frame[col].astype(str).fillna("NA") == value).astype(float))
            known.setdefault(col, set()).add(value)
            continue
        raise DataError(f"{where}: missing feature column {name!r}; expected columns: {', '.join(names[:20])}")
    for col, values in known.items():
        _warn_unseen(frame[col].astype(str).fillna("NA"), values, col, where)
    return pd.concat(columns, axis=1).set_axis(names, axis=1).astype("float64")


def _warn_unseen(texts: pd.Series, known: set[str], column: str, where: str) -> None:
    """A category the model never saw in training is encoded as none of the known ones (every
    indicator 0): the prediction still comes, but the user should know which rows it concerns."""
    unseen = ~texts.isin(known)
    if unseen.any():
        rows = [int(i) for i in texts.index[unseen.to_numpy()][:5]]
        values = sorted(set(texts[unseen]))[:5]
        log.warning("%s: column %s: %d row(s) hold values not seen in training (%s; %s %s%s): "
                    "encoded as none of its categories", where, column, int(unseen.sum()),
                    ", ".join(repr(v) for v in values), "rows" if len(rows) > 1 else "row",
                    ", ".join(map(str, rows)), ", ..." if unseen.sum() > 5 else "")


@torch.inference_mode()
def predict(run_dir: str | Path, rows: Rows) -> pd.DataFrame:
    """Predict new rows with a run's final model (`final/model.pt`), as a DataFrame.

    Args:
        run_dir: a run folder that `tunelab final` (or `tune` with `final.enabled`) completed, or one
            `tunelab train` made (its best epoch's weights, trained on the train split only).
        rows: a CSV/TSV path, a pandas DataFrame, a numpy array, or a list of rows. Tables are read
            by column name (extra columns are ignored); arrays and lists of lists hold the feature
            columns in training order. Values are taken as the data set's own files hold them: a
            built-in's loader conversion is applied here too (digits pixels 0..16 are divided by
            16; California's raw block-group columns become its eight derived features), then the
            training-set standardization. For a data set with gaps (House Prices, Géron's
            housing.csv) an empty cell gets the train median, as in training; for one without,
            it is an error. Text runs take a list of strings, a .txt file, or a table
            with a `text` column.

    Returns:
        One row per input row (index `row`, 0-based): the input's id column first when it has one
        (a column named `id` in any case, e.g. House Prices' `Id`); then for classification
        `prediction` (the class label), `probability` (of that class) and `probability_<label>` per
        class; for regression `prediction_<target>` per target, in the target's own units.

    Raises:
        DataError: a missing feature column, or a bad cell named by row and column.
        RunFolderError: the run has no final model, or it is damaged.
    """
    run_dir = Path(run_dir)
    model, meta = load_final_model(run_dir)
    if isinstance(meta["model_config"], EncoderHeadModel):
        return _text_predictions(model, meta, read_texts(rows))
    frame, where = as_frame(rows, meta["feature_names"], meta["input_shape"])
    loaded = as_loaded(meta["data_name"], frame, meta["feature_names"])
    numeric = _features(loaded, meta["feature_names"], where)
    for name, value in meta.get("feature_fill", {}).items():  # a data set with gaps: as training filled them
        if name in loaded.columns:
            numeric.loc[loaded[name].isna() & numeric[name].isna(), name] = value
    check_feature_values(numeric, frame, where)  # names the first bad cell by row and column
    x = torch.from_numpy(numeric.to_numpy(dtype="float32"))
    if meta["feature_scaler"]:
        mean = torch.tensor(meta["feature_scaler"]["mean"]).reshape(1, -1)
        std = torch.tensor(meta["feature_scaler"]["std"]).reshape(1, -1)
        x = (x - mean) / std
    x = x.reshape(len(x), *meta["input_shape"])
    out = _predictions(model(x).float(), meta)
    ids = id_column(frame)
    if ids is not None:
        out.insert(0, str(ids), frame[ids].to_numpy())
    return out


def predict_file(run_dir: str | Path, input_path: str | Path) -> str:
    """`tunelab predict RUN FILE`: `predict` as CSV text, the row number first."""
    return _csv(predict(run_dir, Path(input_path)))


def _predictions(outputs: torch.Tensor, meta: dict[str, Any], texts: Sequence[str] | None = None) -> pd.DataFrame:
    """The table `predict` returns: the input text (text runs), then the class and probabilities or each target."""
    out = point_prediction(outputs, meta["loss"])
    table: dict[str, Any] = {} if texts is None else {"text": list(texts)}
    if meta["task"] == "classification":
        labels = meta["class_labels"] or [str(i) for i in range(meta["output_dim"])]
        probs = torch.softmax(out, dim=1).double().numpy()
        best = probs.argmax(axis=1)
        table["prediction"] = [labels[k] for k in best]
        table["probability"] = probs[range(len(probs)), best]
        for k, label in enumerate(labels):
            table[f"probability_{label}"] = probs[:, k]
    else:
        if meta["target_scaler"]:
            out = out * torch.tensor(meta["target_scaler"]["std"]) + torch.tensor(meta["target_scaler"]["mean"])
        names = meta["target_names"] or [f"y{j}" for j in range(out.shape[1])]
        values = out.double().numpy()
        for j, name in enumerate(names):
            table[f"prediction_{name}"] = values[:, j]
    return pd.DataFrame(table, index=pd.RangeIndex(len(outputs), name="row"))


def _csv(frame: pd.DataFrame) -> str:
    """The CLI's CSV: `row` first, six significant digits (the probabilities of every class for classification)."""
    return frame.to_csv(float_format="%.6g", lineterminator="\n")


@torch.inference_mode()
def predict_texts(run_dir: str | Path, texts: Sequence[str]) -> str:
    """Predictions of a text run (encoder_head) for the given texts, as CSV text with the texts echoed."""
    model, meta = load_final_model(Path(run_dir))
    if not isinstance(meta["model_config"], EncoderHeadModel):
        raise DataError(f"{run_dir} was trained on features, not texts; predict a CSV of its feature columns")
    return _csv(_text_predictions(model, meta, list(texts)))


def _text_predictions(model: torch.nn.Module, meta: dict[str, Any], texts: list[str]) -> pd.DataFrame:
    if not texts:
        raise DataError("no texts to predict")
    from tunelab.text.features import text_inputs

    return _predictions(model(text_inputs(meta["model_config"], texts)).float(), meta, texts)


def write_predictions(out: Path, text: str) -> None:
    """The predictions CSV written atomically (a half-written file never appears)."""
    write_text_atomic(out, text)
