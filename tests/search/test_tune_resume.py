"""kill -9 of `tunelab tune` in the middle of a grid, then the same command again.

Every configuration completes exactly once, none is trained to completion twice, the killed
trial continues in its own folder, and nothing finished before the kill is lost or changed.
"""

from __future__ import annotations

import csv
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

from fixtures.mid_trial import frozen_mid_trial
from tunelab.errors import RunFolderError
from tunelab.runs.layout import TrialLayout
from tunelab.runs.records import read_jsonl

EXPERIMENT = """\
name: kill_resume
data:
  name: diabetes
model:
  family: mlp
  hidden_dims: [32]
train:
  epochs: 30
  batch_size: 8
  optimizer: adam
  checkpoints:
    every: 1          # a checkpoint per epoch: the kill lands mid-trial, after some of them
search:
  strategy: grid
  vectorize: off
  n_jobs: 1           # one process: the test kills it and counts the one trial it was training
  space:
    train.lr: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02]
final:
  enabled: false
"""
LRS = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02}


# The same grid trained as one vectorized group of six members.
GROUPED = EXPERIMENT.replace("vectorize: off", "vectorize: auto").replace("kill_resume", "kill_resume_grouped")


def tune_command(path: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "tunelab", "tune", str(path), "--out", str(out), "--quiet"]


def finished_results(out: Path) -> dict[str, str]:
    """Short configuration name (folder name without the trial number) -> result.json text."""
    found = {}
    for path in sorted((out / "trials").glob("*/result.json")):
        name = path.parent.name.split("-", 1)[1]
        assert name not in found, f"configuration {name} has two result.json files"
        found[name] = path.read_text(encoding="utf-8")
    return found


def member_records(out: Path) -> dict[str, list[dict]]:
    """Each configuration's metrics.jsonl without its wall times."""
    found = {}
    for path in (out / "trials").glob("*/metrics.jsonl"):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        found[path.parent.name.split("-", 1)[1]] = [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in rows]
    return found


def epochs_of(trial_dir: Path) -> list[int]:
    """The epochs in metrics.jsonl (a line torn by the kill is not a record)."""
    return [r["epoch"] for r in read_jsonl(trial_dir / "metrics.jsonl")]


def checkpointed(trial_dirs: list[Path]) -> int:
    """The fewest epochs any of the folders has a checkpoint of (a cheap look while it trains)."""
    return min((TrialLayout(d).epoch_checkpoints() or [(0, None)])[0][0] for d in trial_dirs)


def assert_study_curves_match_the_folders(study: optuna.Study, out: Path) -> None:
    """Each complete trial's curve in the study is its folder's whole curve, also the epochs a
    killed attempt trained before its retry resumed."""
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        records = read_jsonl(out / t.user_attrs["trial_dir"] / "metrics.jsonl")
        assert t.intermediate_values == {r["epoch"]: r["val_loss"] for r in records}, t.number
        assert sorted(t.intermediate_values) == list(range(1, 31)), t.number


def test_kill_9_mid_grid_then_rerun_completes_every_configuration_exactly_once(tmp_path):
    path = tmp_path / "kill.yaml"
    path.write_text(EXPERIMENT, encoding="utf-8")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    proc = subprocess.Popen(
        tune_command(path, out), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 90
        while len(list((out / "trials").glob("*/result.json"))) < 2:
            assert proc.poll() is None, f"tune ended before the kill: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "no two finished trials within 90 s"
            time.sleep(0.02)
        # let the next trial train a few epochs, then kill it mid-trial (checked with it stopped)
        while True:
            running = [d for d in (out / "trials").iterdir() if not (d / "result.json").exists()]
            if running and checkpointed(running) >= 3 and frozen_mid_trial(proc, running):
                break
            assert proc.poll() is None, "tune finished before it could be killed mid-trial"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    before = finished_results(out)
    assert 2 <= len(before) < 6
    killed = [d for d in (out / "trials").iterdir() if not (d / "result.json").exists()]
    assert len(killed) == 1, killed
    killed_name = killed[0].name.split("-", 1)[1]
    epochs_before_kill = epochs_of(killed[0])
    assert epochs_before_kill and epochs_before_kill[-1] < 30

    rerun = subprocess.run(tune_command(path, out), cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr

    # every configuration complete exactly once in summary.csv, with distinct params
    with (out / "summary.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert {row["state"] for row in rows} == {"complete"}
    lrs = [json.loads(row["params"])["train.lr"] for row in rows]
    assert set(lrs) == LRS and len(lrs) == 6

    # one result.json per configuration; finished results unchanged
    after = finished_results(out)
    assert set(after) == {name.split("-", 1)[1] for name in os.listdir(out / "trials")}
    assert len(after) == 6
    for name, text in before.items():
        assert after[name] == text, f"finished trial {name} changed after the rerun"

    # the killed configuration was continued in its folder (renamed to the retry's number), not restarted
    continued = [d for d in (out / "trials").iterdir() if d.name.split("-", 1)[1] == killed_name]
    assert len(continued) == 1
    assert not killed[0].exists() or continued[0] == killed[0]
    epochs = epochs_of(continued[0])
    assert epochs == list(range(1, 31))
    result = json.loads((continued[0] / "result.json").read_text(encoding="utf-8"))
    assert result["epochs_run"] == 30
    assert result["resumed_from_epoch"] >= 1

    # seen from Optuna: the killed attempt is one FAIL (crashed), then six COMPLETE trials, none running
    study = optuna.load_study(study_name="kill_resume", storage=f"sqlite:///{out / 'study.db'}")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(complete) == 6 and len({t.params["lr"] for t in complete}) == 6
    assert len(failed) == 1 and failed[0].user_attrs["outcome"] == "crashed"
    assert_study_curves_match_the_folders(study, out)
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_kill_9_mid_vectorized_group_then_rerun_continues_every_member_from_its_checkpoint(tmp_path):
    path = tmp_path / "grouped.yaml"
    path.write_text(GROUPED, encoding="utf-8")
    out = tmp_path / "run"
    proc = subprocess.Popen(tune_command(path, out), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while True:  # every member of the group has trained a few epochs (all six run together)
            dirs = list((out / "trials").iterdir()) if (out / "trials").exists() else []
            if len(dirs) == 6 and checkpointed(dirs) >= 3 and frozen_mid_trial(proc, dirs):
                break
            assert proc.poll() is None, f"tune ended before the kill: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "the group did not train 3 epochs within 90 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    killed = {d.name.split("-", 1)[1]: epochs_of(d)[-1] for d in (out / "trials").iterdir()
              if not (d / "result.json").exists()}
    assert len(killed) == 6 and all(3 <= last < 30 for last in killed.values()), killed

    rerun = subprocess.run(tune_command(path, out), cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr

    after = finished_results(out)
    assert set(after) == set(killed)  # every member continued in its own (renamed) folder
    for name, text in after.items():
        result = json.loads(text)
        assert result["epochs_run"] == 30 and result["resumed_from_epoch"] >= 1, name
        trial_dir = next(d for d in (out / "trials").iterdir() if d.name.split("-", 1)[1] == name)
        assert epochs_of(trial_dir) == list(range(1, 31))
    # and each member's records equal those of an uninterrupted grouped run, to the bit
    clean = subprocess.run(tune_command(path, tmp_path / "clean"), cwd=tmp_path, capture_output=True, text=True,
                           timeout=180)
    assert clean.returncode == 0, clean.stderr
    assert member_records(out) == member_records(tmp_path / "clean")
    study = optuna.load_study(study_name="kill_resume_grouped", storage=f"sqlite:///{out / 'study.db'}")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    crashed = [t for t in study.trials if t.user_attrs.get("outcome") == "crashed"]
    assert len(complete) == 6 and len({t.params["lr"] for t in complete}) == 6
    assert len(crashed) == 6
    assert_study_curves_match_the_folders(study, out)


def test_a_folder_from_an_older_tunelab_or_other_run_settings_still_resumes(tmp_path):
    import yaml

    from tunelab.app.tune import tune
    from tunelab.config.load import load_experiment

    path = tmp_path / "small.yaml"
    path.write_text(EXPERIMENT.replace("epochs: 30", "epochs: 2").replace("kill_resume", "older"), encoding="utf-8")
    out = tmp_path / "run"
    first = tune(load_experiment(path, ["train.threads=1"]), out=out, n_trials=2, run_final=False)
    assert first.ran_trials == 2
    # as an older tunelab wrote it: without a key added since, and other run settings
    saved = yaml.safe_load((out / "experiment.yaml").read_text(encoding="utf-8"))
    del saved["data"]["max_rows"]
    saved["search"]["n_jobs"] = 1
    (out / "experiment.yaml").write_text(yaml.safe_dump(saved), encoding="utf-8")

    again = tune(load_experiment(path, ["search.n_jobs=1", "search.vectorize=2"]), out=out, run_final=False)
    assert again.finished and again.n_complete == 6 and again.ran_trials == 4
    rewritten = yaml.safe_load((out / "experiment.yaml").read_text(encoding="utf-8"))
    assert rewritten["search"]["vectorize"] == 2 and "max_rows" in rewritten["data"]
    with pytest.raises(RunFolderError, match=r"train\.lr is .* there, 0\.5 here"):
        tune(load_experiment(path, ["train.lr=0.5"]), out=out, run_final=False)
