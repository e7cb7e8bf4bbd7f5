"""`tunelab export RUN --tensorboard DIR / --mlflow URI`, read back with each library's own reader."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tunelab.app.tune import tune
from tunelab.config.load import load_experiment
from tunelab.runs.records import read_jsonl


def _require(module: str, extra: str) -> Any:
    """The optional library, or a skip that says how to install it (never a skip in CI)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the {extra} extra is not installed: pip install 'tunelab[{extra}]'")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = {
        "name": "export_me",
        "data": {"name": "toy_2d"},
        "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 3, "batch_size": 32, "metrics": ["accuracy", "roc_auc"]},
        "search": {"strategy": "grid", "space": {"train.lr": [0.01, 0.1]}, "n_jobs": 1, "seeds": 2,
                   "objective": {"metric": "val_accuracy"}},
        "final": {"enabled": False},
    }
    out = tmp_path_factory.mktemp("export") / "run"
    tune(load_experiment(None, raw=raw), out=out, run_final=False)
    return out


def _fits(study: Path) -> dict[str, Path]:
    """trial folder / seed folder -> its path, for the 2 trials x 2 seeds."""
    return {f"{p.parent.name}/{p.name}": p for p in sorted((study / "trials").glob("*/seed-*"))}


def test_tensorboard_holds_every_epoch_scalar_and_the_hparams_of_each_fit(study: Path, tmp_path: Path, cli) -> None:
    _require("tensorboard", "tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    result = cli("export", study, "--tensorboard", tmp_path / "tb")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{tmp_path / 'tb' / 'run'}: 4 runs written, 0 already there\n"
    fits = _fits(study)
    assert len(fits) == 4
    for name, folder in fits.items():
        records = read_jsonl(folder / "metrics.jsonl")
        acc = EventAccumulator(str(tmp_path / "tb" / "run" / name))
        acc.Reload()
        for key in ("train_loss", "val_loss", "val_accuracy", "val_roc_auc", "lr"):
            events = acc.Scalars(key)
            assert [e.step for e in events] == [1, 2, 3], key
            assert [e.value for e in events] == pytest.approx([r[key] for r in records], rel=1e-6), key
        content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
        params = json.loads((folder / "params.json").read_text())
        assert hparams["train.lr"].number_value == pytest.approx(params["params"]["train.lr"])
        assert hparams["seed"].number_value == params["identity"]["seed"]
        assert hparams["state"].string_value == "complete"
    again = cli("export", study, "--tensorboard", tmp_path / "tb")
    assert again.stdout.endswith(": 0 runs written, 4 already there\n")


def test_mlflow_sqlite_store_has_a_run_per_fit_with_params_and_epoch_metrics(study: Path, tmp_path: Path, cli) -> None:
    _require("mlflow", "mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = cli("export", study, "--mlflow", uri)
    assert result.exit_code == 0, result.stderr
    assert "4 runs written, 0 already there" in result.stdout
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("export_me")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    fits = _fits(study)
    assert set(runs) == set(fits)
    for name, folder in fits.items():
        run = runs[name]
        params = json.loads((folder / "params.json").read_text())
        assert run.data.params["train.lr"] == str(params["params"]["train.lr"])
        assert run.data.params["seed"] == str(params["identity"]["seed"])
        assert run.info.status == "FINISHED"
        records = read_jsonl(folder / "metrics.jsonl")
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert sorted(m.step for m in history) == [1, 2, 3]
        by_step = {m.step: m.value for m in history}
        assert [by_step[r["epoch"]] for r in records] == pytest.approx([r["val_accuracy"] for r in records])
    again = cli("export", study, "--mlflow", uri)
    assert "0 runs written, 4 already there" in again.stdout
    assert len(client.search_runs([experiment.experiment_id])) == 4


def test_export_without_a_target_is_one_line_and_exit_2(study: Path, cli) -> None:
    result = cli("export", study)
    assert result.exit_code == 2
    assert result.stderr == "error: export: give --tensorboard DIR and/or --mlflow URI\n"


def test_a_missing_extra_says_how_to_install_it(study: Path, tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    result = cli("export", study, "--mlflow", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --mlflow: needs the mlflow package, which is not installed; pip install 'tunelab[mlflow]'\n"
    )
    assert not (tmp_path / "x.db").exists()


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path, cli) -> None:
    result = cli("export", tmp_path, "--tensorboard", tmp_path / "tb")
    assert result.exit_code == 2 and "is not a tunelab run folder" in result.stderr
    assert not (tmp_path / "tb").exists()
