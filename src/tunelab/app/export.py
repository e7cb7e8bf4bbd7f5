"""`tunelab export`: a run folder's trials into TensorBoard event files or an MLflow tracking store.

Each fit (a trial, or each `seed-<i>/` of a trial) becomes one TensorBoard run / one MLflow run:
its searched knobs (plus seed, state and the objective value) as hyperparameters, and every
numeric key of `metrics.jsonl` (train_loss, val_loss, val_accuracy, lr, epoch_time_s, ...) as a
series over epochs. The run folder is only read. Both libraries are optional extras
(`pip install 'tunelab[tensorboard]'`, `'tunelab[mlflow]'`); an export that finds a fit already
exported (its TensorBoard folder exists, or an MLflow run carries its tag) skips it, so the same
command can be rerun after a study grows.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import ConfigError
from tunelab.runs.outcome import Outcome
from tunelab.runs.view import RunView

SKIPPED_KEYS = ("epoch", "is_best", "identity")
TAG = "tunelab.fit"  # MLflow tag naming the fit (run folder name / trial folder [/ seed folder])
MLFLOW_BATCH = 1000  # MLflow's limit of metrics per log_batch call


@dataclass(frozen=True)
class ExportedFit:
    """One fit as both exporters write it."""

    name: str  # e.g. 3-lr0.01 or 3-lr0.01/seed-1
    trial: int
    hparams: dict[str, float | str | bool]
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    state: str = ""


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote and skipped."""

    target: str
    written: list[str]
    skipped: list[str]


def _hparam(value: Any) -> float | str | bool:
    """Numbers and booleans stay; lists, dicts and None become their JSON text (both tools need scalars)."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    return json.dumps(value)


def collect_fits(run: RunView) -> list[ExportedFit]:
    """Every fit of the run folder with its hyperparameters and per-epoch series."""
    fits = []
    for trial in run.trials:
        for seed in trial.seeds:
            params = seed.params.get("params") or trial.params
            hparams = {str(k): _hparam(v) for k, v in params.items()}
            hparams["seed"] = int(seed.params.get("identity", {}).get("seed", 0))
            hparams["state"] = str(seed.result.get("state", trial.state))
            series: dict[str, list[tuple[int, float]]] = {}
            for record in seed.records:
                epoch = record.get("epoch")
                if not isinstance(epoch, int):
                    continue
                for key, value in record.items():
                    if key in SKIPPED_KEYS or isinstance(value, bool) or not isinstance(value, int | float):
                        continue
                    if math.isfinite(value):
                        series.setdefault(key, []).append((epoch, float(value)))
            rel = seed.layout.root.relative_to(run.layout.trials)
            fits.append(ExportedFit(str(rel), trial.number, hparams, series, hparams["state"]))
    return fits


def _need(module: str, extra: str) -> Any:
    """Import an optional library or say, in one line, how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"needs the {extra} package, which is not installed; pip install 'tunelab[{extra}]'",
            key=f"--{extra}",
        ) from None


def export_tensorboard(run_dir: str | Path, log_dir: str | Path) -> ExportResult:
    """One event-file folder per fit under `log_dir/<study>/`: scalars per epoch and an HParams session."""
    _need("tensorboard", "tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    run = RunView(run_dir)
    metric, _ = run.objective
    root = Path(log_dir) / run.root.name
    written, skipped = [], []
    for fit in collect_fits(run):
        folder = root / fit.name
        if folder.exists() and any(folder.glob("events.out.tfevents.*")):
            skipped.append(fit.name)
            continue
        writer = SummaryWriter(log_dir=str(folder))
        try:
            for key, points in sorted(fit.series.items()):
                for epoch, value in points:
                    writer.add_scalar(key, value, global_step=epoch)
            best = _best(fit, metric)
            # run_name "." keeps the HParams session in this fit's own folder, beside its scalars
            writer.add_hparams(fit.hparams, {f"hparam/{metric}": best}, run_name=".")
        finally:
            writer.close()
        written.append(fit.name)
    return ExportResult(str(root), written, skipped)


def _best(fit: ExportedFit, metric: str) -> float:
    from tunelab.config.vocabulary import higher_is_better

    values = [v for _, v in fit.series.get(metric, [])]
    if not values:
        return math.nan
    return max(values) if higher_is_better(metric) else min(values)


def export_mlflow(run_dir: str | Path, tracking_uri: str) -> ExportResult:
    """One MLflow run per fit in the experiment named after the study: params, metrics per epoch, tags."""
    _need("mlflow", "mlflow")
    from mlflow.entities import Metric, Param, RunStatus, RunTag
    from mlflow.tracking import MlflowClient

    run = RunView(run_dir)
    metric, direction = run.objective
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        found = client.get_experiment_by_name(run.name)
        experiment_id = found.experiment_id if found else client.create_experiment(run.name)
    except Exception as exc:  # an unreachable or malformed store: one line, not a traceback
        raise ConfigError(f"cannot open MLflow store {tracking_uri!r}: {type(exc).__name__}: {exc}",
                          key="--mlflow") from None
    done = {r.data.tags.get(TAG) for r in client.search_runs([experiment_id], max_results=50_000)}
    written, skipped = [], []
    now = int(time.time() * 1000)
    for fit in collect_fits(run):
        tag = f"{run.root.name}/{fit.name}"
        if tag in done:
            skipped.append(fit.name)
            continue
        created = client.create_run(experiment_id, run_name=fit.name, tags={TAG: tag, "tunelab.trial": str(fit.trial),
                                                                             "tunelab.objective": f"{metric} "
                                                                             f"({direction})"})
        run_id = created.info.run_id
        params = [Param(k, str(v)) for k, v in fit.hparams.items()]
        metrics = [Metric(key, value, now, epoch) for key, points in fit.series.items() for epoch, value in points]
        client.log_batch(run_id, params=params, tags=[RunTag("tunelab.state", fit.state)])
        for start in range(0, len(metrics), MLFLOW_BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + MLFLOW_BATCH])
        status = RunStatus.FINISHED if fit.state in (Outcome.COMPLETE, Outcome.PRUNED) else RunStatus.FAILED
        client.set_terminated(run_id, status=RunStatus.to_string(status))
        written.append(fit.name)
    return ExportResult(f"{tracking_uri} experiment {run.name!r}", written, skipped)
