"""The study is an ordinary Optuna study: `optuna.load_study` and optuna-dashboard read it as is."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from fixtures.no_report import without_report
from tunelab.app.tune import tune
from tunelab.config.load import load_experiment

EPOCHS = 3


def grid_experiment(name: str, pruner: str) -> Any:
    raw = {
        "name": name,
        "data": {"name": "digits"},
        "model": {"family": "mlp", "hidden_dims": [16]},
        "train": {"epochs": EPOCHS},
        "search": {
            "strategy": "grid",
            "pruner": pruner,
            "space": {"train.lr": [0.1, 0.01, 0.001], "model.dropout": [0.0, 0.2]},
        },
        "final": {"enabled": False},
    }
    return load_experiment(None, raw=raw)


@pytest.fixture(scope="module")
def median_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("storage") / "run"
    with without_report():  # no test of this module reads the report (fixtures/no_report.py)
        res = tune(grid_experiment("storage_median", "median"), out=out, run_final=False)
    assert res.finished and res.n_complete + res.n_pruned == 6
    return out


def load(out: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


def test_load_study_reads_every_trial_with_params_and_intermediate_values(median_run):
    study = load(median_run, "storage_median")

    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(trials) == 6
    assert {(t.params["lr"], t.params["dropout"]) for t in trials} == {
        (lr, do) for lr in (0.1, 0.01, 0.001) for do in (0.0, 0.2)
    }
    for t in trials:
        last = EPOCHS if t.state == TrialState.COMPLETE else t.user_attrs["pruned_at_epoch"]
        assert sorted(t.intermediate_values) == list(range(1, last + 1))
        if t.state == TrialState.COMPLETE:
            # the objective is the best epoch's value, one of the reported ones
            assert t.value == pytest.approx(min(t.intermediate_values.values()))
        assert t.user_attrs["trial_dir"].startswith("trials/")
    assert study.best_trial.params == load(median_run, "storage_median").best_trial.params
    assert "experiment" in study.user_attrs


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_intermediate_values_are_reported_without_a_pruner(tmp_path):
    out = tmp_path / "run"
    tune(grid_experiment("storage_nopruner", "none"), out=out, run_final=False)

    for t in load(out, "storage_nopruner").get_trials(states=(TrialState.COMPLETE,)):
        assert sorted(t.intermediate_values) == list(range(1, EPOCHS + 1))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read().decode("utf-8"))


def test_optuna_dashboard_serves_the_study_over_http(median_run):
    pytest.importorskip("optuna_dashboard")
    exe = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent))
    assert exe is not None
    port = free_port()
    proc = subprocess.Popen(
        [exe, f"sqlite:///{median_run / 'study.db'}", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                studies = get_json(f"{base}/api/studies")
                break
            except OSError:
                assert proc.poll() is None, "optuna-dashboard exited"
                assert time.monotonic() < deadline, "optuna-dashboard did not answer within 30 s"
                time.sleep(0.1)
        summaries = {s["study_name"]: s for s in studies["study_summaries"]}
        assert "storage_median" in summaries
        detail = get_json(f"{base}/api/studies/{summaries['storage_median']['study_id']}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    assert detail["has_intermediate_values"] is True
    trials = [t for t in detail["trials"] if t["state"] in ("Complete", "Pruned")]
    assert len(trials) == 6
    for t in trials:
        assert {p["name"] for p in t["params"]} == {"lr", "dropout"}
        assert t["intermediate_values"]
    assert detail["best_trials"]
