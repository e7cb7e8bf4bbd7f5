"""The one place a study's winner is chosen: the objective first, then a stated tie-break.

Optuna's `study.best_trial` returns the first trial that reached the best value, so a tie on a
coarse objective (val_accuracy on 36 rows) is broken by trial number: arbitrary, and changed by a
crash-retry (the retried configuration gets a new number). Here trials within the objective's
resolution (or within the leader's seed spread when several seeds ran) tie, and the tie is broken
by the validation loss at the chosen epoch, then by the smaller model, then by the parameters
themselves (sorted JSON): never by trial number. `TuneResult`, the tables, optimization_history.json
and the final model all call `choose_trials`, so they name the same winner.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from tunelab.runs.outcome import Outcome

# Relative width under which two objective values are the same number (float noise of a mean).
RESOLUTION = 1e-6
TIE_BREAK = "validation loss at the chosen epoch, then the smaller model, then the parameters (sorted)"
SIZE_KNOBS = ("hidden_dims", "channels", "hidden_dim", "num_layers", "embed_dim")


@dataclass(frozen=True)
class Choice:
    """The winner and how it was picked; `tied` lists every trial tied with the leader (winner first)."""

    winner: FrozenTrial | None
    tied: tuple[int, ...] = ()
    tolerance: float = 0.0
    metric: str = ""
    rule: str = ""
    loss_of: dict[int, float | None] = field(default_factory=dict)

    @property
    def number(self) -> int | None:
        return self.winner.number if self.winner is not None else None

    @property
    def value(self) -> float | None:
        return self.winner.value if self.winner is not None else None

    def to_dict(self) -> dict[str, Any]:
        """What optimization_history.json keeps under `selection`."""
        return {"rule": self.rule, "tied": list(self.tied), "tolerance": self.tolerance, "tie_break": TIE_BREAK}


def tie_attrs(best_records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Trial attributes the tie-break reads: the seeds' mean validation loss at their best epochs."""
    losses = [float(r["val_loss"]) for r in best_records if isinstance(r.get("val_loss"), int | float)]
    finite = [v for v in losses if math.isfinite(v)]
    return {"tie_val_loss": sum(finite) / len(finite)} if finite else {}


def _size(params: Mapping[str, Any]) -> float:
    """A model-size proxy from the searched widths (the rest is equal across one study's trials)."""
    size = 0.0
    for name, raw in params.items():
        if str(name).split(".")[-1] not in SIZE_KNOBS:
            continue
        value = raw
        if isinstance(raw, str):
            try:
                value = json.loads(raw)
            except ValueError:
                continue
        if isinstance(value, list) and all(isinstance(v, int | float) for v in value) and value:
            size += sum(a * b for a, b in pairwise(value)) + sum(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            size += float(value) ** 2
    return size


def _params_key(params: Mapping[str, Any]) -> str:
    return json.dumps({str(k): v for k, v in params.items()}, sort_keys=True, default=str)


def _loss(trial: FrozenTrial) -> float | None:
    value = trial.user_attrs.get("tie_val_loss")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _eligible(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    out = []
    for t in trials:
        if t.state != TrialState.COMPLETE or t.value is None or not math.isfinite(t.value):
            continue
        if t.user_attrs.get("outcome", Outcome.COMPLETE) != Outcome.COMPLETE:
            continue
        out.append(t)
    return out


def choose_trials(trials: Sequence[FrozenTrial], *, maximize: bool, metric: str = "objective") -> Choice:
    """The winner among complete trials: best objective, ties broken by `TIE_BREAK`."""
    done = _eligible(trials)
    if not done:
        return Choice(None, metric=metric, rule="no trial completed")
    sign = -1.0 if maximize else 1.0
    leader = min(done, key=lambda t: (sign * float(t.value), _params_key(t.params)))  # type: ignore[arg-type]
    lead = float(leader.value)  # type: ignore[arg-type]
    noise = float(leader.user_attrs.get("value_std") or 0.0)
    seeds = len(leader.user_attrs.get("seed_values") or [])
    tolerance = max(RESOLUTION * max(1.0, abs(lead)), noise if seeds > 1 else 0.0)
    tied = [t for t in done if abs(float(t.value) - lead) <= tolerance]  # type: ignore[arg-type]

    def tie_key(t: FrozenTrial) -> tuple[Any, ...]:
        loss = _loss(t)
        return (loss is None, loss if loss is not None else 0.0, _size(t.params), _params_key(t.params))

    tied.sort(key=tie_key)
    winner = tied[0]
    within = "its seed spread" if seeds > 1 and noise > RESOLUTION * max(1.0, abs(lead)) else "its resolution"
    if len(tied) > 1:
        rule = (
            f"best {metric}; {len(tied)} trials tied within {within} (±{tolerance:.3g}), "
            f"broken by {TIE_BREAK}"
        )
    else:
        rule = f"best {metric} (no tie)"
    losses = {t.number: _loss(t) for t in tied}
    return Choice(winner, tuple(t.number for t in tied), tolerance, metric, rule, losses)


def choose(study: Any, metric: str | None = None) -> Choice:
    """The winner of an Optuna study (its direction decides which way is better)."""
    trials = study.get_trials(deepcopy=False)
    maximize = study.direction.name.lower() == "maximize"
    return choose_trials(trials, maximize=maximize, metric=metric or "objective")


def best_trial(study: Any) -> FrozenTrial:
    """Drop-in for `study.best_trial`, with the stated tie-break.

    Raises:
        ValueError: no trial completed (as Optuna's own property does).
    """
    winner = choose(study).winner
    if winner is None:
        raise ValueError("no complete trial")
    return winner


def winner_line(choice: Choice, monitor: str, knobs: Sequence[Any] = ()) -> str:
    """The summary's one line on the winner: its parameters, its value and how it was picked."""
    from tunelab.config.space import decode_params

    if choice.winner is None:
        return "Winner: none yet (no trial completed)."
    params = decode_params(knobs, choice.winner.params) if knobs else dict(choice.winner.params)
    shown = ", ".join(f"{k}={v}" for k, v in params.items()) or "the base configuration"
    epoch = "the objective" if monitor in ("auto", choice.metric) else monitor
    text = (
        f"Winner: #{choice.number} ({shown}), {choice.metric}={choice.value:.4f}; best epoch picked by "
        f"{epoch}; selection: {choice.rule}."
    )
    loss = choice.loss_of.get(choice.number) if choice.number is not None else None
    if len(choice.tied) > 1 and loss is not None:
        text += f" The winner's val_loss at its best epoch: {loss:.4g}."
    return text
