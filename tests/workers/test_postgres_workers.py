"""Four `tunelab worker` processes on one PostgreSQL study; one is killed with SIGKILL mid-trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import yaml

from fixtures.mid_trial import frozen_mid_trial
from fixtures.postgres import pg_storage

GRID = {
    "data": {"name": "diabetes"},
    "model": {"family": "mlp", "hidden_dims": [16]},
    "train": {"epochs": 12, "batch_size": 2, "lr": 0.001, "checkpoints": {"every": 1}},  # caught mid-trial
    "search": {
        "strategy": "grid",
        "vectorize": "off",  # one trial at a time: long enough for the others to join and be killed mid-trial
        "space": {
            "train.lr": [0.0003, 0.001, 0.003, 0.01],
            "model.hidden_dims": [[8], [16], [32]],
            "model.activation": ["relu", "tanh"],  # 24 points: the victim is still training when caught
        },
    },
    "final": {"enabled": False},
}


def _worker(exp: Path, url: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tunelab", "worker", str(exp), "--storage", url, "--out", str(out), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def _running_trial_of(study: optuna.Study, pid: int) -> optuna.trial.FrozenTrial | None:
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if t.user_attrs.get("pid") == pid:
            return t
    return None


def _wait_for_the_queued_grid(name: str, url: str, n_points: int, first: subprocess.Popen) -> None:
    """Return as soon as the study holds every point (no fixed sleep: start-up time varies with load)."""
    deadline = time.time() + 120
    while time.time() < deadline:
        assert first.poll() is None, f"the first worker exited before queueing the grid: {first.stderr.read()}"
        try:
            if len(optuna.load_study(study_name=name, storage=pg_storage(url)).get_trials(deepcopy=False)) >= n_points:
                return
        except KeyError:  # not created yet
            pass
        time.sleep(0.1)
    raise AssertionError("the first worker never queued the grid")


def test_four_workers_complete_a_24_point_grid_and_retry_the_killed_trial(tmp_path, pg_url, study_name):
    exp = tmp_path / "grid.yaml"
    exp.write_text(yaml.safe_dump({"name": study_name, **GRID}))
    out = tmp_path / "shared"
    workers = [_worker(exp, pg_url, out)]
    _wait_for_the_queued_grid(study_name, pg_url, 12, workers[0])  # the first worker creates and queues it
    workers += [_worker(exp, pg_url, out) for _ in range(3)]
    # the victim is the first worker: it trains from the moment the grid is queued, so it cannot have
    # run out of points before it is caught (a later worker, slow to start under load, could find the
    # grid already done and exit cleanly)
    victim = workers[0]

    study = None
    killed = None
    deadline = time.time() + 180
    while time.time() < deadline and killed is None:
        try:
            study = optuna.load_study(study_name=study_name, storage=pg_storage(pg_url))
        except KeyError:
            time.sleep(0.2)
            continue
        assert victim.poll() is None, f"the victim exited before it was caught mid-trial: {victim.stderr.read()}"
        trial = _running_trial_of(study, victim.pid)
        # checkpoints are written off the training thread: kill only once one is on disk, and
        # only before the trial finished (a finished trial's retry reuses its result.json)
        if trial is not None and trial.user_attrs.get("trial_dir"):
            if frozen_mid_trial(victim, [out / trial.user_attrs["trial_dir"]]):
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait()
                killed = trial.number
        time.sleep(0.1)
    assert killed is not None, "never caught the victim in the middle of a trial"
    for w in workers:
        w.wait(timeout=240)
    for w in workers[1:]:
        assert w.returncode == 0, w.stderr.read()

    study = optuna.load_study(study_name=study_name, storage=pg_storage(pg_url))
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.user_attrs.get("outcome") == "complete"]
    keys = [t.user_attrs["config_key"] for t in done]
    assert len(keys) == 24 and len(set(keys)) == 24, "every grid point completed exactly once"
    dead = next(t for t in trials if t.number == killed)
    assert dead.state == optuna.trial.TrialState.FAIL and dead.user_attrs["outcome"] == "crashed"
    retries = [t for t in done if t.user_attrs.get("retry_of") == killed]
    assert len(retries) == 1 and retries[0].user_attrs["config_key"] == dead.user_attrs["config_key"]
    # the retry continued the dead trial's folder: epochs 1..12 once each, no restart from scratch
    folder = out / retries[0].user_attrs["trial_dir"]
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, 13))
    # and its curve in the study is that whole curve, the dead attempt's epochs included
    assert retries[0].intermediate_values == {r["epoch"]: r["val_loss"] for r in records}
    result = json.loads((folder / "result.json").read_text())
    assert result["resumed_from_epoch"] >= 1, (result, sorted(p.name for p in folder.rglob("*")),
                                               retries[0].user_attrs, dead.user_attrs)
