"""The final model: the best configuration retrained on train+val, scored on test exactly once.

Rule for the epoch count: the best epoch the configuration reached on validation (the mean over
its seeds, rounded), since there is no validation split left to stop on.

After an ablation with `search.combine_winners`, the configuration is the better (on validation)
of the study's winner and the combined per-knob winners (app/combine_winners.py `final_choice`);
test_metrics.json says which under `source` and why under `choice`.
"""

from __future__ import annotations

import csv
import io
import shutil
import statistics
from pathlib import Path
from typing import Any

import optuna
import torch

from tunelab.app.combine_winners import final_choice
from tunelab.app.trained_model import model_meta
from tunelab.config.schema import Experiment
from tunelab.config.space import apply_params, decode_params, parse_space
from tunelab.data import load_dataset
from tunelab.data.dataset import Dataset
from tunelab.errors import RunFolderError
from tunelab.runs.claim import load_run_experiment
from tunelab.runs.layout import RunLayout, TrialLayout
from tunelab.runs.lock import hold, writer
from tunelab.runs.records import read_json, write_bytes_atomic, write_json_atomic, write_text_atomic
from tunelab.runs.test_touches import add_touch
from tunelab.search.selection import best_trial
from tunelab.search.storage import make_storage
from tunelab.search.summary_tables import write_outputs
from tunelab.text.features import model_inputs
from tunelab.train.loop import evaluate, fit, resolve_device
from tunelab.train.losses import make_loss, point_prediction
from tunelab.train.trial import model_for, trained_config


def final_dir(run_dir: Path, trial: int | None = None) -> Path:
    """Where `run_final` writes: `final/`, or `final/trial-<N>/` for a chosen trial."""
    return RunLayout(run_dir).final_of(trial).root


def load_study(run_dir: Path, exp: Experiment, storage: str | None = None) -> optuna.Study:
    url = storage or exp.search.storage or f"sqlite:///{RunLayout(run_dir).study_db}"
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise RunFolderError(f"{run_dir} has no study.db; run tunelab tune first")
    try:
        return optuna.load_study(study_name=exp.name, storage=make_storage(url))
    except KeyError:
        raise RunFolderError(f"no study named {exp.name!r} in {url.split('@')[-1]}") from None


@writer
def run_final(
    run_dir: str | Path,
    *,
    data_dir: str | None = None,
    study: optuna.Study | None = None,
    storage: str | None = None,
    trial: int | None = None,
) -> dict[str, Any]:
    """Retrain the study's best configuration (or trial `trial`) on train+val, score it once on test.

    Writes `final/` (`final/trial-<N>/` for a chosen trial; the winner's final stays); each test
    scoring is counted in the run folder.

    Args:
        run_dir: a tuned run folder.
        data_dir: folder with the file-based data sets (default: `data.data_dir`, TUNELAB_DATA_DIR).
        study: the open Optuna study, when the caller has it (`tune` does); else loaded from the folder.
        storage: the study's storage URL when it is not the run folder's SQLite file.
        trial: a completed trial's number to score instead of the winner (a runner-up).

    Returns:
        The record written to `final/test_metrics.json` (`test_*` scores, epochs, rows, params).
    """
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    base = load_run_experiment(run_dir)
    hold(run_dir)  # one writer per run folder (runs/lock.py)
    study = study or load_study(run_dir, base, storage)
    best = _chosen(study, run_dir, trial)
    out = layout.final_of(trial)
    knobs = parse_space(base)
    params = decode_params(knobs, best.params)
    best_epochs = [e for e in best.user_attrs.get("best_epochs", []) if e]
    maximize = base.search.objective.resolved_direction() == "maximize"
    choice = final_choice(layout, best, maximize) if trial is None else None  # search.combine_winners
    if choice is not None and choice["source"] == "combination":
        params, best_epochs = dict(choice["params"]), [e for e in choice["best_epochs"] if e]
    exp = apply_params(base, params)
    epochs = max(1, round(statistics.fmean(best_epochs))) if best_epochs else exp.train.epochs
    train_cfg = exp.train.model_copy(
        update={"epochs": epochs, "early_stopping": exp.train.early_stopping.model_copy(update={"patience": None})}
    )
    exp = exp.model_copy(update={"train": train_cfg})
    data = model_inputs(exp, load_dataset(exp.data, exp.task, data_dir=data_dir, merge_val=True))
    per_seed: list[dict[str, float]] = []
    first_model = None
    for i in range(base.final.seeds):
        seeded = exp.model_copy(update={"train": exp.train.model_copy(update={"seed": exp.train.seed + i})})
        model = model_for(seeded, data)
        retrain = _own_folder(out.train(i, base.final.seeds), seeded, params)
        fit(model, data, seeded.train, loss_name=seeded.train.loss, metrics=seeded.train.metrics or [],
            layout=retrain, resume=True)
        if data.test is not None:
            per_seed.append(_score(model, data, seeded))
        if first_model is None:
            first_model = model
    metrics = _reduce(per_seed)
    record = {
        "trial_number": None if choice and choice["source"] == "combination" else best.number,
        **({"source": choice["source"], "choice": choice["why"]} if choice else {}),
        "params": params,
        "epochs": epochs,
        "rule": "epochs = the best validation epoch of the chosen configuration (mean over its seeds)",
        "seeds": base.final.seeds,
        "rows_trained": len(data.train),
        "rows_tested": len(data.test) if data.test is not None else 0,
        **(metrics if data.test is not None else {"note": f"data set {data.name} has no test split"}),
    }
    out.root.mkdir(parents=True, exist_ok=True)
    _save_model(out.model, first_model, exp, data)
    write_json_atomic(out.params, {"params": params, "config": exp.model_dump(mode="json")})
    if data.test is not None:
        write_text_atomic(out.predictions, _predictions_csv(first_model, data, exp))
        record["times_test_scored"] = add_touch(layout, trial=record["trial_number"],
                                                folder=str(out.root.relative_to(run_dir)))
    write_json_atomic(out.test_metrics, record)
    write_outputs(layout, study, base, knobs)  # summary.md shows the new test scores and the touch count
    return record


def _own_folder(layout: TrialLayout, exp: Experiment, params: dict[str, Any]) -> TrialLayout:
    """The retrain's folder, holding this configuration only: `fit` resumes what it finds there (a
    final killed mid-way), so the records and checkpoints of another configuration (an earlier
    winner's retrain, before the study went on and found a better one) are removed first; else
    its finished result would be taken as this one's and scored under the new winner's name."""
    config = trained_config(exp)
    try:
        kept = read_json(layout.params_json).get("config")
    except (OSError, ValueError, AttributeError):
        kept = None
    if kept != config:
        shutil.rmtree(layout.root, ignore_errors=True)
        layout.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(layout.params_json, {"name": layout.root.name, "params": dict(params), "config": config})
    return layout


def _chosen(study: optuna.Study, run_dir: Path, number: int | None) -> optuna.trial.FrozenTrial:
    """The study's winner, or trial `number` when it completed (one-line error otherwise)."""
    if number is None:
        try:
            return best_trial(study)
        except ValueError:
            raise RunFolderError(f"{run_dir}: no completed trial to retrain") from None
    trials = study.get_trials(deepcopy=False)
    done = [t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    found = next((t for t in trials if t.number == number), None)
    if found is None or found.number not in done:
        what = "no such trial" if found is None else f"trial #{number} is {found.state.name.lower()}"
        shown = ", ".join(str(n) for n in done[:20]) + (", ..." if len(done) > 20 else "")
        raise RunFolderError(f"{run_dir}: --trial {number}: {what}; completed trials: {shown or 'none'}")
    return found


def _score(model: torch.nn.Module, data: Dataset, exp: Experiment) -> dict[str, float]:
    device = next(model.parameters()).device
    assert data.test is not None
    out = evaluate(
        model, data.test.x.to(device), data.test.y.to(device),
        loss_fn=make_loss(exp.train.loss, data.task, exp.train.huber_delta), loss_name=exp.train.loss,
        metrics=exp.train.metrics or [], target_scaler=data.target_scaler,
    )
    return {f"test_{k}": float(v) for k, v in out.items()}


def _reduce(per_seed: list[dict[str, float]]) -> dict[str, float]:
    if not per_seed:
        return {}
    merged: dict[str, float] = {}
    for key in per_seed[0]:
        values = [s[key] for s in per_seed]
        merged[key] = statistics.fmean(values)
        if len(values) > 1:
            merged[f"{key}_std"] = statistics.stdev(values)
    return merged


def _save_model(path: Path, model: Any, exp: Experiment, data: Dataset) -> None:
    """Weights plus what predict needs (shapes, scalers, labels) as plain data: loads with weights_only."""
    payload = {"format": 1, "state_dict": model.state_dict(), **model_meta(data)}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(path, buffer.getvalue())


@torch.inference_mode()
def _predictions_csv(model: Any, data: Dataset, exp: Experiment) -> str:
    assert data.test is not None
    model.eval()
    device = resolve_device(exp.train.device)
    out = point_prediction(model(data.test.x.to(device)).float(), exp.train.loss).cpu()
    target = data.test.y
    texts = data.test.texts  # text data: each row's query beside its prediction
    lead = ["row", "text"] if texts is not None else ["row"]

    def first(i: int) -> list[Any]:
        return [i, texts[i]] if texts is not None else [i]

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if data.task == "classification":
        labels = data.class_labels or [str(i) for i in range(data.output_dim)]
        probs = torch.softmax(out, dim=1)
        writer.writerow([*lead, "target", "prediction", "probability"])
        for i, (t, p) in enumerate(zip(target.tolist(), probs.tolist(), strict=True)):
            k = max(range(len(p)), key=p.__getitem__)
            writer.writerow([*first(i), labels[t], labels[k], f"{p[k]:.6f}"])
    else:
        if data.target_scaler is not None:
            out, target = data.target_scaler.inverse(out), data.target_scaler.inverse(target)
        names = data.target_names or [f"y{j}" for j in range(out.shape[1])]
        writer.writerow([*lead, *[f"target_{n}" for n in names], *[f"prediction_{n}" for n in names]])
        for i, (t, p) in enumerate(zip(target.tolist(), out.tolist(), strict=True)):
            writer.writerow([*first(i), *[f"{v:.6g}" for v in t], *[f"{v:.6g}" for v in p]])
    return buffer.getvalue()
