"""A process killed between asking a trial and claiming it leaves a RUNNING trial with no pid,
host, heartbeat or folder. The next `tune` on that folder fails it, retries its configuration
and finishes (it used to wait for it forever)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

EXPERIMENT = """\
name: ownerless
data:
  name: diabetes
model:
  family: mlp
  hidden_dims: [8]
train:
  epochs: 2
  batch_size: 64
search:
  strategy: grid
  vectorize: off
  n_jobs: 1
  space:
    train.lr: [0.001, 0.003, 0.01]
final:
  enabled: false
"""


def _tune(exp: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUNELAB_HEARTBEAT_INTERVAL_S": "1", "TUNELAB_HEARTBEAT_GRACE_S": "2"}
    return subprocess.run(
        [sys.executable, "-m", "tunelab", "tune", str(exp), "--out", str(out), "--quiet", *extra],
        capture_output=True, text=True, timeout=120, env=env,
    )


def test_a_trial_asked_but_never_claimed_is_retried_and_the_next_tune_finishes(tmp_path: Path) -> None:
    exp, out = tmp_path / "exp.yaml", tmp_path / "run"
    exp.write_text(EXPERIMENT)
    first = _tune(exp, out, "--n-trials", "1")  # queues the whole grid, trains one point
    assert first.returncode == 0, first.stderr
    storage = f"sqlite:///{out / 'study.db'}"
    study = optuna.load_study(study_name="ownerless", storage=storage)
    orphan = study.ask()  # the state a SIGKILL right after ask() leaves behind: RUNNING, no owner
    assert "pid" not in orphan.user_attrs and orphan.user_attrs.get("config_key")
    del study

    second = _tune(exp, out)  # hung forever before claims were checked

    assert second.returncode == 0, second.stderr
    trials = optuna.load_study(study_name="ownerless", storage=storage).get_trials(deepcopy=False)
    dead = trials[orphan.number]
    assert dead.state == TrialState.FAIL and dead.user_attrs["outcome"] == "crashed"
    assert "never claimed" in dead.user_attrs["reason"]
    complete = sorted(json.loads(t.user_attrs["config_key"])["train.lr"] for t in trials
                      if t.user_attrs.get("outcome") == "complete")
    assert complete == [0.001, 0.003, 0.01]  # every point exactly once, the orphan's included
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
