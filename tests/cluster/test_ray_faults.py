"""Seed 000's 27-point grid on a two-node Ray cluster on this machine, with a node lost mid-trial
and the driver killed: every point completes once, the lost trial continues from its checkpoint,
and the same command resumes the study on the cluster."""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'tunelab[ray]')")

from tests.cluster.ray_cluster import LocalRayCluster, is_zombie, marked_pids  # noqa: E402

EPOCHS = 4
CAUGHT_BY = EPOCHS - 3  # the node is lost with 3 epochs left: records lag training (background writer)
# Seed 000's grid (lr x hidden width x dropout), on the built-in diabetes set so that no data
# folder is needed; small batches make an epoch last long enough to be interrupted.
GRID = f"""\
name: ray_grid
data:
  name: diabetes
model:
  family: mlp
  hidden_dim: 64
  num_layers: 2
train:
  epochs: {EPOCHS}
  batch_size: 4
  optimizer: adam
  loss: huber
  checkpoints:
    every: 1
search:
  strategy: grid
  vectorize: off
  space:
    train.lr: [0.01, 0.001, 0.0001]
    model.hidden_dim: [32, 64, 128]
    model.dropout: [0.0, 0.3, 0.6]
resources:
  cpus_per_trial: 1
  gpus_per_trial: 0.5   # of the one fake GPU each node declares: the cores bind first, one worker a node
final:
  enabled: false
"""
DEADLINE_S = 240


def _epochs(trial_dir: Path) -> list[int]:
    path = trial_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["epoch"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _running(db: Path) -> list[tuple[int, str]]:
    """(pid, trial folder) of every RUNNING trial, read straight from the study file."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            rows = conn.execute(
                "SELECT a.trial_id, a.key, a.value_json FROM trials t JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id WHERE t.state = 'RUNNING' AND a.key IN ('pid', 'trial_dir')"
            ).fetchall()
    except sqlite3.Error:
        return []
    attrs: dict[int, dict[str, object]] = {}
    for trial_id, key, value in rows:
        attrs.setdefault(trial_id, {})[key] = json.loads(value)
    return [(int(a["pid"]), str(a["trial_dir"])) for a in attrs.values() if "pid" in a and "trial_dir" in a]


def _config(folder: str | Path) -> str:
    return Path(folder).name.split("-", 1)[1]


@pytest.fixture
def cluster():
    with LocalRayCluster(head_cpus=1, extra=1, gpus=1) as running:
        yield running


def test_a_lost_node_and_a_killed_driver_leave_every_grid_point_complete_once(cluster, tmp_path):
    exp = tmp_path / "grid.yaml"
    exp.write_text(GRID, encoding="utf-8")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tunelab", "tune", str(exp), "--out", str(out), "--quiet", "--json",
           "--ray", cluster.address]
    deadline = time.monotonic() + DEADLINE_S
    driver = subprocess.Popen(cmd, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # 1. a trial placed on node2 has saved an epoch checkpoint but not its last epoch: lose the node
        killed_dir, nodes = None, set()
        while killed_dir is None:
            assert driver.poll() is None, f"tune ended early: {driver.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no trial on node2 could be caught mid-trial"
            for pid, folder in _running(out / "study.db"):
                nodes.add(cluster.node_of(pid))
                saved = list((out / folder / "checkpoints").glob("epoch_*.pt"))
                if cluster.node_of(pid) == "node2" and saved and len(_epochs(out / folder)) <= CAUGHT_BY:
                    cluster.kill_node("node2")
                    killed_dir = out / folder
                    break
            time.sleep(0.005)
        before = _epochs(killed_dir)
        assert not [pid for pid in marked_pids(f"{cluster.tag}-node2") if not is_zombie(pid)]
        # 2. the head's worker goes on alone; a few results later the driver is killed outright
        done_at_loss = len(list(out.glob("trials/*/result.json")))
        while len(list(out.glob("trials/*/result.json"))) < min(27, done_at_loss + 3):
            assert driver.poll() is None, f"tune ended early: {driver.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline
            nodes |= {cluster.node_of(pid) for pid, _ in _running(out / "study.db")}
            time.sleep(0.02)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert 1 <= len(before) < EPOCHS and not (killed_dir / "result.json").exists()
    assert {"head", "node2"} <= nodes  # a trial worker placed on each node

    # 3. the same command resumes the study on what is left of the cluster
    rerun = subprocess.Popen(cmd, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = rerun.communicate(timeout=max(30, deadline - time.monotonic()))
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.wait()
    assert rerun.returncode == 0, stderr[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])  # Ray's raylet may print its own notice of the lost node first
    assert result["finished"] and result["n_complete"] == 27 and result["ran_trials"] >= 1
    import optuna

    trained_by = {t.user_attrs.get("pid") for t in optuna.load_study(
        study_name="ray_grid", storage=f"sqlite:///{out / 'study.db'}").trials}
    assert rerun.pid not in trained_by  # the rerun's trials were trained by Ray workers, not by the driver

    with (out / "summary.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 27 and {row["state"] for row in rows} == {"complete"}
    points = {tuple(sorted(json.loads(row["params"]).items())) for row in rows}
    assert len(points) == 27
    results = sorted(out.glob("trials/*/result.json"))
    assert len(results) == 27 and len({_config(p.parent) for p in results}) == 27  # each point once

    # the lost trial continued in its folder: every epoch once, resumed after the ones it had
    continued = [p.parent for p in results if _config(p.parent) == _config(killed_dir)]
    assert len(continued) == 1
    assert _epochs(continued[0]) == list(range(1, EPOCHS + 1))
    record = json.loads((continued[0] / "result.json").read_text(encoding="utf-8"))
    assert record["epochs_run"] == EPOCHS
    assert 1 <= record["resumed_from_epoch"] <= len(before)
