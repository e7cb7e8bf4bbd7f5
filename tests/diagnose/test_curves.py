"""Curve rules: flat train loss, exploding/NaN loss, overfitting, best epoch far before the last."""

from __future__ import annotations

from tunelab.diagnose.curves import best_epoch_early, loss_exploding, overfitting, train_loss_flat
from tunelab.diagnose.thresholds import DEFAULT_THRESHOLDS as TH
from tunelab.runs.view import RunView


def one_trial(build, **kwargs) -> RunView:
    b = build().experiment(strategy="none", train={"lr": 0.001})
    b.trial(0, **kwargs)
    return RunView(b.root)


def test_flat_train_loss_says_raise_lr(build):
    run = one_trial(build, train=[0.776, 0.772, 0.768, 0.764], val=[0.74, 0.74, 0.735, 0.733])
    [f] = train_loss_flat(run, TH)
    assert f.severity == "warning" and f.trials == [0]
    assert "0.776 at epoch 1" in f.evidence and "epoch 4" in f.evidence and "1.5%" in f.evidence
    assert "raise lr ×10 (--set train.lr=0.01)" in f.next_experiment and f.overrides == {"train.lr": 0.01}


def test_falling_train_loss_is_not_flat(build):
    run = one_trial(build, train=[0.776, 0.6, 0.45, 0.345], val=[0.7, 0.55, 0.45, 0.373])
    assert train_loss_flat(run, TH) == []


def test_nan_loss_is_an_error_naming_the_epoch(build):
    run = one_trial(build, train=[1.0, 3.0, None], val=[1.0, 2.0, None], state="diverged",
                    reason="train_loss=nan at epoch 3")
    [f] = loss_exploding(run, TH)
    assert f.severity == "error"
    assert f.evidence == "train_loss=nan at epoch 3"
    assert "--set train.lr=0.0001" in f.next_experiment and "max_grad_norm" in f.next_experiment


def test_infinite_loss_written_as_string_is_caught(build):
    run = one_trial(build, train=[1.0, "inf", 0.5], val=[1.0, 1.0, 1.0])
    [f] = loss_exploding(run, TH)
    assert f.severity == "error" and "epoch 2" in f.evidence


def test_diverged_state_without_nan_records_is_an_error(build):
    run = one_trial(build, train=[1.0, 2e6], val=[1.0, 1.0], state="diverged",
                    reason="train_loss=2e+06 above divergence.max_loss=1e+06 at epoch 2")
    [f] = loss_exploding(run, TH)
    assert f.severity == "error" and "above divergence.max_loss" in f.evidence


def test_loss_spike_is_a_warning_like_seed_004_lr_10(build):
    run = one_trial(build, train=[0.776, 2.906, 25.958, 15.0, 0.28], val=[0.6, 2.0, 20.0, 9.0, 0.29])
    [f] = loss_exploding(run, TH)
    assert f.severity == "warning"
    assert "25.96 at epoch 3" in f.evidence and "33×" in f.evidence


def test_already_clipped_run_is_told_only_to_lower_lr(build):
    b = build().experiment(strategy="none", train={"lr": 1.0, "max_grad_norm": 1.0})
    b.trial(0, train=[1.0, None], val=[1.0, None])
    [f] = loss_exploding(RunView(b.root), TH)
    assert "lower lr ×10 (--set train.lr=0.1) (clipping at max_grad_norm=1 is already on)" == f.next_experiment


def test_smooth_loss_does_not_explode(build):
    run = one_trial(build, train=[1.0, 0.8, 0.9, 0.7], val=[1.0, 0.8, 0.85, 0.75])
    assert loss_exploding(run, TH) == []


def test_growing_gap_is_overfitting_naming_the_best_epoch(build):
    run = one_trial(build, train=[1.0, 0.8, 0.6, 0.4, 0.25, 0.1], val=[1.0, 0.8, 0.7, 0.75, 0.85, 0.95])
    [f] = overfitting(run, TH)
    assert f.severity == "warning"
    assert "stopped improving at epoch 3 (0.7)" in f.evidence
    assert "from 0.1 at epoch 3 to 0.85 at epoch 6" in f.evidence
    assert "--set train.epochs=3" in f.next_experiment and f.overrides == {"train.epochs": 3}


def test_overfitting_prefers_train_eval_loss(build):
    run = one_trial(build, train=[1.0, 0.9, 0.8, 0.7, 0.6], val=[1.0, 0.8, 0.9, 1.0, 1.1],
                    extra={"train_eval_loss": [0.9, 0.7, 0.5, 0.3, 0.2]})
    [f] = overfitting(run, TH)
    assert "val_loss−train_eval_loss gap" in f.evidence


def test_gap_that_does_not_grow_is_not_overfitting(build):
    run = one_trial(build, train=[1.0, 0.8, 0.6, 0.5, 0.45], val=[1.0, 0.82, 0.63, 0.52, 0.48])
    assert overfitting(run, TH) == []


def test_best_epoch_far_before_the_last_is_named(build):
    val = [1.0, 0.8, 0.6, 0.5, 0.45, 0.46, 0.47, 0.5, 0.52, 0.55]
    run = one_trial(build, train=[1.0 - 0.05 * i for i in range(10)], val=val)
    [f] = best_epoch_early(run, TH)
    assert f.severity == "info"
    assert f.evidence.startswith("val_loss best 0.45 at epoch 5 of 10")
    assert "train.epochs=5" in f.next_experiment


def test_seed_000_base_model_best_at_14_of_15_is_fine(build):
    val = [0.5 - 0.02 * i for i in range(13)] + [0.2007, 0.2013]
    val[12] = 0.2024
    run = one_trial(build, train=[0.5 - 0.02 * i for i in range(15)], val=val)
    assert best_epoch_early(run, TH) == []


def test_early_stopping_already_on_means_no_best_epoch_finding(build):
    b = build().experiment(strategy="none", train={"early_stopping": {"patience": 3}})
    b.trial(0, train=[1.0, 0.9, 0.8, 0.7, 0.6, 0.5], val=[1.0, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert best_epoch_early(RunView(b.root), TH) == []


def test_each_seed_is_checked_and_named(build):
    b = build().experiment(strategy="none", train={"lr": 0.001})
    b.trial(0)
    folder = b.root / "trials" / "0-t0"
    import json

    for i, train in enumerate(([1.0, 0.5, 0.25], [1.0, 0.99, 0.98])):
        seed = folder / f"seed-{i}"
        seed.mkdir()
        rows = [{"epoch": e + 1, "train_loss": v, "val_loss": v} for e, v in enumerate(train)]
        (seed / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    [f] = train_loss_flat(RunView(b.root), TH)
    assert f.evidence.startswith("seed 2 of 2: ")


def test_two_epochs_of_a_wider_gap_are_not_overfitting(build):
    run = one_trial(build, train=[1.0, 0.5, 0.3, 0.2, 0.1], val=[1.0, 0.6, 0.4, 0.3, 0.45])
    assert overfitting(run, TH) == []
