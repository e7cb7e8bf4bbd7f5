"""optimization_history_seed001.json: the study in seed 001's own file shape.

Seed 001 wrote `best_params`, `best_value`, `n_trials` and an `optimization_history` list of
`{trial, value, params}` for the trials that have a value, with plain parameter names
(`dropout`, not `model.dropout`). Scripts written for that file read this one unchanged; ours
(optimization_history.json) keeps its richer shape (outcomes, seeds, folders).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from tunelab.config.space import Knob, decode_params
from tunelab.search.selection import choose


def undotted_names(knobs: Sequence[Knob]) -> dict[str, str]:
    """Key path -> plain name: the last part (`model.dropout` -> `dropout`); where two knobs share a
    last part, the whole path with underscores (`model_dropout`), so no name stands for two knobs."""
    last = [k.path.rsplit(".", 1)[-1] for k in knobs]
    pairs = zip(knobs, last, strict=True)
    return {k.path: name if last.count(name) == 1 else k.path.replace(".", "_") for k, name in pairs}


def _plain(params: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names.get(path, path.replace(".", "_")): value for path, value in params.items()}


def seed001_history(study: optuna.Study, knobs: Sequence[Knob], metric: str) -> dict[str, Any]:
    """Seed 001's history dict; the best trial is the one our selection picks (same tie-break)."""
    names = undotted_names(knobs)
    choice = choose(study, metric)
    best = choice.winner
    trials = study.get_trials(deepcopy=False)
    return {
        "best_params": _plain(decode_params(knobs, best.params), names) if best is not None else {},
        "best_value": choice.value,
        "n_trials": len(trials),
        "optimization_history": [
            {"trial": t.number, "value": t.value, "params": _plain(decode_params(knobs, t.params), names)}
            for t in trials
            if t.value is not None
        ],
    }
