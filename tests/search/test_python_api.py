"""The Python API as a notebook user meets it: the public names, explicit arguments, `TuneResult`,
and `tunelab.predict` on tables, arrays and lists of rows, in the units of the data set's own files."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tunelab
from tunelab.config.load import load_experiment

PUBLIC = {
    "ConfigError",
    "DataError",
    "Experiment",
    "RunFolderError",
    "RunView",
    "TrainResult",
    "TuneResult",
    "TunelabError",
    "__version__",
    "final",
    "load_experiment",
    "load_run",
    "predict",
    "prepare",
    "train",
    "tune",
    "work",
}


def test_dir_lists_exactly_the_public_api():
    assert set(dir(tunelab)) == PUBLIC
    assert set(tunelab.__all__) == PUBLIC - {"__version__"}


@pytest.mark.parametrize("name", ["tune", "train", "final", "predict", "prepare", "work", "load_experiment"])
def test_public_functions_take_named_arguments_and_say_what_they_do(name):
    func = getattr(tunelab, name)
    kinds = {p.kind for p in inspect.signature(func).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds
    assert func.__doc__ and len(func.__doc__.split()) >= 8


def _toy(tmp: Path, strategy: str, space: dict | None, **extra) -> tunelab.TuneResult:
    raw = {
        "name": f"api_{strategy}",
        "data": {"name": "toy_2d"},
        "model": {"family": "mlp", "hidden_dims": [4]},
        "train": {"epochs": 2, "batch_size": "full", "optimizer": "sgd", "lr": 0.1, "metrics": ["accuracy"]},
        "search": {"strategy": strategy, **({"space": space} if space else {}), **extra},
        "final": {"enabled": False},
    }
    return tunelab.tune(load_experiment(None, raw=raw), out=tmp / strategy)


@pytest.mark.parametrize(
    ("strategy", "space", "extra"),
    [
        ("grid", {"train.lr": [0.1, 0.01], "model.hidden_dims": [[4], [8]]}, {}),
        ("lr_sweep", {"train.lr": [0.01, 1.0]}, {}),
        ("staged", None, {"stages": [{"name": "lr", "space": {"train.lr": [0.1, 1.0]}}]}),
    ],
)
def test_best_params_are_keyed_by_key_path_for_every_strategy(tmp_path, strategy, space, extra):
    result = _toy(tmp_path, strategy, space, **extra)

    assert result.best_params and all("." in key for key in result.best_params), result.best_params
    assert "train.lr" in result.best_params
    assert result.test_metrics is None  # final.enabled: false
    assert result.report == result.run_dir / "report.html" and result.report.is_file()


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tunelab.TuneResult]:
    out = tmp_path_factory.mktemp("api") / "run"
    raw = {
        "name": "api_digits",
        "data": {"name": "digits"},
        "model": {"family": "mlp", "hidden_dims": [16]},
        "train": {"epochs": 2, "metrics": ["accuracy"]},
        "search": {"strategy": "grid", "space": {"train.lr": [0.01]}},
    }
    return out, tunelab.tune(load_experiment(None, raw=raw), out=out)


def test_tune_returns_the_final_test_metrics_and_the_report(digits_run):
    out, result = digits_run
    assert result.test_metrics is not None and 0.0 <= result.test_metrics["test_accuracy"] <= 1.0
    assert set(result.test_metrics) == {"test_loss", "test_accuracy"}
    assert result.report == out / "report.html" and result.report.is_file()
    assert tunelab.load_run(out).best_trial.number == 0  # a property, not a method


def test_predict_returns_class_probabilities_and_passes_the_id_through(digits_run):
    from sklearn.datasets import load_digits

    out, _ = digits_run
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    frame = pd.DataFrame(load_digits().data[:5], columns=names).assign(ID=[11, 12, 13, 14, 15])

    predicted = tunelab.predict(out, frame)

    labels = [str(d) for d in range(10)]
    assert list(predicted.columns) == ["ID", "prediction", "probability", *[f"probability_{d}" for d in labels]]
    assert predicted["ID"].tolist() == [11, 12, 13, 14, 15]
    probs = predicted[[f"probability_{d}" for d in labels]].to_numpy()
    assert probs.sum(axis=1) == pytest.approx(np.ones(5), abs=1e-5)
    assert predicted["prediction"].tolist() == [labels[k] for k in probs.argmax(axis=1)]
    assert predicted.equals(tunelab.predict(out, frame.to_dict("records")))


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ("frame", "DataFrame input: row 1, column pixel_0_3: empty or not a number, got 'x'"),
        ("array", "array input: row 1, column pixel_0_3: empty or not a number, got 'x'"),
        ("list", "list input: row 1, column pixel_0_3: empty or not a number, got 'x'"),
        (
            "short",
            "array input: expected rows of 64 feature values (pixel_0_0, pixel_0_1, pixel_0_2, pixel_0_3, "
            "pixel_0_4, ...), got shape (2, 3)",
        ),
    ],
)
def test_predict_names_a_bad_cell_by_row_and_column_in_every_input_kind(digits_run, rows, expected):
    out, _ = digits_run
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    values = np.zeros((2, 64), dtype=object)
    values[1, 3] = "x"
    given = {
        "frame": pd.DataFrame(values, columns=names),
        "array": values,
        "list": values.tolist(),
        "short": np.zeros((2, 3)),
    }[rows]
    with pytest.raises(tunelab.DataError) as caught:
        tunelab.predict(out, given)
    assert str(caught.value) == expected


def test_predict_on_a_train_run_uses_its_model_and_a_non_run_folder_says_so(tmp_path, cli):
    exp = tmp_path / "one.yaml"
    exp.write_text("name: one\ndata: {name: toy_2d}\nmodel: {hidden_dims: [4]}\ntrain: {epochs: 1}\n",
                   encoding="utf-8")
    assert cli("train", exp, "--out", tmp_path / "trained", "--quiet").exit_code == 0
    rows = np.zeros((1, 2))

    out = tunelab.predict(tmp_path / "trained", rows)  # its best epoch (tests/cli/test_train_predict.py)
    assert len(out) == 1 and "prediction" in out.columns
    with pytest.raises(tunelab.RunFolderError) as caught:
        tunelab.predict(tmp_path / "nothing", rows)
    assert str(caught.value) == f"{tmp_path / 'nothing'} is not a tunelab run folder (no experiment.yaml)"
