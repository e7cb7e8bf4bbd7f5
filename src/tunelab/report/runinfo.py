"""What the report reads from a run folder on top of `RunView`: searched knobs, objective values, keys."""

from __future__ import annotations

import json
import math
import re
from functools import cached_property
from pathlib import Path
from typing import Any

from tunelab.runs.knobs import Knob, short_names
from tunelab.runs.outcome import Outcome
from tunelab.runs.view import RunView, TrialView

__all__ = ["Knob", "ReportRun", "finite", "fmt", "position", "short_names"]


def finite(value: Any) -> bool:
    """True for a real, finite number (None, NaN, inf and strings are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: Any) -> str:
    """Short, stable text for a parameter or metric value."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def position(knob: Knob, value: Any) -> float | None:
    """Where a value sits on a knob's axis: the value itself (numeric knob), or its category index."""
    if knob.numeric:
        return float(value) if finite(value) else None
    texts = [fmt(v) for v in knob.values or ()]
    return float(texts.index(fmt(value))) if fmt(value) in texts else None


def natural_key(value: Any) -> tuple[Any, ...]:
    """Sort key in the order a reader expects, not the order of the values' text (`[128]` < `[64]`):
    numbers by value (2 before 10), lists element by element numerically ([64] < [64, 32] < [128]),
    text alphabetically with digit runs read as numbers (`h2` before `h10`); numbers first, then
    lists, then text, then anything else."""
    if finite(value):
        return (0, float(value))
    if isinstance(value, list | tuple):
        return (1, tuple(natural_key(v) for v in value))
    if isinstance(value, str):
        parts = re.split(r"(\d+(?:\.\d+)?)", value.lower())
        return (2, tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts) if p))
    return (3, fmt(value))


class ReportRun:
    """A run folder as the report sees it: `RunView` plus knobs, objective and metric keys."""

    def __init__(self, run_dir: str | Path) -> None:
        self.view = RunView(run_dir)
        self.metric, self.direction = self.view.objective

    @property
    def root(self) -> Path:
        return self.view.root

    @property
    def trials(self) -> list[TrialView]:
        return self.view.trials

    @property
    def is_study(self) -> bool:
        # a `tunelab train` run of a file with a search: block is still one configuration, not a study
        return bool(self.view.history) or (self.view.strategy not in ("none", "") and not self.view.is_train_run)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @cached_property
    def knobs(self) -> list[Knob]:
        """Knobs whose value differs between trials, in the order the space lists them (the values the
        trials took, as categories of the one knob type; `numeric` says whether they form an axis)."""
        order = list(self.view.searched_space)
        seen: dict[str, list[Any]] = {}
        for t in self.trials:
            for path, value in t.params.items():
                bucket = seen.setdefault(path, [])
                if all(fmt(v) != fmt(value) for v in bucket):
                    bucket.append(value)
        paths = [p for p in seen if len(seen[p]) > 1]
        paths.sort(key=lambda p: order.index(p) if p in order else len(order))
        names = short_names(paths)
        return [self._knob(p, names[p], seen[p]) for p in paths]

    def _knob(self, path: str, name: str, values: list[Any]) -> Knob:
        """The knob as its trials took it: the values seen, sorted; a log axis when the space says so,
        or when positive values span 100x or more (or it is the lr)."""
        numeric = all(finite(v) for v in values)
        spec = self.view.searched_space.get(path)
        log = bool(isinstance(spec, dict) and spec.get("log"))
        if numeric and not log and min(values) > 0:
            log = max(values) / min(values) >= 100 or name == "lr"
        return Knob(path, name, "categorical", values=tuple(sorted(values, key=natural_key)), log=log)

    def value(self, trial: TrialView) -> float | None:
        """The objective of a trial: Optuna's value, or (a `train` folder) the mean best value of its seeds."""
        if trial.value is not None:
            return float(trial.value) if finite(trial.value) else None
        if trial.state != Outcome.COMPLETE:
            return None
        found = [s.result.get("best_value") for s in trial.seeds if s.result.get("monitor") == self.metric]
        found = [v for v in found if finite(v)]
        return sum(found) / len(found) if found else None

    def seed_values(self, trial: TrialView) -> list[float]:
        values = trial.seed_values or [s.result.get("best_value") for s in trial.seeds]
        return [float(v) for v in values if finite(v)]

    def best(self) -> TrialView | None:
        best = self.view.best_trial
        if best is not None:
            return best
        scored = [(v, t) for t in self.trials if (v := self.value(t)) is not None]
        if not scored:
            return None
        pick = max if self.maximize else min
        return pick(scored, key=lambda vt: vt[0])[1]

    def label(self, trial: TrialView, sep: str = ", ") -> str:
        """`lr=0.01, hidden_dim=32`: the trial's searched values, or its folder name."""
        parts = [f"{k.name}={fmt(trial.params.get(k.path))}" for k in self.knobs if k.path in trial.params]
        return sep.join(parts) or trial.name

    @cached_property
    def record_keys(self) -> list[str]:
        keys: list[str] = []
        for t in self.trials:
            for s in t.seeds[:1]:
                for r in s.records[:1]:
                    keys += [k for k in r if k not in keys]
        return keys

    @cached_property
    def curve_metric(self) -> str | None:
        """The validation metric the curves show next to the loss: the objective, else the first `val_*`."""
        if self.metric != "val_loss" and self.metric in self.record_keys:
            return self.metric
        metrics = [k for k in self.record_keys if k.startswith("val_") and k != "val_loss"]
        return metrics[0] if metrics else None

    def train_key(self, val_key: str) -> str | None:
        """The training counterpart of a `val_*` key (`train_eval_*` measured in eval mode wins)."""
        tail = val_key[len("val_"):]
        for key in (f"train_eval_{tail}", f"train_{tail}"):
            if key in self.record_keys:
                return key
        return None
