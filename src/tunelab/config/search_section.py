"""The `search:` and `resources:` sections of the experiment file: how configurations are chosen,
and what one trial worker needs.

Split from `config/schema.py` (which re-exports every name), so each file holds one part's rules.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from tunelab.config.model_sections import Section
from tunelab.config.vocabulary import SCORES, STAGE_STRATEGIES, STRATEGY_NAMES, direction_of

# The section's choices, derived from config/vocabulary.py (a tuple inside Literal[] unpacks).
StrategyName = Literal[STRATEGY_NAMES]  # type: ignore[valid-type]
StageStrategyName = Literal[STAGE_STRATEGIES]  # type: ignore[valid-type]


class Objective(Section):
    """What a study optimises: a record key of the best epoch and a direction."""

    metric: str = Field("val_loss", description="A record key: val_loss or val_<metric> of train.metrics.")
    direction: Literal["minimize", "maximize", "auto"] = Field(
        "auto",
        description=f"`auto`: maximize {', '.join(SCORES[:-1])} and {SCORES[-1]}; "
        "minimize losses (log_loss too) and errors.",
    )

    def resolved_direction(self) -> str:
        """`auto` minimises losses and errors and maximises scores."""
        if self.direction != "auto":
            return self.direction
        return direction_of(self.metric)


class StageSpec(Section):
    """One stage of a staged search: a small study over `space` around the previous stages' winners."""

    name: str = Field(..., min_length=1, max_length=60, description="Stage name (its folder: stages/<i>-<name>).")
    space: dict[str, Any] = Field(default_factory=dict, description="This stage's search space (as search.space).")
    strategy: StageStrategyName = Field("grid", description="How this stage searches.")
    n_trials: int | None = Field(None, ge=1, description="Trial budget of a sampler stage; null: 20.")


class RaySettings(Section):
    """Which Ray cluster `search.backend: ray` joins."""

    address: str = Field(
        "auto",
        min_length=1,
        description="`auto`: the cluster started on this machine with `ray start` (or RAY_ADDRESS); "
        "`ray://host:10001`: a remote cluster through Ray Client; `local`: a private one-machine cluster.",
    )


class SearchSection(Section):
    """How configurations are chosen; `space` is validated by `tunelab.config.space`."""

    strategy: StrategyName = Field(
        "none", description="How configurations are chosen (docs/strategies/); `none`: train one configuration.")
    space: dict[str, Any] = Field(default_factory=dict, description="Key path -> values, range or fixed value.")
    n_trials: int | None = Field(
        None, ge=1, description="Trial budget of sampler strategies (null: 20); lr_sweep: points of a range."
    )
    timeout_s: float | None = Field(None, gt=0, description="Stop starting new trials after this many seconds.")
    seeds: int = Field(1, ge=1, le=100, description="Seeds per configuration; the objective is their mean.")
    objective: Objective = Field(default_factory=Objective)
    sampler_seed: int = Field(0, description="Seed of the Optuna sampler.")
    multivariate: bool = Field(False, description="tpe: model the knobs jointly instead of one by one.")
    pruner: Literal["none", "median", "asha", "hyperband"] = Field(
        "none", description="Stop hopeless trials early on the per-epoch objective."
    )
    n_jobs: int | Literal["auto"] = Field(
        "auto",
        description="Trial processes on this machine sharing the study (1 torch thread each); "
        "`auto`: one per core when the study has at least two independent groups of work.",
    )
    storage: str | None = Field(
        None, description="Optuna storage URL (postgresql://... for workers); null: sqlite study.db in the run folder."
    )
    backend: Literal["local", "ray"] = Field(
        "local",
        description="Where trial workers run: `local` processes on this machine, or `ray` tasks placed on a "
        "Ray cluster with `resources` (pip install 'tunelab[ray]'); docs/cluster.md.",
    )
    ray: RaySettings = Field(default_factory=RaySettings)
    storage_proxy: bool = Field(
        False,
        description="Serve `storage` to the workers through Optuna's gRPC storage proxy, so the database "
        "sees one process's connections whatever the worker count (needs grpcio: tunelab[ray]).",
    )
    vectorize: int | Literal["auto", "off"] = Field(
        "auto",
        description="Train same-shape trials (and seeds) as one batched model: `auto` groups of up to 32 "
        "members, K members per group, or `off`.",
    )
    batch_size: int | Literal["auto"] = Field(
        "auto",
        description="tpe, gp, cmaes: trials asked per round and trained together across the trial processes "
        "(pending trials count as running for the sampler); `auto`: enough to fill the machine (members per "
        "group x processes) but at most a quarter of n_trials (never fewer than the processes), and 1 with a "
        "pruner; `1`: one trial at a time. grid, random, qmc, ablation and lr_sweep queue their points and "
        "group them by shape: the setting does not apply to them.",
    )
    stages: Annotated[list[StageSpec], Field(min_length=1)] | None = Field(
        None, description="staged strategy: the stages in order; null: seed 004's default order."
    )
    combine_winners: bool = Field(
        False,
        description="ablation: afterwards train every knob's best value together with `seeds` seeds and "
        "report it against the default (mean ± std, and whether it beat the default): one-at-a-time "
        "changes can interact. The final model then retrains the better (on validation) of the study's "
        "winner and the combination; final/test_metrics.json says which (`source`) and why (`choice`).",
    )

    @field_validator("vectorize", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        """YAML reads a bare `off` / `on` as a boolean."""
        if isinstance(value, bool):
            return "auto" if value else "off"
        return value

    @field_validator("n_jobs", "vectorize", "batch_size")
    @classmethod
    def _bounded_count(cls, value: int | str, info: Any) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 1024:
            allowed = "auto or off" if info.field_name == "vectorize" else "auto"
            raise ValueError(f"{info.field_name} must be 1..1024 or {allowed}, got {value}")
        return value


# --------------------------------------------------------------------------- resources


class ResourcesSection(Section):
    """What one trial worker (a trial process, or a whole vectorized group) needs; placement by
    `tunelab.search.placement`, the same rule for local processes and Ray tasks."""

    cpus_per_trial: float = Field(1.0, gt=0, le=1024, description="CPU cores per trial worker (its torch threads).")
    gpus_per_trial: float = Field(
        0.0,
        ge=0,
        le=64,
        description="GPUs per trial worker: a fraction (0.25: four workers share a device) or a whole number; "
        "0: no GPU is reserved (train.device still picks one when visible).",
    )
    memory_mb_per_trial: int | None = Field(
        None, ge=1, description="Memory reserved per trial worker on a Ray cluster (MiB); null: not declared."
    )

    @field_validator("gpus_per_trial")
    @classmethod
    def _whole_above_one(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError(f"gpus_per_trial above 1 must be a whole number of devices, got {value}")
        return value
