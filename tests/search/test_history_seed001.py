"""optimization_history_seed001.json: seed 001's history shape, beside our own file (unchanged)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tunelab.app.tune import tune
from tunelab.config.load import load_experiment
from tunelab.search.history_seed001 import undotted_names


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_seed001_history_has_its_shape_and_plain_names(tmp_path):
    out = tmp_path / "run"
    raw = {
        "name": "h",
        "data": {"name": "digits"},
        "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 1},
        "search": {"strategy": "grid", "space": {"train.lr": [0.001, 0.01], "model.dropout": [0.0, 0.2]}},
        "final": {"enabled": False},
    }

    tune(load_experiment(None, raw=raw), out=out, run_final=False)

    ours = json.loads((out / "optimization_history.json").read_text(encoding="utf-8"))
    theirs = json.loads((out / "optimization_history_seed001.json").read_text(encoding="utf-8"))
    assert set(theirs) == {"best_params", "best_value", "n_trials", "optimization_history"}
    assert theirs["n_trials"] == 4 == len(theirs["optimization_history"])
    assert [set(e) for e in theirs["optimization_history"]] == [{"trial", "value", "params"}] * 4
    by_number = {t["number"]: t for t in ours["trials"]}
    for entry in theirs["optimization_history"]:
        mine = by_number[entry["trial"]]
        assert entry["value"] == pytest.approx(mine["value"])
        assert entry["params"] == {"lr": mine["params"]["train.lr"], "dropout": mine["params"]["model.dropout"]}
    assert theirs["best_value"] == pytest.approx(ours["best_value"])
    assert theirs["best_params"] == {"lr": ours["best_params"]["train.lr"],
                                     "dropout": ours["best_params"]["model.dropout"]}
    assert "trials" in ours and "selection" in ours  # our own shape is untouched


def test_clashing_last_parts_keep_the_whole_path():
    knobs = [SimpleNamespace(path=p) for p in ("model.dropout", "train.lr", "a.seed", "b.seed")]
    assert undotted_names(knobs) == {"model.dropout": "dropout", "train.lr": "lr", "a.seed": "a_seed",
                                     "b.seed": "b_seed"}
