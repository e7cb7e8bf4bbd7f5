"""Read a run folder without tunelab's study code: the contract `diagnose` and `report` work from.

Works on a finished, crashed or copied folder; missing pieces read as empty, damaged ones raise
`RunFolderError` with one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from tunelab.config.vocabulary import direction_of
from tunelab.errors import RunFolderError
from tunelab.runs.knobs import Knob, read_knobs
from tunelab.runs.layout import RunLayout, TrialLayout, not_a_run_folder
from tunelab.runs.records import read_json, read_jsonl


@dataclass(frozen=True)
class SeedRun:
    """One fit: a trial folder (or a `seed-<i>/` inside one) with its records."""

    layout: TrialLayout

    @cached_property
    def records(self) -> list[dict[str, Any]]:
        return read_jsonl(self.layout.metrics_jsonl)

    @cached_property
    def grad_norms(self) -> list[dict[str, Any]]:
        return read_jsonl(self.layout.grad_norms_jsonl)

    @cached_property
    def result(self) -> dict[str, Any]:
        return _read_optional(self.layout.result_json)

    @cached_property
    def params(self) -> dict[str, Any]:
        return _read_optional(self.layout.params_json)

    def series(self, key: str) -> list[tuple[int, float | None]]:
        """(epoch, value) pairs of one record key, e.g. `val_loss`."""
        return [(r["epoch"], r.get(key)) for r in self.records if "epoch" in r]


@dataclass(frozen=True)
class TrialView:
    """One configuration: its Optuna record (from optimization_history.json) and its seed runs."""

    number: int
    name: str
    root: Path
    params: dict[str, Any]
    value: float | None
    state: str
    reason: str
    seed_values: list[float]
    seeds: list[SeedRun] = field(default_factory=list)
    intermediate_values: dict[str, float] = field(default_factory=dict)

    @property
    def first(self) -> SeedRun | None:
        return self.seeds[0] if self.seeds else None


class RunView:
    """Everything in one run folder, loaded lazily."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.layout = RunLayout(self.root)
        if not self.layout.experiment_yaml.exists():
            raise RunFolderError(not_a_run_folder(self.root))

    @cached_property
    def split_rows(self) -> tuple[int, int, int] | None:
        """(train, val, test) rows the run really used, from `split.json`; None for older folders."""
        try:
            rec = read_json(self.layout.split_json)
            return int(rec["train"]), int(rec["val"]), int(rec["test"])
        except Exception:
            return None

    @cached_property
    def experiment(self) -> dict[str, Any]:
        """The resolved experiment as plain data (not validated, so an old folder still reads)."""
        try:
            data = yaml.safe_load(self.layout.experiment_yaml.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise RunFolderError(f"{self.layout.experiment_yaml} is damaged: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise RunFolderError(f"{self.layout.experiment_yaml} is damaged: not a mapping")
        return data

    @property
    def name(self) -> str:
        return str(self.experiment.get("name", self.root.name))

    @property
    def strategy(self) -> str:
        return str(self.experiment.get("search", {}).get("strategy", "none"))

    @property
    def is_train_run(self) -> bool:
        """Made by `tunelab train` (one configuration, no study): no history and no study file."""
        return self.layout.is_train_run()

    @property
    def objective(self) -> tuple[str, str]:
        """(metric, direction) of the study."""
        obj = self.experiment.get("search", {}).get("objective", {})
        metric = obj.get("metric", "val_loss")
        direction = obj.get("direction", "auto")
        if direction == "auto":
            direction = direction_of(metric)
        return metric, direction

    @cached_property
    def history(self) -> dict[str, Any]:
        """optimization_history.json, or {} for a `tunelab train` folder."""
        return _read_optional(self.layout.optimization_history)

    @cached_property
    def final(self) -> dict[str, Any]:
        return _read_optional(self.layout.final_of().test_metrics)

    @cached_property
    def trials(self) -> list[TrialView]:
        """Trials from the history when there is one, else every trial folder on disk; a `tunelab train`
        run's trial is its newest `--continue` folder when it has one (that folder holds the whole curve)."""
        views = []
        by_dir = {t["trial_dir"]: t for t in self.history.get("trials", []) if t.get("trial_dir")}
        folders = self.layout.trial_dirs()
        for folder in folders:
            rel = str(folder.root.relative_to(self.root))
            info = by_dir.get(rel, {})
            number = int(folder.root.name.split("-", 1)[0])
            if self.is_train_run and len(folders) == 1:
                folder = newest_continuation(self.layout) or folder
            seeds = folder.seed_dirs()
            runs = [SeedRun(TrialLayout(p)) for p in seeds] if seeds else [SeedRun(folder)]
            first_result = runs[0].result if runs else {}
            views.append(
                TrialView(
                    number=number,
                    name=folder.root.name,
                    root=folder.root,
                    params=info.get("params") or runs[0].params.get("params", {}),
                    value=info.get("value"),
                    state=info.get("outcome") or first_result.get("state", "unknown"),
                    reason=info.get("reason") or first_result.get("reason", ""),
                    seed_values=info.get("seed_values", []),
                    seeds=runs,
                    intermediate_values=info.get("intermediate_values", {}),
                )
            )
        return views

    @property
    def best_trial(self) -> TrialView | None:
        """The study's winner (`best_trial` of the history); a lone trial (`tunelab train`) is its own best."""
        number = self.history.get("best_trial")
        for t in self.trials:
            if t.number == number:
                return t
        return self.trials[0] if len(self.trials) == 1 else None

    @cached_property
    def searched_space(self) -> dict[str, Any]:
        return dict(self.experiment.get("search", {}).get("space", {}) or {})

    @cached_property
    def knobs(self) -> list[Knob]:
        """`search.space` as knobs (searched and fixed, `kind` says which), read leniently (runs/knobs.py)."""
        return read_knobs(self.searched_space, self.experiment if self.strategy == "ablation" else None)


def newest_continuation(layout: RunLayout) -> TrialLayout | None:
    """The finished `--continue` folder that trained furthest: what a `tunelab train` run is now (its
    continuations form one chain), for `train --continue`, the report and `predict` alike."""
    done = [(int(_read_optional(t.result_json).get("epochs_run") or 0), t.root.name, t)
            for t in layout.continuation_dirs() if t.result_json.exists()]
    return max(done, key=lambda item: item[:2])[2] if done else None


def _read_optional(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path} is damaged: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} is damaged: expected a JSON object, got {type(data).__name__}")
    return data
