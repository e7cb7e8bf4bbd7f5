"""One trial from a resolved experiment: build the model under the trial seed, record params, fit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tunelab.config.schema import Experiment, TrainSection
from tunelab.data.augment import attach_image_input
from tunelab.data.dataset import Dataset
from tunelab.models import build_model
from tunelab.models.size import check_model_size
from tunelab.runs.identity import make_identity
from tunelab.runs.layout import TrialLayout
from tunelab.runs.records import write_json_atomic
from tunelab.text.features import check_model_fits_data, model_inputs
from tunelab.train.hooks import Hook
from tunelab.train.loop import FitResult, fit
from tunelab.train.losses import model_output_dim


def batch_rows(cfg: TrainSection, rows: int) -> int:
    """Rows in one training batch: `batch_size`, or every row for `full` (and never more than there are)."""
    return rows if cfg.batch_size == "full" else min(int(cfg.batch_size), rows)


def model_for(exp: Experiment, dataset: Dataset) -> Any:
    """The network this trial trains, initialised from the trial seed."""
    check_model_fits_data(exp.model, dataset)
    out_dim = model_output_dim(exp.train.loss, dataset.task, dataset.output_dim)
    batch = batch_rows(exp.train, len(dataset.train))
    check_model_size(exp.model, dataset.input_shape, out_dim, batch)  # before allocating a single weight
    model = build_model(exp.model, dataset.input_shape, out_dim, seed=exp.train.seed)
    return attach_image_input(model, exp.data.augment) if dataset.is_image else model


def trained_config(exp: Experiment) -> dict[str, Any]:
    """What a trial folder's weights come from (params.json's `config`): a folder holding another
    configuration is not this one's to resume."""
    return exp.model_dump(mode="json", include={"data", "task", "model", "train"})


def write_params(
    exp: Experiment, dataset: Dataset, layout: TrialLayout, *, params: Mapping[str, Any], exp_id: str
) -> dict[str, Any]:
    """Create the trial folder with its params.json; returns the identity its records carry."""
    identity = make_identity(exp_id, dataset.data_hash, exp.train.seed)
    layout.root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        layout.params_json,
        {
            "name": layout.root.name,
            "params": dict(params),
            "config": trained_config(exp),
            "identity": identity,
        },
    )
    return identity


def run_trial(
    exp: Experiment,
    dataset: Dataset,
    layout: TrialLayout,
    *,
    params: Mapping[str, Any],
    exp_id: str,
    hooks: Sequence[Hook] = (),
    resume: bool = True,
) -> FitResult:
    """Train one configuration into its trial folder (resuming from its checkpoints if any)."""
    dataset = model_inputs(exp, dataset)  # text: cached embeddings or token tensors; others unchanged
    model = model_for(exp, dataset)
    identity = write_params(exp, dataset, layout, params=params, exp_id=exp_id)
    return fit(
        model,
        dataset,
        exp.train,
        loss_name=exp.train.loss,
        metrics=exp.train.metrics or [],
        layout=layout,
        identity=identity,
        hooks=hooks,
        resume=resume,
    )
