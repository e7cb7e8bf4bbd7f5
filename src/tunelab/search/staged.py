"""`strategy: staged`: seed 004's tuning order as one command.

lr first, then batch size, then epochs/early stopping, then weight decay and dropout, then
architecture, then optimizer details. Each stage is an ordinary small study in
`stages/<i>-<name>/` whose base is the experiment with every earlier stage's winner applied;
`stages.json` lists them and `decisions.md` gets one decision card per stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tunelab.config.schema import Experiment, StageSpec
from tunelab.config.space import apply_params, parse_space
from tunelab.config.vocabulary import DROPOUT_FAMILIES
from tunelab.errors import ConfigError
from tunelab.runs.layout import RunLayout
from tunelab.runs.records import write_json_atomic

QUESTIONS = {
    "lr": "which learning rate makes training learn fastest without instability?",
    "batch_size": "which batch size trains best with that lr?",
    "epochs": "how long to train, and does early stopping help?",
    "regularization": "do weight decay and dropout close the train/validation gap?",
    "architecture": "does more or less capacity help, now that the loop is stable?",
    "optimizer": "do optimizer details (schedule, warmup, momentum, betas) add anything?",
}


def _scaled(value: float, factors: list[float]) -> list[float]:
    return [float(f"{value * f:.6g}") for f in factors]


def default_stages(exp: Experiment) -> list[StageSpec]:
    """A sensible default stage list built around the experiment's own values."""
    t, m = exp.train, exp.model
    stages = [StageSpec(name="lr", space={"train.lr": _scaled(t.lr, [0.01, 0.1, 1.0, 10.0, 100.0])})]
    sizes = [16, 32, 64, 128] if t.batch_size == "full" else sorted({16, 32, 64, 128, int(t.batch_size)})
    stages.append(StageSpec(name="batch_size", space={"train.batch_size": [*sizes, "full"]}))
    stages.append(
        StageSpec(
            name="epochs",
            space={"train.epochs": sorted({t.epochs, 2 * t.epochs}), "train.early_stopping.patience": [None, 5]},
        )
    )
    reg: dict[str, Any] = {"train.weight_decay": sorted({t.weight_decay, 1e-4, 1e-3})}
    if m.family in DROPOUT_FAMILIES:
        reg["model.dropout"] = sorted({m.dropout, 0.1, 0.3})
    stages.append(StageSpec(name="regularization", space=reg))
    if m.family == "mlp":
        dims = m.resolved_hidden_dims() or [64]
        variants = [[max(1, d // 2) for d in dims], dims, [2 * d for d in dims], [*dims, dims[-1]]]
        stages.append(StageSpec(name="architecture", space={"model.hidden_dims": variants}))
    elif m.family == "cnn":
        ch = m.resolved_channels()
        variants = [[max(1, c // 2) for c in ch], ch, [2 * c for c in ch]]
        stages.append(StageSpec(name="architecture", space={"model.channels": variants}))
    opt: dict[str, Any] = {"train.scheduler": ["constant", "cosine"], "train.warmup_ratio": [0.0, 0.1]}
    if t.optimizer == "sgd":
        opt["train.momentum"] = sorted({t.momentum, 0.9})
    stages.append(StageSpec(name="optimizer", space=opt))
    return stages


def stage_experiment(base: Experiment, stage: StageSpec, index: int, winners: dict[str, Any]) -> Experiment:
    """The stage's own experiment: earlier winners fixed, this stage's knobs searched."""
    fixed = apply_params(base, winners) if winners else base
    search = fixed.search.model_copy(
        update={"strategy": stage.strategy, "space": dict(stage.space), "stages": None,
                "n_trials": stage.n_trials or (None if stage.strategy == "grid" else base.search.n_trials)}
    )
    data = fixed.model_dump(mode="json")
    data["name"] = f"{base.name}.stage{index}-{stage.name}"
    data["search"] = search.model_dump(mode="json")
    data["final"] = {**data["final"], "enabled": False}
    from tunelab.config.load import validate_experiment

    try:
        return validate_experiment(data, source=f"stage {stage.name}")
    except ConfigError as exc:
        raise ConfigError(f"stage {stage.name}: {exc.message}", key=exc.key) from None


@dataclass(frozen=True)
class StagedOutcome:
    """Every stage's record (as stages.json lists them), the winners by key path, and the last stage's folder."""

    stages: list[dict[str, Any]]
    winners: dict[str, Any]
    last: RunLayout | None


def check_stages(base: Experiment) -> None:
    """Every stage's space is checked before anything runs."""
    for i, stage in enumerate(base.search.stages or default_stages(base), start=1):
        parse_space(stage_experiment(base, stage, i, {}))


def run_staged(base: Experiment, layout: RunLayout, run_stage: Callable[[Experiment, RunLayout], Any]) -> StagedOutcome:
    """Run every stage in order (resuming finished ones), each stage's study by `run_stage`,
    which returns its result (`best_params`, `best_value`, `finished`); the winners so far are
    written to stages.json after each stage."""
    stages = base.search.stages or default_stages(base)
    winners: dict[str, Any] = {}
    records = []
    last: RunLayout | None = None
    for i, stage in enumerate(stages, start=1):
        exp = stage_experiment(base, stage, i, winners)
        stage_layout = layout.stage(i, stage.name)
        result = run_stage(exp, stage_layout)
        best = {k: v for k, v in result.best_params.items() if k in stage.space}
        winners.update(best)
        last = stage_layout
        records.append(
            {
                "stage": i,
                "name": stage.name,
                "question": QUESTIONS.get(stage.name, f"which {', '.join(stage.space)} works best?"),
                "run_dir": str(stage_layout.root.relative_to(layout.root)),
                "changed": {k: v for k, v in stage.space.items()},
                "fixed_before": dict(winners if not best else {k: v for k, v in winners.items() if k not in best}),
                "best_params": best,
                "best_value": result.best_value,
                "finished": result.finished,
            }
        )
        write_json_atomic(layout.stages_json, {"stages": records, "winners": winners})
    return StagedOutcome(records, winners, last)
