"""Gradient rules: total norm outside about 1e-2..10, vanishing in the first layers."""

from __future__ import annotations

from tunelab.diagnose.gradients import grad_norm_range, vanishing_first_layers
from tunelab.diagnose.thresholds import DEFAULT_THRESHOLDS as TH
from tunelab.runs.view import RunView


def one_trial(build, **kwargs) -> RunView:
    b = build().experiment(strategy="none", train=kwargs.pop("train_cfg", None))
    b.trial(0, **kwargs)
    return RunView(b.root)


def test_norm_above_ten_names_the_epoch(build):
    [f] = grad_norm_range(one_trial(build, grad_totals=[0.5, 35.2, 2.0]), TH)
    assert f.severity == "warning" and f.title == "gradient norms too large"
    assert "35.2 at epoch 2 (> 10)" in f.evidence
    assert "max_grad_norm=1.0" in f.next_experiment


def test_clipped_run_with_large_norms_gets_no_too_large_advice(build):
    run = one_trial(build, grad_totals=[50.0, 40.0], train_cfg={"max_grad_norm": 1.0})
    assert grad_norm_range(run, TH) == []


def test_tiny_norms_on_a_converged_loss_are_not_vanishing(build):
    b = build().experiment(strategy="none")
    b.trial(0, train=[1.0, 0.01, 0.001], val=[1.0, 0.02, 0.002], grad_totals=[1e-3, 1e-4, 1e-5])
    assert grad_norm_range(RunView(b.root), TH) == []


def test_tiny_median_norm_is_vanishing(build):
    [f] = grad_norm_range(one_trial(build, grad_totals=[0.02, 1e-4, 2e-4, 1e-4, 3e-4]), TH)
    assert f.title == "gradient norms vanishing"
    assert "median total gradient norm 0.0002" in f.evidence and "epoch 2" in f.evidence


def test_seed_000_norms_are_healthy(build):
    # seed 000's base model: per-layer 0.02..0.34, total about 0.5
    assert grad_norm_range(one_trial(build, grad_totals=[0.5225, 0.4437, 0.41]), TH) == []


def test_first_layer_far_below_last_is_vanishing_in_early_layers(build):
    norms = [{"0.weight": 2e-6, "0.bias": 1e-6, "2.weight": 1e-3, "4.weight": 0.3, "4.bias": 0.1}] * 4
    [f] = vanishing_first_layers(one_trial(build, layer_norms=norms), TH)
    assert f.severity == "warning"
    assert "first layer 0.weight gradient norm 2e-06 vs last layer 4.weight 0.3 at epoch 4" in f.evidence


def test_sigmoid_model_is_told_to_switch_activation(build):
    b = build().experiment(strategy="none")
    b.trial(0, layer_norms=[{"0.weight": 1e-7, "2.weight": 0.5}] * 3, config={"model": {"activation": "sigmoid"}})
    [f] = vanishing_first_layers(RunView(b.root), TH)
    assert f.overrides == {"model.activation": "relu"}
    assert f.next_experiment.startswith("try --set model.activation=relu")


def test_comparable_layer_norms_are_fine(build):
    norms = [{"0.weight": 0.2753, "0.bias": 0.0689, "3.weight": 0.2751, "5.weight": 0.339, "5.bias": 0.024}] * 3
    assert vanishing_first_layers(one_trial(build, layer_norms=norms), TH) == []


def test_missing_grad_norms_file_gives_no_finding(build):
    run = one_trial(build, train=[1.0, 0.5, 0.2], val=[1.0, 0.5, 0.2])
    assert grad_norm_range(run, TH) == [] and vanishing_first_layers(run, TH) == []
