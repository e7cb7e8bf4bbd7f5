"""Floors, reconciliation, advice that validates, and the rules added for issue 12."""

from __future__ import annotations

import json

import yaml

from tunelab.diagnose.advice import override_error, reconcile, space_error
from tunelab.diagnose.curves import loss_exploding, overfitting
from tunelab.diagnose.finding import Finding
from tunelab.diagnose.gradients import vanishing_first_layers
from tunelab.diagnose.knobs import dead_knob, objective_ties
from tunelab.diagnose.study import best_on_edge
from tunelab.diagnose.thresholds import DEFAULT_THRESHOLDS as TH
from tunelab.diagnose.training import loss_bouncing, lowest_lr_still_learning, under_trained
from tunelab.runs.view import RunView


def test_a_spike_near_the_loss_floor_is_not_exploding(build):
    b = build().experiment(strategy="none")
    b.trial(0, train=[1.1, 0.01, 3.6e-6, 4e-4, 1e-5], val=[1.0, 0.02, 0.01, 0.01, 0.01])
    assert loss_exploding(RunView(b.root), TH) == []


def test_a_gap_that_never_turns_positive_is_not_overfitting(build):
    b = build().experiment(strategy="none")
    b.trial(0, train=[1.0, 0.8, 0.6, 0.5, 0.45, 0.4], val=[0.5, 0.3, 0.2, 0.25, 0.3, 0.35])
    assert overfitting(RunView(b.root), TH) == []


def test_layer_norm_is_never_advised_for_a_cnn(build):
    b = build().experiment(strategy="none")
    b.trial(0, layer_norms=[{"0.weight": 1e-7, "2.weight": 0.5}] * 3,
            config={"model": {"family": "cnn", "activation": "relu"}})
    exp = yaml.safe_load((b.root / "experiment.yaml").read_text(encoding="utf-8"))
    exp["model"] = {"family": "cnn", "activation": "relu"}
    exp["data"]["name"] = "digits"
    (b.root / "experiment.yaml").write_text(yaml.safe_dump(exp), encoding="utf-8")
    run = RunView(b.root)
    [f] = vanishing_first_layers(run, TH)
    assert "layer_norm" not in f.next_experiment and f.overrides == {}
    assert override_error(run, None, {"model.layer_norm": True})  # the schema refuses it for a cnn


def test_edges_past_a_natural_bound_give_no_advice(build):
    space = {"train.gradient_accumulation_steps": [1, 2, 4], "model.dropout": [0.1, 0.5, 0.9]}
    b = build().experiment(space=space)
    b.trial(0, params={"train.gradient_accumulation_steps": 1, "model.dropout": 0.9}, value=0.2)
    b.trial(1, params={"train.gradient_accumulation_steps": 4, "model.dropout": 0.1}, value=0.5)
    b.history()
    run = RunView(b.root)
    assert best_on_edge(run, TH) == []  # 0 steps and dropout 1.3 are refused by the schema
    assert space_error(run, {"train.gradient_accumulation_steps": [0, 1, 2, 4]})


def test_a_log_range_edge_is_widened_to_a_valid_range(build):
    b = build().experiment(strategy="tpe", space={"train.lr": {"low": 1e-4, "high": 1e-1, "log": True}})
    b.trial(0, params={"train.lr": 0.099}, value=0.1)
    b.trial(1, params={"train.lr": 0.001}, value=0.5)
    b.history()
    run = RunView(b.root)
    [f] = best_on_edge(run, TH)
    assert f.space == {"train.lr": {"low": 1e-4, "high": 1.0, "log": True}}
    assert space_error(run, f.space) == ""


def test_contradicting_findings_keep_the_stronger_with_the_reason():
    flat = Finding("train_loss_flat", "warning", "trial", [3], "flat")
    boom = Finding("loss_exploding", "error", "trial", [3, 4], "boom")
    [kept] = reconcile([flat, boom], ["loss_exploding", "train_loss_flat"])
    assert kept.rule == "loss_exploding" and kept.reconciled == ["dropped train_loss_flat on #3 (it advised the "
                                                                  "opposite lr change): flat"]


def test_findings_on_other_trials_are_not_reconciled():
    flat = Finding("train_loss_flat", "warning", "trial", [1])
    boom = Finding("loss_exploding", "error", "trial", [2])
    assert len(reconcile([flat, boom])) == 2


def test_under_trained_winner_says_raise_epochs(build):
    b = build().experiment(space={"model.activation": ["relu", "gelu"]})
    falling = [1.0, 0.8, 0.6, 0.45, 0.35, 0.28, 0.22, 0.18, 0.15, 0.12]
    b.trial(0, params={"model.activation": "relu"}, value=0.12, train=falling, val=falling)
    b.trial(1, params={"model.activation": "gelu"}, value=0.3, train=falling, val=[*falling[:8], 0.3, 0.3])
    b.history()
    [f] = under_trained(RunView(b.root), TH)
    assert f.trials == [0] and f.overrides == {"train.epochs": 20}
    assert "--set train.epochs=20" in f.next_experiment
    assert f.evidence.endswith("its last epoch is its best; 0 other trial(s) were still improving too")


def test_a_lone_trained_run_is_not_compared_with_other_trials(build):
    b = build().experiment(strategy="none")
    falling = [1.0, 0.8, 0.6, 0.45, 0.35, 0.28, 0.22, 0.18, 0.15, 0.12]
    b.trial(0, train=falling, val=falling)
    [f] = under_trained(RunView(b.root), TH)
    assert f.evidence == "trial #0's val_loss fell 33.3% over its last 3 of 10 epochs and its last epoch is its best"


def test_a_converged_winner_is_not_under_trained(build):
    b = build().experiment(space={"model.activation": ["relu", "gelu"]})
    flat_end = [1.0, 0.3, 0.1, 0.05, 0.04, 0.039, 0.0389, 0.0388, 0.0387, 0.0386]
    b.trial(0, params={"model.activation": "relu"}, value=0.0386, train=flat_end, val=flat_end)
    b.history()
    assert under_trained(RunView(b.root), TH) == []


def test_the_lowest_lr_still_learning_and_bouncing_at_the_highest(build):
    b = build().experiment(space={"train.lr": [1e-4, 1e-2, 1.0]})
    b.trial(0, params={"train.lr": 1e-4}, value=0.8, train=[1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55],
            val=[1.0, 0.95, 0.9, 0.85, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8])
    b.trial(1, params={"train.lr": 1e-2}, value=0.2, train=[1.0, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2],
            val=[1.0, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2])
    b.trial(2, params={"train.lr": 1.0}, value=0.6, train=[1.0, 0.5, 0.9, 0.4, 0.8, 0.5, 0.9, 0.6, 0.9, 0.7],
            val=[1.0, 0.6, 0.9, 0.6, 0.8, 0.6, 0.9, 0.7, 0.9, 0.7])
    b.history()
    run = RunView(b.root)
    [low] = lowest_lr_still_learning(run, TH)
    assert low.trials == [0] and low.overrides == {"train.epochs": 20}
    [bounce] = loss_bouncing(run, TH)
    assert bounce.trials == [2] and bounce.overrides == {"train.lr": 0.333}


def test_momentum_searched_with_adam_is_a_dead_knob(build):
    b = build().experiment(space={"train.momentum": [0.0, 0.9]}, train={"optimizer": "adam"})
    b.trial(0, params={"train.momentum": 0.0}, value=0.3)
    b.trial(1, params={"train.momentum": 0.9}, value=0.3)
    b.history()
    [f] = dead_knob(RunView(b.root), TH)
    assert "only sgd and rmsprop use momentum" in f.evidence and f.space == {"train.momentum": [0.0]}
    b2 = build("sgd").experiment(space={"train.momentum": [0.0, 0.9]}, train={"optimizer": "sgd"})
    b2.trial(0, params={"train.momentum": 0.0}, value=0.3)
    b2.history()
    assert dead_knob(RunView(b2.root), TH) == []


def test_many_tied_trials_ask_for_a_stricter_objective(build):
    b = build().experiment(strategy="tpe", metric="val_accuracy", space={"train.lr": [0.01, 0.1]})
    for i in range(6):
        b.trial(i, params={"train.lr": 0.01}, value=1.0)
    b.history(direction="maximize", metric="val_accuracy")
    path = b.root / "optimization_history.json"
    history = json.loads(path.read_text())
    history["selection"] = {"tied": [3, 0, 1, 2, 4, 5], "tolerance": 1e-6, "rule": "r", "tie_break": "val_loss"}
    path.write_text(json.dumps(history))
    run = RunView(b.root)
    [f] = objective_ties(run, TH)
    assert f.overrides == {"search.objective.metric": "val_loss"} and "data.val_fraction=0.4" in f.next_experiment
    assert best_on_edge(run, TH) == []  # the winner of a big tie sits wherever the tie-break put it
