"""Every model a search can build is checked against the memory limit before the study starts.

A space that holds an oversized model (`model.hidden_dims: [[8], [20000, 20000]]`) used to train the
small configurations first and then stop the whole study, hours in, on the first big one. The model
knobs' values (a range's two ends) are tried here, on the meta device, before anything is written.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from tunelab.config.schema import Experiment
from tunelab.config.space_knob import Knob
from tunelab.config.space_paths import apply_params, read_path
from tunelab.data.dataset import Dataset
from tunelab.errors import ConfigError
from tunelab.models.size import check_model_size
from tunelab.train.losses import model_output_dim
from tunelab.train.trial import batch_rows

MAX_COMBINATIONS = 128  # past this, each knob's values are tried with the others at the base value


def _sizing(knob: Knob) -> bool:
    return knob.path.startswith("model.") or knob.path == "train.batch_size"


def _values(knob: Knob) -> list[Any]:
    if knob.kind == "categorical":
        return list(knob.values or ())
    if knob.kind in ("int", "float"):
        return [knob.low, knob.high]
    return list(knob.values or ())[:1]


def _combinations(knobs: Sequence[Knob]) -> list[dict[str, Any]]:
    options = [_values(k) for k in knobs]
    total = 1
    for values in options:
        total *= max(1, len(values))
    if total <= MAX_COMBINATIONS:
        return [dict(zip([k.path for k in knobs], combo, strict=True)) for combo in itertools.product(*options)]
    return [{k.path: v} for k, values in zip(knobs, options, strict=True) for v in values]


def check_space_sizes(base: Experiment, knobs: Sequence[Knob], dataset: Dataset) -> None:
    """Raise a located ConfigError naming the first configuration of the space whose model is past the limit.

    `dataset` is what the model sees (text: its embeddings' shape); a combination the space's own
    rules reject (a conditional knob without its condition) is skipped: the study never builds it.
    """
    sizing = [k for k in knobs if _sizing(k)]
    if not sizing:
        return
    out_dim = model_output_dim(base.train.loss, dataset.task, dataset.output_dim)
    base_data = base.model_dump(mode="json")
    for combo in _combinations(sizing):
        try:
            exp = apply_params(base, combo)
        except (ConfigError, ValueError):
            continue
        try:
            check_model_size(exp.model, dataset.input_shape, out_dim, batch_rows(exp.train, len(dataset.train)))
        except ConfigError as exc:
            where = next((p for p, v in combo.items() if read_path(base_data, p) != v), next(iter(combo)))
            values = ", ".join(f"{p}={v}" for p, v in combo.items())
            raise ConfigError(f"the space can build a model past the memory limit ({values}): {exc.message}",
                              key=f"search.space.{where}") from None

