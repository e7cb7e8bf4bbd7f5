"""`tune` with vectorized groups and local trial processes gives the same study as one trial at a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tunelab.app.tune import tune
from tunelab.config.schema import Experiment
from tunelab.search.planning import group_limits

BASE = {
    "data": {"name": "diabetes"},
    "model": {"family": "mlp", "hidden_dims": [16]},
    "train": {"epochs": 5, "batch_size": 32, "lr": 0.003, "loss": "huber", "metrics": ["r2"]},
    "final": {"enabled": False},
}


def experiment(name: str, search: dict) -> Experiment:
    return Experiment.model_validate({"name": name, **BASE, "search": search})


def values(out: Path, name: str) -> dict[str, tuple[float, list[float]]]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")
    found = {}
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        found[t.user_attrs["config_key"]] = (t.value, t.user_attrs["seed_values"])
    return found


GRID = {
    "strategy": "grid",
    "seeds": 2,
    "space": {
        "train.lr": [0.001, 0.01],
        "model.dropout": [0.0, 0.3],
        "model.hidden_dims": [[8], [16]],
    },
}


def test_grouped_grid_equals_the_one_at_a_time_grid(tmp_path: Path) -> None:
    off = tune(experiment("grid_off", {**GRID, "vectorize": "off", "n_jobs": 1}), out=tmp_path / "off",
               write_outputs=False)
    on = tune(experiment("grid_on", {**GRID, "vectorize": "auto", "n_jobs": 1}), out=tmp_path / "on",
              write_outputs=False)
    a, b = values(tmp_path / "off", "grid_off"), values(tmp_path / "on", "grid_on")
    assert len(a) == len(b) == 8 and a.keys() == b.keys()
    for key in a:
        assert b[key][0] == pytest.approx(a[key][0], rel=1e-5, abs=1e-6), key
        assert b[key][1] == pytest.approx(a[key][1], rel=1e-5, abs=1e-6), key
    assert on.best_params == off.best_params
    # a grouped trial's folder has the same form: one seed-<i> folder per seed, each with its result
    for trial_dir in (tmp_path / "on" / "trials").iterdir():
        for seed in (0, 1):
            result = json.loads((trial_dir / f"seed-{seed}" / "result.json").read_text(encoding="utf-8"))
            assert result["epochs_run"] == 5 and result["resumed_from_epoch"] == 0


def test_two_trial_processes_share_the_grid_and_finish_every_point_once(tmp_path: Path, monkeypatch) -> None:
    from tunelab.search import group_run

    train_group = group_run._train_group

    def after_the_worker_joined(chunk, *args, **kwargs):  # type: ignore[no-untyped-def]
        """This process's first group waits (up to 120 s) until the spawned worker has claimed a trial:
        on a loaded machine its imports can outlast the whole grid, and then it takes nothing."""
        study, deadline = chunk[0].trial.study, time.monotonic() + 120
        while time.monotonic() < deadline and not any(
            t.user_attrs.get("pid") not in (None, os.getpid()) for t in study.get_trials(deepcopy=False)
        ):
            time.sleep(0.05)
        return train_group(chunk, *args, **kwargs)

    monkeypatch.setattr(group_run, "_train_group", after_the_worker_joined)
    search = {**GRID, "seeds": 1, "n_jobs": 2, "vectorize": 2}
    exp = experiment("grid_jobs", search)
    exp = exp.model_copy(update={"train": exp.train.model_copy(update={"epochs": 20, "batch_size": 8})})
    result = tune(exp, out=tmp_path / "jobs", write_outputs=False)
    assert result.finished and result.n_complete == 8
    study = optuna.load_study(study_name="grid_jobs", storage=f"sqlite:///{tmp_path / 'jobs' / 'study.db'}")
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len({t.user_attrs["config_key"] for t in done}) == 8 == len(done)
    assert len({t.user_attrs["pid"] for t in done}) == 2  # the spawned worker took its share


def test_group_limits_follow_the_setting() -> None:
    assert group_limits(experiment("a", {**GRID, "vectorize": "off"})) == (1, 1)
    assert group_limits(experiment("b", {**GRID, "vectorize": 8})) == (4, 8)  # 2 seeds per trial
    assert group_limits(experiment("c", {**GRID, "vectorize": "auto"})) == (16, 32)
    tpe = {"strategy": "tpe", "n_trials": 4, "space": {"train.lr": {"low": 1e-4, "high": 1e-1, "log": True}}}
    assert group_limits(experiment("d", tpe)) == (1, 32)  # one trial per ask; its seeds still group
    assert group_limits(experiment("e", {**GRID, "pruner": "median"})) == (1, 32)


def test_a_group_fit_group_would_refuse_trains_one_at_a_time(tmp_path: Path, monkeypatch, caplog) -> None:
    from tunelab.search import group_run

    monkeypatch.setattr(group_run, "vectorize_error", lambda cfgs, models: "refused for the test")
    search = {**GRID, "seeds": 1, "n_jobs": 1, "space": {"train.lr": [0.001, 0.01]}}
    result = tune(experiment("grid_refused", search), out=tmp_path / "refused", write_outputs=False)
    assert result.finished and result.n_complete == 2
    assert "train one at a time: refused for the test" in caplog.text


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_trial_process_ends_when_the_tune_that_started_it_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import functools, os, signal, subprocess, sys, time\n"
         "from tunelab.lifetime import die_with_parent\n"
         "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],\n"
         "                         preexec_fn=functools.partial(die_with_parent, signal.SIGTERM, os.getpid()))\n"
         "print(child.pid, flush=True)\n"
         "time.sleep(120)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    gone = _gone(child)
    if not gone:
        os.kill(child, signal.SIGKILL)
    assert gone, "the trial process outlived the killed tune"
