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


def test_a_process_left_waiting_for_others_calls_on_idle_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tune` warms its plot renderers there: its core is idle while the last trials train elsewhere."""
    import optuna

    from tunelab.app.prepare import prepare
    from tunelab.runs.layout import RunLayout
    from tunelab.search.claims import claim
    from tunelab.search.local_jobs import TRIAL_PROCESS_ENV
    from tunelab.search.point_queue import enqueue_missing, take

    monkeypatch.delenv(TRIAL_PROCESS_ENV, raising=False)
    monkeypatch.setattr(study_run, "POLL_S", 0.0)
    ready = prepare(load_experiment(None, raw=RAW))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    run = study_run.start_study(ready.experiment, ready.dataset, ready.exp_id, RunLayout(tmp_path), url, data_dir=None)
    assert run.plan.points is not None
    enqueue_missing(run.study, url, run.knobs, run.plan.points)
    elsewhere = []
    for queued in run.study.get_trials(deepcopy=False):  # both points taken by "another process"
        assert take(run.study, queued._trial_id)
        elsewhere.append(optuna.trial.Trial(run.study, queued._trial_id))
        claim(run.study, elsewhere[-1])
    calls: list[int] = []

    def idle() -> None:  # the other process finishes its trials meanwhile
        calls.append(1)
        for trial in elsewhere:
            run.study.tell(trial, 0.5)

    run.on_idle = idle
    assert run.optimize() == 0
    assert calls == [1] and run.on_idle is None
