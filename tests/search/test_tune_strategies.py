"""Ablation counts, seeds per configuration, pruning and divergence, through `tunelab.app.tune.tune`."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import optuna
import pytest

from tunelab.app.tune import tune
from tunelab.config.load import load_experiment
from tunelab.search.results import TuneResult

pytestmark = pytest.mark.usefixtures("no_report")  # no test here reads the report (fixtures/no_report.py)


def run(out: Path, name: str, data: str, train: dict[str, Any], search: dict[str, Any], **model: Any) -> TuneResult:
    raw = {
        "name": name,
        "data": {"name": data},
        "model": {"family": "mlp", "hidden_dims": [32], **model},
        "train": train,
        "search": search,
        "final": {"enabled": False},
    }
    return tune(load_experiment(None, raw=raw), out=out, run_final=False)


def history(out: Path) -> dict[str, Any]:
    return json.loads((out / "optimization_history.json").read_text(encoding="utf-8"))


def summary(out: Path) -> list[dict[str, str]]:
    with (out / "summary.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def study_of(out: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


# --------------------------------------------------------------------------- ablation


def test_ablation_runs_one_plus_sum_of_n_minus_one_configurations(tmp_path):
    space = {
        "train.lr": [0.001, 0.01, 0.1],  # default 0.001 listed
        "model.dropout": [0.0, 0.2],  # default 0.0 listed
        "model.activation": ["relu", "tanh", "gelu"],  # default relu listed
    }
    out = tmp_path / "run"

    res = run(out, "ablation", "digits", {"epochs": 2, "lr": 0.001}, {"strategy": "ablation", "space": space})

    expected = 1 + (3 - 1) + (2 - 1) + (3 - 1)
    assert res.n_complete == expected == 6
    trials = history(out)["trials"]
    points = [t["params"] for t in trials if t["state"] == "complete"]
    assert len(points) == 6
    # Anything else is a twin of a queued point failed by the other trial process (or a retry): same points.
    assert all(t["params"] in points and t["state"] == "fail" for t in trials if t["state"] != "complete")
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 6
    default = {"train.lr": 0.001, "model.dropout": 0.0, "model.activation": "relu"}
    assert points.count(default) == 1  # the default is run once, not once per knob
    for point in points:  # one factor at a time
        assert sum(point[k] != v for k, v in default.items()) <= 1


# --------------------------------------------------------------------------- seeds


def test_three_seeds_per_configuration_keep_per_seed_values_and_show_mean_pm_std(tmp_path):
    out = tmp_path / "run"

    res = run(
        out, "seeds", "digits", {"epochs": 2}, {"strategy": "grid", "seeds": 3, "space": {"train.lr": [0.01, 0.001]}}
    )

    assert res.n_complete == 2
    for trial_dir in (out / "trials").iterdir():
        assert sorted(p.name for p in trial_dir.iterdir() if p.is_dir()) == ["seed-0", "seed-1", "seed-2"]
        for i in range(3):
            assert (trial_dir / f"seed-{i}" / "result.json").exists()
    assert "±" in (out / "summary.md").read_text(encoding="utf-8")
    for trial in history(out)["trials"]:
        assert len(trial["seed_values"]) == 3
        assert len(set(trial["seed_values"])) == 3  # the seeds really differ
        assert trial["value"] == pytest.approx(sum(trial["seed_values"]) / 3)
    for row in summary(out):
        assert int(row["seeds"]) == 3
        assert float(row["val_loss_std"]) > 0


# --------------------------------------------------------------------------- pruning


@pytest.mark.parametrize("pruner", ["median", "asha"])
def test_pruner_prunes_hopeless_trials_and_records_the_epoch(tmp_path, pruner):
    out = tmp_path / "run"
    search = {
        "strategy": "random",
        "n_trials": 12,
        "pruner": pruner,
        "space": {"train.lr": {"low": 1e-5, "high": 1.0, "log": True}},
    }

    res = run(out, f"prune_{pruner}", "digits", {"epochs": 4, "optimizer": "sgd"}, search)

    assert res.n_pruned >= 1
    assert res.n_complete + res.n_pruned == 12
    pruned_rows = [r for r in summary(out) if r["state"] == "pruned"]
    assert len(pruned_rows) == res.n_pruned
    hist = history(out)
    pruned = [t for t in hist["trials"] if t["state"] == "pruned"]
    assert len(pruned) == res.n_pruned
    study = study_of(out, f"prune_{pruner}")
    for t in pruned:
        epoch = study.trials[t["number"]].user_attrs["pruned_at_epoch"]
        assert 1 <= epoch < 4
        assert f"pruned at epoch {epoch}" in t["reason"]
        assert max(int(k) for k in t["intermediate_values"]) == epoch
        result = json.loads((out / t["trial_dir"] / "result.json").read_text(encoding="utf-8"))
        assert result["state"] == "pruned" and result["epochs_run"] == epoch


# --------------------------------------------------------------------------- divergence


def test_diverging_trial_fails_with_the_epoch_and_the_study_goes_on(tmp_path):
    out = tmp_path / "run"
    search = {"strategy": "grid", "space": {"train.lr": [10000.0, 0.01, 0.001]}}

    res = run(out, "diverge", "diabetes", {"epochs": 3, "optimizer": "sgd"}, search, hidden_dims=[16])

    assert res.n_diverged == 1 and res.n_failed == 0  # diverged is not a crash
    assert res.n_complete == 2
    assert res.finished
    trials = {t["params"]["train.lr"]: t for t in history(out)["trials"]}
    bad = trials[10000.0]
    assert bad["outcome"] == "diverged"
    assert bad["state"] == "fail"
    assert "at epoch" in bad["reason"]
    assert trials[0.01]["state"] == trials[0.001]["state"] == "complete"
    rows = {json.loads(r["params"])["train.lr"]: r for r in summary(out)}
    assert rows[10000.0]["state"] == "diverged"
    assert "at epoch" in rows[10000.0]["reason"]
