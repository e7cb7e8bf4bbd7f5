"""What a study does outside training only when someone reads it (search/study_run.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tunelab
from tunelab.config.load import load_experiment
from tunelab.search import study_run
from tunelab.search.results import StudyObserver

RAW = {
    "name": "overhead_best",
    "data": {"name": "toy_2d"},
    "model": {"family": "mlp", "hidden_dims": [4]},
    "train": {"epochs": 1, "batch_size": "full", "optimizer": "sgd", "lr": 0.5, "loss": "cross_entropy"},
    "search": {"strategy": "grid", "n_jobs": 1, "space": {"train.lr": [0.1, 1.0]}},
}


class _Shows(StudyObserver):
    def __init__(self) -> None:
        self.best: list[float | None] = []

    def trial_end(self, number: int, outcome: Any, best: float | None) -> None:
        self.best.append(best)


def test_the_best_value_is_read_only_for_a_display_that_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    best_value = study_run.best_value

    def counting(study: Any) -> float | None:
        calls.append(1)
        return best_value(study)

    monkeypatch.setattr(study_run, "best_value", counting)
    exp = load_experiment(None, raw=RAW)
    tunelab.tune(exp, out=tmp_path / "quiet", write_outputs=False)
    assert calls == []
    shows = _Shows()
    result = tunelab.tune(exp, out=tmp_path / "shown", write_outputs=False, observer=shows)
    assert len(calls) == 2 and len(shows.best) == 2
    assert shows.best[-1] == pytest.approx(result.best_value)


def _reads_per_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, lrs: list[float]) -> int:
    """How many times a one-at-a-time grid study loads its trials from the storage (each load reads
    every unfinished trial with its attributes)."""
    from optuna.storages._cached_storage import _CachedStorage

    reads: list[int] = []
    get_all_trials = _CachedStorage.get_all_trials

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return get_all_trials(self, *args, **kwargs)

    monkeypatch.setattr(_CachedStorage, "get_all_trials", counting)
    raw = {**RAW, "name": name, "search": {**RAW["search"], "vectorize": "off", "space": {"train.lr": lrs}}}
    result = tunelab.tune(load_experiment(None, raw=raw), out=tmp_path / name, write_outputs=False)
    assert result.n_complete == len(lrs)
    monkeypatch.undo()
    return len(reads)


def test_a_round_of_one_trial_reads_the_study_twice_not_seven_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once for every decision of the round (dead trials, stop, round size, the queued point to
    take, duplicates) and once for the check after the asks that another worker's twin came first."""
    two = _reads_per_study(tmp_path, monkeypatch, "two", [0.1, 1.0])
    six = _reads_per_study(tmp_path, monkeypatch, "six", [0.1, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert (six - two) / 4 <= 2, (two, six)
