"""`tune`'s trial processes forked from it on CPU (search/forked_jobs.py), and leaving when the queue is empty."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import tunelab
from tunelab.app import tune as tune_module
from tunelab.app.prepare import prepare
from tunelab.config.load import load_experiment
from tunelab.runs.layout import RunLayout
from tunelab.search.claims import claim
from tunelab.search.forked_jobs import can_fork
from tunelab.search.local_jobs import TRIAL_PROCESS_ENV
from tunelab.search.study_run import start_study
from tunelab.train import artifacts

RAW = {
    "name": "forked",
    "data": {"name": "toy_2d"},
    "model": {"family": "mlp", "hidden_dims": [4]},
    "train": {"epochs": 3, "batch_size": 16, "optimizer": "sgd", "lr": 0.5, "loss": "cross_entropy"},
    "search": {"strategy": "grid", "n_jobs": 2, "vectorize": "off",
               "space": {"train.lr": [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]}},
    "final": {"enabled": False},
}


def test_trial_processes_are_forked_on_cpu_and_share_the_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forked: list[int] = []
    fork_workers = tune_module.fork_workers

    def spy(n: int, *args: Any) -> Any:
        forked.append(n)
        return fork_workers(n, *args)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a `tunelab worker` command was started")

    monkeypatch.setattr(tune_module, "fork_workers", spy)
    monkeypatch.setattr(tune_module, "spawn_workers", refused)
    result = tunelab.tune(load_experiment(None, raw=RAW), out=tmp_path / "run", write_outputs=False)
    assert forked == [1]
    assert result.finished and result.n_complete == 6
    study = optuna.load_study(study_name="forked", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len({t.user_attrs["config_key"] for t in done}) == 6 == len(done)
    pids = {t.user_attrs["pid"] for t in done}
    assert os.getpid() in pids and len(pids) == 2  # this process and its forked child


def test_fork_only_where_it_is_safe() -> None:
    exp = load_experiment(None, raw=RAW)
    url = "sqlite:///study.db"
    run: Any = SimpleNamespace(base=exp, storage_url=url)
    assert can_fork(run, url, threads=1)
    artifacts.WRITER.submit(lambda: None)  # the artifact writer's thread runs (it idles ~2 s, then ends)
    assert artifacts.WRITER._thread is not None and can_fork(run, url, threads=1)  # it is flushed first
    assert not can_fork(run, "grpc://127.0.0.1:13000", threads=1)  # a storage proxy serves from threads
    assert not can_fork(run, url, threads=2)  # the child would enter OpenMP regions its parent used
    text = SimpleNamespace(base=exp.model_copy(update={"model": SimpleNamespace(family="encoder_head")}),
                           storage_url=url)
    assert not can_fork(text, url, threads=1)  # an encoder's native threads: seed 001's forked child hung
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not can_fork(run, url, threads=1)  # a lock that thread holds would stay locked in the child
    finally:
        stop.set()
        other.join()


def test_a_trial_process_of_tune_leaves_the_last_trials_to_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing waits, another process's trial runs: a trial process started by `tune` ends at once
    (tune retries whatever comes back), instead of polling until that trial ends."""
    raw = {**RAW, "search": {**RAW["search"], "n_jobs": 1, "space": {"train.lr": [0.1]}}}
    prepared = prepare(load_experiment(None, raw=raw))
    layout = RunLayout(tmp_path / "run")
    url = f"sqlite:///{layout.study_db}"
    tunelab.tune(prepared.experiment, out=layout.root, write_outputs=False)
    run = start_study(prepared.experiment, prepared.dataset, prepared.exp_id, layout, url, data_dir=None)
    running = run.study.ask()  # another process's trial, still training (its owner is alive)
    claim(run.study, running)
    monkeypatch.setenv(TRIAL_PROCESS_ENV, "1")
    assert run.optimize() == 0
    assert run.study.trials[running.number].state == TrialState.RUNNING
    run.close()


def test_a_forked_child_writes_its_artifacts_with_its_own_thread() -> None:
    """The parent's writer thread does not exist in a child: a child that queued behind it would wait forever."""
    artifacts.WRITER.submit(lambda: None)
    pid = os.fork()
    if pid == 0:  # the child: a fresh writer, whose flush returns
        done: list[int] = []
        artifacts.WRITER.submit(done.append, 1)
        artifacts.flush()
        os._exit(0 if done == [1] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_cnn_study_whose_parent_built_a_conv_on_two_threads_forks_a_child_that_trains(tmp_path: Path) -> None:
    """`tune` builds the model (a conv forward) on torch's default threads before it forks; a child
    entering an OpenMP region its parent used with another thread count hung on a futex for ever
    (and `tune` with it). Run as a command so a hang is bounded and torch starts on every core."""
    import subprocess
    import sys

    import yaml

    raw = {
        "name": "forked_cnn",
        "data": {"name": "digits", "max_rows": 300},
        "model": {"family": "cnn", "channels": [4], "kernel_size": 3},
        "train": {"epochs": 1, "batch_size": 64, "threads": 1},
        "search": {"strategy": "grid", "n_jobs": 2, "vectorize": "off",
                   "space": {"train.lr": [0.01, 0.02, 0.03, 0.04]}},
        "final": {"enabled": False},
    }
    path = tmp_path / "forked_cnn.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "tunelab", "tune", str(path), "--out", str(tmp_path / "run")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        pytest.fail("tune with a forked trial process hung")
    assert proc.returncode == 0, output.decode()[-2000:]
    study = optuna.load_study(study_name="forked_cnn", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 4 and len({t.user_attrs["pid"] for t in done}) == 2  # tune and its forked child
