"""Every number the diagnosis rules compare against, in one place; docs/diagnosis.md shows this table."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _t(default: float, doc: str) -> Any:
    """A threshold field; `doc` (what the number means) is its comment and its row in the docs."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Thresholds:
    """Thresholds of the diagnosis rules; pass a changed copy (`dataclasses.replace`) to tune them."""

    # --- curves (per trial, from metrics.jsonl)
    min_epochs: int = _t(3, "curve rules look only at runs with at least this many logged epochs")
    flat_rel_drop: float = _t(
        0.05, "train loss is flat when its lowest value is less than this fraction below epoch 1's"
    )
    explode_factor: float = _t(
        10.0, "train loss explodes when an epoch's value exceeds this many times its lowest earlier value"
    )
    overfit_gap_growth: float = _t(
        0.1,
        "overfitting when the val-train loss gap grows after the best epoch by more than this fraction "
        "of the best val loss",
    )
    best_epoch_gap_frac: float = _t(
        0.2, "the best epoch is far before the last when at least this fraction of the epochs follow it ..."
    )
    best_epoch_gap_min: int = _t(3, "... and at least this many epochs follow it ...")
    best_epoch_min_rel: float = _t(
        0.05, "... and the last epoch's monitored loss is worse than the best by more than this fraction"
    )
    best_epoch_min_score_drop: float = _t(
        0.02, "... or, for a monitored score (accuracy, F1, R²), lower than the best by more than this"
    )
    explode_floor_frac: float = _t(
        0.5, "a train-loss spike counts only when it climbs back to at least this fraction of epoch 1's loss"
    )
    overfit_min_rise: float = _t(
        0.02, "overfitting also needs val loss to rise above its best by this fraction of epoch 1's val loss"
    )
    overfit_rel_rise: float = _t(0.1, "... and by this fraction of the best val loss itself")
    near_best_rel: float = _t(
        0.01, "a trial within this relative distance of the study's best value is never called flat"
    )
    converged_frac: float = _t(
        0.05, "a train loss that ended below this fraction of epoch 1's has converged: small gradients are normal"
    )

    # --- gradients (per trial, from grad_norms.jsonl); seed 000: healthy norms are about 1e-2..10
    grad_norm_low: float = _t(1e-2, "a median total gradient norm below this is vanishing")
    grad_norm_high: float = _t(10.0, "a total gradient norm above this in any epoch is exploding")
    vanishing_ratio: float = _t(
        1e-3,
        "gradients vanish in the first layers when the first layer's weight-gradient norm is below this "
        "fraction of the last layer's (median over epochs)",
    )

    # --- study (from optimization_history.json and experiment.yaml)
    seed_spread_ratio: float = _t(
        1.0, "seed noise when the seeds' std exceeds this many times the winner's margin over the runner-up"
    )
    edge_frac: float = _t(
        0.05, "a range's best value within this fraction of the range (log-scaled when log) of an end is on the edge"
    )
    edge_min_values: int = _t(3, "a list of values needs at least this many distinct numbers for the edge rule")
    failed_share_max: float = _t(0.3, "narrow the range when diverged plus pruned trials exceed this share")
    improving_window: float = _t(
        0.2, "a sampler study is still improving when its best was found in this last fraction of the trials ..."
    )
    improving_rel: float = _t(0.01, "... and beat the best before that window by more than this relative amount")
    improving_min_trials: int = _t(5, "sampler studies with fewer trials are not judged for still improving")
    trials_per_knob: int = _t(10, "sampler studies need at least this many trials per searched knob")
    tie_max: int = _t(
        3, "more trials than this tied with the winner: the objective (or the validation split) cannot rank them"
    )
    improving_epochs_window: float = _t(
        0.25, "a run is still improving when its val loss fell over this last fraction of the epochs ..."
    )
    improving_epochs_rel: float = _t(0.02, "... by more than this fraction of its value at the window's start ...")
    improving_epochs_floor: float = _t(0.01, "... and by more than this fraction of epoch 1's val loss")
    bounce_up_share: float = _t(
        0.4, "train loss bounces when it rises in at least this share of the epoch steps of its second half ..."
    )
    bounce_amplitude: float = _t(
        0.1, "... by a mean step of this fraction of its mean and of epoch 1's loss, ending as far above its lowest"
    )

    # --- final model (final/test_metrics.json vs the chosen trial's validation value)
    r2_gap_max: float = _t(0.2, "R²: validation and test disagree when they differ by more than this, or in sign")
    loss_ratio_max: float = _t(
        1.5, "losses and errors: validation and test disagree when test exceeds this many times validation"
    )
    score_gap_max: float = _t(0.1, "accuracy and F1: validation and test disagree when they differ by more than this")
    val_test_z_warn: float = _t(
        3.0, "... and only when the gap exceeds this many standard errors of chance on the two splits' sizes "
        "(a warning)"
    )
    val_test_z_error: float = _t(5.0, "... an error past this many (clearly beyond noise)")

    # --- data (data_checks.json, measured once when the data were prepared)
    leak_accuracy_min: float = _t(0.99, "classification: one feature alone reaching this val accuracy leaks the target")
    leak_margin_min: float = _t(0.2, "... when that accuracy also beats the majority class alone by this much")
    leak_r2_min: float = _t(0.98, "regression: one feature alone reaching this val R² leaks the target")
    class_ratio_min: float = _t(0.2, "imbalanced when train's rarest class has fewer rows than this times its largest")
    class_share_shift_max: float = _t(
        0.1, "val/test classes differ from train when a class share differs by more than this (and by more "
        "than 3 standard errors of a random split of that size)"
    )
    class_missing_expected_min: float = _t(
        5.0, "a class missing from val/test counts when it should have had this many rows"
    )
    duplicate_share_warn: float = _t(0.01, "repeated rows are a warning past this share of a split (info below)")


DEFAULT_THRESHOLDS = Thresholds()


def threshold_rows(th: Thresholds = DEFAULT_THRESHOLDS) -> list[tuple[str, float, str]]:
    """(name, value, meaning) for every threshold, in declaration order."""
    return [(f.name, getattr(th, f.name), f.metadata["doc"]) for f in fields(th)]


def thresholds_markdown(th: Thresholds = DEFAULT_THRESHOLDS) -> str:
    """The threshold table of docs/diagnosis.md, generated so the doc cannot drift."""
    lines = ["| threshold | default | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {value:g} | {doc} |" for name, value, doc in threshold_rows(th)]
    return "\n".join(lines) + "\n"
