"""Parameter importance from the trials in optimization_history.json: the numbers study.db gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from tests.report.conftest import _experiment, _run

from tunelab.report.importance import history_study, importances
from tunelab.report.runinfo import ReportRun


@pytest.fixture(scope="module")
def tpe_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Float (log and linear) and categorical knobs: every kind of distribution the history must rebuild."""
    search = {"strategy": "tpe", "n_trials": 6, "sampler_seed": 3, "space": {
        "train.lr": {"low": 0.05, "high": 1.0, "log": True}, "train.momentum": {"low": 0.0, "high": 0.9},
        "model.hidden_dims": [[4], [8]]}}
    return _run(tmp_path_factory.mktemp("tpe"), "tune", _experiment("toy_tpe", search, epochs=2))


def _from_db(folder: Path) -> dict[str, float]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'study.db'}")
    study = optuna.load_study(study_name=storage.get_all_studies()[0].study_name, storage=storage)
    return dict(get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0)))


@pytest.mark.parametrize("fixture", ["tpe_run", "grid_run"])
def test_history_gives_study_dbs_importances_without_opening_it(fixture: str, request: pytest.FixtureRequest,
                                                               tmp_path: Path) -> None:
    folder = request.getfixturevalue(fixture)
    expected = _from_db(folder)
    copy = tmp_path / "run"
    shutil.copytree(folder, copy)
    (copy / "study.db").unlink()
    found = importances(ReportRun(copy))
    assert not isinstance(found, str), found
    scores, n_complete = found
    assert list(scores) == list(expected)  # the same ranking
    assert scores == pytest.approx(expected, abs=1e-12)
    assert n_complete == sum(t["state"] == "complete" for t in ReportRun(copy).view.history["trials"])


def test_history_without_values_falls_back_to_study_db(tpe_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(tpe_run, copy)
    history_file = copy / "optimization_history.json"
    history = json.loads(history_file.read_text())
    history["trials"][0]["value"] = None
    history_file.write_text(json.dumps(history))
    assert history_study(ReportRun(copy)) is None
    found = importances(ReportRun(copy))
    assert not isinstance(found, str) and list(found[0]) == list(_from_db(tpe_run))
    (copy / "study.db").unlink()
    assert "no Optuna study" in str(importances(ReportRun(copy)))


def test_a_param_outside_the_experiments_space_is_read_from_study_db(tpe_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(tpe_run, copy)
    history_file = copy / "optimization_history.json"
    history = json.loads(history_file.read_text())
    history["trials"][1]["params"]["train.weight_decay"] = 0.1
    history_file.write_text(json.dumps(history))
    assert history_study(ReportRun(copy)) is None
