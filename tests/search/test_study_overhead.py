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
