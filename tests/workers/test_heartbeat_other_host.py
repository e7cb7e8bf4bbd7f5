"""A worker on "another machine" (its own UTS namespace, so its own host name) is killed
mid-trial on a PostgreSQL study. No pid check can reach it; its heartbeats, written to
`trial_heartbeats` while it trained, stop, and a surviving worker fails and retries its trial
after the grace."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
import yaml
from optuna.trial import TrialState

from fixtures.postgres import pg_storage

ELSEWHERE = "tunelab-elsewhere"
GRID = {
    "data": {"name": "diabetes"},
    "model": {"family": "mlp", "hidden_dims": [16]},
    "train": {"epochs": 12, "batch_size": 2, "lr": 0.001},
    "search": {"strategy": "grid", "vectorize": "off", "n_jobs": 1,
               "space": {"train.lr": [0.0003, 0.001, 0.003]}},
    "final": {"enabled": False},
}
ENV = {**os.environ, "TUNELAB_HEARTBEAT_INTERVAL_S": "1", "TUNELAB_HEARTBEAT_GRACE_S": "3"}


def _worker_cmd(exp: Path, url: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "tunelab", "worker", str(exp), "--storage", url, "--out", str(out), "--quiet"]


def _other_host_worker(exp: Path, url: str, out: Path) -> subprocess.Popen[str]:
    """`exec` keeps the pid: the process we kill is the worker itself."""
    cmd = " ".join(_worker_cmd(exp, url, out))
    return subprocess.Popen(["unshare", "-u", "sh", "-c", f"hostname {ELSEWHERE} && exec {cmd}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)


def _heartbeat_rows(url: str, trial_id: int) -> int:
    with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as conn:
        query = sa.text("select count(*) from trial_heartbeats where trial_id = :t")
        return conn.execute(query, {"t": trial_id}).scalar()


def _needs_unshare() -> None:
    probe = subprocess.run(["unshare", "-u", "true"], capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("unshare -u is needed for the other-host test (run as root)")
        pytest.skip("unshare -u is not permitted here (needs root)")


def test_a_worker_killed_on_another_host_is_found_by_its_heartbeats(tmp_path, pg_url, study_name):
    _needs_unshare()
    exp = tmp_path / "grid.yaml"
    exp.write_text(yaml.safe_dump({"name": study_name, **GRID}))
    out = tmp_path / "shared"
    victim = _other_host_worker(exp, pg_url, out)
    killed, beats = None, 0
    deadline = time.time() + 180
    while time.time() < deadline and killed is None:
        assert victim.poll() is None, f"the victim exited before it was caught mid-trial: {victim.stderr.read()}"
        try:
            study = optuna.load_study(study_name=study_name, storage=pg_storage(pg_url))
        except KeyError:
            time.sleep(0.2)
            continue
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            metrics = out / t.user_attrs.get("trial_dir", "-") / "metrics.jsonl"
            mid_trial = metrics.exists() and len(metrics.read_text().splitlines()) >= 2
            if t.user_attrs.get("host") == ELSEWHERE and mid_trial:
                beats = _heartbeat_rows(pg_url, t._trial_id)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                killed = t.number
        time.sleep(0.1)
    assert killed is not None, "never caught the victim in the middle of a trial"
    assert beats == 1, "the running trial had no row in trial_heartbeats"

    survivor = subprocess.run(_worker_cmd(exp, pg_url, out), capture_output=True, text=True, timeout=240, env=ENV)

    assert survivor.returncode == 0, survivor.stderr
    trials = optuna.load_study(study_name=study_name, storage=pg_storage(pg_url)).get_trials(deepcopy=False)
    dead = trials[killed]
    assert dead.state == TrialState.FAIL
    assert dead.user_attrs["outcome"] == "crashed" and "heartbeats" in dead.user_attrs["reason"]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    assert len(retry) == 1 and retry[0].user_attrs["outcome"] == "complete"
    assert retry[0].user_attrs["trial_dir"] != dead.user_attrs["trial_dir"]
    lrs = sorted(json.loads(t.user_attrs["config_key"])["train.lr"] for t in trials
                 if t.user_attrs.get("outcome") == "complete")
    assert lrs == [0.0003, 0.001, 0.003]
    assert not (out / dead.user_attrs["trial_dir"]).exists()  # the retry continued in the dead trial's folder
