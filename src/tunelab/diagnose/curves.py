"""Rules over one trial's learning curves (metrics.jsonl): flat, exploding, overfitting, best epoch early."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from tunelab.diagnose.advice import set_text, valid_overrides
from tunelab.diagnose.finding import Finding
from tunelab.diagnose.readings import (
    best_record,
    curve,
    finite,
    fmt,
    is_maximized,
    monitor_of,
    near_best,
    per_trial,
    scaled,
    setting,
)
from tunelab.diagnose.thresholds import Thresholds
from tunelab.runs.outcome import STOPPED_EARLY, Outcome
from tunelab.runs.view import RunView, SeedRun, TrialView


def train_loss_flat(run: RunView, th: Thresholds) -> list[Finding]:
    """Train loss barely moves: lr too low, model too small, or bad labels."""

    def check(trial: TrialView, seed: SeedRun) -> Finding | None:
        points = curve(seed, "train_loss")
        if len(points) < th.min_epochs or not finite(points):
            return None
        first_epoch, first = points[0]
        low_epoch, low = min(points, key=lambda p: p[1])
        drop = (first - low) / abs(first) if first else 0.0
        if drop >= th.flat_rel_drop or (someone_learned(run, th) and near_best(run, trial, th.near_best_rel)):
            return None  # a flat loss on a trial as good as a learning one learned in its first epoch
        lr = scaled(setting(run, trial, "train.lr"), 10)
        overrides = {"train.lr": lr} if lr is not None and valid_overrides(run, trial, {"train.lr": lr}) else {}
        raise_lr = f"raise lr ×10 ({set_text(overrides)})" if overrides else "raise lr ×10"
        return Finding(
            rule="train_loss_flat",
            severity="warning",
            scope="trial",
            trials=[trial.number],
            title="train loss does not move",
            evidence=(
                f"train_loss {fmt(first)} at epoch {first_epoch}, lowest {fmt(low)} at epoch {low_epoch}: "
                f"{drop:.1%} lower over {len(points)} epochs (< {th.flat_rel_drop:.0%})"
            ),
            next_experiment=f"{raise_lr}; if it stays flat, try a larger model and check the labels",
            overrides=overrides,
        )

    return per_trial(run, check)


def someone_learned(run: RunView, th: Thresholds) -> bool:
    """Some trial's train loss fell by at least `flat_rel_drop`: the study's best value is a learned one."""
    cached = run.__dict__.get("_someone_learned")
    if cached is None:
        cached = False
        for trial in run.trials:
            points = curve(trial.first, "train_loss") if trial.first is not None else []
            usable = len(points) >= 2 and finite(points) and points[0][1] > 0
            if usable and (points[0][1] - min(v for _, v in points)) / points[0][1] >= th.flat_rel_drop:
                cached = True
                break
        run.__dict__["_someone_learned"] = cached
    return bool(cached)


def loss_exploding(run: RunView, th: Thresholds) -> list[Finding]:
    """Loss turns NaN/inf, crosses the divergence limit, or jumps far above its lowest value."""

    def check(trial: TrialView, seed: SeedRun) -> Finding | None:
        lr = scaled(setting(run, trial, "train.lr"), 0.1)
        clip = setting(run, trial, "train.max_grad_norm")
        overrides = {"train.lr": lr} if lr is not None and valid_overrides(run, trial, {"train.lr": lr}) else {}
        lower = f"lower lr ×10 ({set_text(overrides)})" if overrides else "lower lr ×10"
        fix = f"{lower} (clipping at max_grad_norm={fmt(clip)} is already on)" if clip else (
            f"{lower}, or add clipping (--set train.max_grad_norm=1.0)"
        )

        def found(severity: str, evidence: str) -> Finding:
            return replace(_exploding(trial, severity, evidence, fix), overrides=overrides)

        for key in ("train_loss", "val_loss"):
            for epoch, value in curve(seed, key):
                if not math.isfinite(value):
                    return found("error", f"{key}={value} at epoch {epoch}")
        state = seed.result.get("state") if seed.result else trial.state
        if state == Outcome.DIVERGED:
            reason = seed.result.get("reason") or trial.reason or "marked diverged"
            return found("error", f"trial diverged: {reason}")
        points = curve(seed, "train_loss")
        low_epoch, low = (points[0] if points else (0, math.nan))
        start = points[0][1] if points else math.nan
        for epoch, value in points[1:]:
            # a spike counts only when it climbs back towards the starting loss: a loss near its floor
            # (1e-4 -> 2e-3) is noise, not an lr problem
            if low > 0 and value > th.explode_factor * low and value >= th.explode_floor_frac * start:
                last_epoch, last = points[-1]
                return found(
                    "warning",
                    f"train_loss jumped to {fmt(value)} at epoch {epoch}, {value / low:.0f}× its lowest "
                    f"earlier value {fmt(low)} (epoch {low_epoch}); {fmt(last)} at the last epoch {last_epoch}",
                )
            if value < low:
                low_epoch, low = epoch, value
        return None

    return per_trial(run, check)


def _exploding(trial: TrialView, severity: str, evidence: str, fix: str) -> Finding:
    return Finding(
        rule="loss_exploding",
        severity=severity,
        scope="trial",
        trials=[trial.number],
        title="loss turns NaN or diverges: lr too high" if severity == "error" else "train loss spikes: lr too high",
        evidence=evidence,
        next_experiment=fix,
    )


def overfitting(run: RunView, th: Thresholds) -> list[Finding]:
    """The val-train gap grows after the best validation epoch while train loss keeps falling."""

    def check(trial: TrialView, seed: SeedRun) -> Finding | None:
        val = dict(curve(seed, "val_loss"))
        # train_eval_loss is measured like val (no dropout); train_loss is the running average while training
        train_key = "train_eval_loss" if curve(seed, "train_eval_loss") else "train_loss"
        train = dict(curve(seed, train_key))
        epochs = [e for e in val if e in train and math.isfinite(val[e]) and math.isfinite(train[e])]
        if len(epochs) < th.min_epochs:
            return None
        best = min(epochs, key=lambda e: val[e])
        last = epochs[-1]
        if last == best:
            return None
        gap_best, gap_last = val[best] - train[best], val[last] - train[last]
        growth = gap_last - gap_best
        grew = growth > th.overfit_gap_growth * abs(val[best])
        rise = val[last] - val[best]
        first_val = val[epochs[0]]
        if not (grew and gap_last > 0 and train[last] < train[best] and rise > th.overfit_min_rise * abs(first_val)):
            return None  # a gap that never turns positive, or a rise lost in the noise, is not overfitting
        patience = setting(run, trial, "train.early_stopping.patience")
        if last - best < th.best_epoch_gap_min:
            return None  # two epochs of a wider gap are not a trend
        if rise <= th.overfit_rel_rise * abs(val[best]) or (isinstance(patience, int) and last - best <= patience):
            return None  # a small rise, or one early stopping already cut off
        overrides = _stop_at(run, trial, best)
        return Finding(
            rule="overfitting",
            severity="warning",
            scope="trial",
            trials=[trial.number],
            title="overfitting: the train-validation gap grows",
            evidence=(
                f"val_loss−{train_key} gap grew from {fmt(gap_best)} at epoch {best} to {fmt(gap_last)} at epoch "
                f"{last} while {train_key} fell {fmt(train[best])}→{fmt(train[last])}; val_loss stopped improving "
                f"at epoch {best} ({fmt(val[best])})"
            ),
            next_experiment=(
                f"stop at the best epoch ({set_text(overrides)}) or add regularization (weight_decay, dropout); "
                "then check the split for leakage"
            ),
            overrides=overrides,
        )

    return per_trial(run, check)


def best_epoch_early(run: RunView, th: Thresholds) -> list[Finding]:
    """Validation improved, then worsened: the best epoch is far before the last one."""

    def check(trial: TrialView, seed: SeedRun) -> Finding | None:
        if (seed.result.get("state") or trial.state) in STOPPED_EARLY:
            return None
        if setting(run, trial, "train.early_stopping.patience") is not None:
            return None  # early stopping already ends the run soon after the best epoch
        monitor = monitor_of(run, seed)
        points = [(e, v) for e, v in curve(seed, monitor) if math.isfinite(v)]
        if len(points) < th.min_epochs:
            return None
        best_epoch = best_record(run, seed).get("epoch")
        if not isinstance(best_epoch, int):
            pick = max if is_maximized(monitor) else min
            best_epoch = pick(points, key=lambda p: p[1])[0]
        values = dict(points)
        last_epoch = points[-1][0]
        after = last_epoch - best_epoch
        if best_epoch not in values or after < th.best_epoch_gap_min or after < th.best_epoch_gap_frac * last_epoch:
            return None
        worse = abs(values[last_epoch] - values[best_epoch])
        floor = (
            th.best_epoch_min_score_drop if is_maximized(monitor) else th.best_epoch_min_rel * abs(values[best_epoch])
        )
        if worse <= floor:
            return None  # the last epoch is as good as the best one, within the metric's noise
        overrides = _stop_at(run, trial, best_epoch)
        return Finding(
            rule="best_epoch_early",
            severity="info",
            scope="trial",
            trials=[trial.number],
            title=f"validation stopped improving at epoch {best_epoch}",
            evidence=(
                f"{monitor} best {fmt(values[best_epoch])} at epoch {best_epoch} of {last_epoch}; "
                f"{fmt(values[last_epoch])} at the last epoch ({after} epochs without a new best)"
            ),
            next_experiment=f"train for {best_epoch} epochs ({set_text(overrides)}) or use early stopping",
            overrides=overrides,
        )

    return per_trial(run, check)


def _stop_at(run: RunView, trial: TrialView, epoch: int) -> dict[str, Any]:
    """`train.epochs=<epoch>` when tunelab accepts it for this trial, else early stopping."""
    for overrides in ({"train.epochs": max(1, epoch)}, {"train.early_stopping.patience": 3}):
        if valid_overrides(run, trial, overrides):
            return overrides
    return {}
