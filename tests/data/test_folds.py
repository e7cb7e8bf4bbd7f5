"""data.cv_folds: k folds partition the non-test rows, the objective is the fold mean, bad k is refused."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml

from tunelab.app.tune import tune
from tunelab.config.load import load_experiment
from tunelab.config.schema import DataSection, TaskSection
from tunelab.data import load_dataset
from tunelab.data.folds import fold_rows
from tunelab.search.planning import group_limits


@pytest.mark.parametrize(("n_train", "n_val", "k"), [(80, 20, 5), (7, 3, 3), (2, 1, 3), (30, 6, 4)])
def test_folds_partition_the_non_test_rows_exactly(n_train, n_val, k):
    train, val = np.arange(n_train), np.arange(1000, 1000 + n_val)
    folds = [fold_rows(train, val, k, i, seed=3) for i in range(k)]

    vals = [f["val"] for f in folds]
    everything = np.sort(np.concatenate([train, val]))
    assert np.array_equal(np.sort(np.concatenate(vals)), everything)  # each row validated exactly once
    assert max(map(len, vals)) - min(map(len, vals)) <= 1
    for f in folds:
        assert not set(f["train"]) & set(f["val"])
        assert np.array_equal(np.sort(np.concatenate([f["train"], f["val"]])), everything)


def test_fold_datasets_keep_the_test_rows_and_scale_on_their_own_training_rows():
    sets = [load_dataset(DataSection(name="wine", cv_folds=4, cv_fold=i), TaskSection()) for i in range(4)]
    plain = load_dataset(DataSection(name="wine"), TaskSection())

    non_test = len(plain.train) + len(plain.val)
    assert non_test == 142 and len(plain.val) == 36
    assert sum(len(d.val) for d in sets) == non_test
    assert all(len(d.train) + len(d.val) == non_test for d in sets)
    assert all(torch_equal(d.test.y, plain.test.y) for d in sets)
    means = [d.feature_scaler.mean for d in sets]
    assert not all(torch_equal(means[0], m) for m in means[1:])  # each fold fits its scaler on its train rows
    merged = load_dataset(DataSection(name="wine", cv_folds=4), TaskSection(), merge_val=True)
    assert len(merged.train) == non_test  # the final model: every non-test row


def torch_equal(a, b) -> bool:
    return bool((a == b).all()) if a.shape == b.shape else False


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_objective_is_the_mean_of_the_fold_metrics(tmp_path):
    raw = {
        "name": "cv", "data": {"name": "wine", "cv_folds": 3},
        "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 2, "lr": 0.01},
        "search": {"strategy": "grid", "space": {"train.lr": [0.01]}},
        "final": {"enabled": False},
    }
    exp = load_experiment(None, raw=raw)
    assert group_limits(exp) == (10, 32)  # 3 folds a trial: 10 trials (30 members) a round
    out = tmp_path / "run"

    tune(exp, out=out, run_final=False)

    trial = json.loads((out / "optimization_history.json").read_text(encoding="utf-8"))["trials"][0]
    folder = out / trial["trial_dir"]
    fold_values, fold_index = [], []
    for i in range(3):
        fold_values.append(json.loads((folder / f"seed-{i}" / "result.json").read_text())["best_record"]["val_loss"])
        fold_index.append(json.loads((folder / f"seed-{i}" / "params.json").read_text())["config"]["data"]["cv_fold"])
    assert fold_index == [0, 1, 2]
    assert trial["seed_values"] == pytest.approx(fold_values)
    assert trial["value"] == pytest.approx(statistics.fmean(fold_values))
    std = f"{statistics.fmean(fold_values):.4f} ± {statistics.stdev(fold_values):.4f}"
    text = (out / "summary.md").read_text(encoding="utf-8")
    assert std in text and "mean ± std over 3 cross-validation folds" in text  # the fold mean and its std


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_folds_train_as_vectorized_members_and_equal_the_folds_trained_one_after_another(tmp_path):
    raw = {
        "name": "cv", "data": {"name": "wine", "cv_folds": 3},  # 142 rows: folds of 48, 47, 47
        "model": {"family": "mlp", "hidden_dims": [8], "dropout": 0.1},
        "train": {"epochs": 3, "batch_size": 16, "loss": "cross_entropy", "metrics": ["accuracy"]},
        "search": {"strategy": "grid", "space": {"train.lr": [0.01, 0.003]}},
        "final": {"enabled": False},
    }
    histories, kinds = {}, {}
    for setting in ("off", "auto"):
        out = tmp_path / setting
        tune(load_experiment(None, raw={**raw, "search": {**raw["search"], "vectorize": setting}}), out=out)
        history = json.loads((out / "optimization_history.json").read_text(encoding="utf-8"))["trials"]
        histories[setting] = {json.dumps(t["params"], sort_keys=True): t["seed_values"] for t in history}
        kinds[setting] = {json.loads((out / t["trial_dir"] / "cost.json").read_text())["train_time_kind"]
                          for t in history}
    assert histories["off"].keys() == histories["auto"].keys() and len(histories["off"]) == 2
    for key, values in histories["off"].items():
        assert len(values) == 3 and histories["auto"][key] == pytest.approx(values, rel=1e-5, abs=1e-6)
    assert kinds == {"off": {"measured"}, "auto": {"estimated"}}  # auto: the folds trained in groups


@pytest.mark.parametrize(("data", "search", "message"), [
    ({"cv_folds": 1}, {}, "cv_folds"),
    ({"cv_folds": 500}, {}, "data.cv_folds: 500 folds need at least 500 non-test rows, got 142"),
    ({"cv_folds": 3}, {"seeds": 2}, "cv_folds trains 3 folds in place of seeds; set search.seeds to 1, got 2"),
    ({"cv_fold": 1}, {}, "cv_fold is set by tunelab for each fold; set data.cv_folds instead"),
])
def test_bad_folds_are_a_one_line_error_and_write_nothing(tmp_path: Path, cli, data, search, message):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "name": "cv", "data": {"name": "wine", **data}, "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 1}, "search": {"strategy": "grid", "space": {"train.lr": [0.01]}, **search},
    }), encoding="utf-8")

    result = cli("tune", path, "--out", tmp_path / "run", "-q")

    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
