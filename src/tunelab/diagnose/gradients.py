"""Rules over one trial's gradient norms (grad_norms.jsonl): outside about 1e-2..10, vanishing in early layers."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from tunelab.diagnose.advice import set_text, valid_overrides
from tunelab.diagnose.finding import Finding
from tunelab.diagnose.readings import converged, curve, fmt, num, per_trial, scaled, setting
from tunelab.diagnose.thresholds import Thresholds
from tunelab.runs.view import RunView, SeedRun, TrialView


def _totals(seed: SeedRun) -> list[tuple[int, float]]:
    out = []
    for record in seed.grad_norms:
        if isinstance(record, Mapping) and isinstance(record.get("epoch"), int):
            value = num(record.get("total"))
            if value is not None:
                out.append((record["epoch"], value))
    return out


def grad_norm_range(run: RunView, th: Thresholds) -> list[Finding]:
    """Total gradient norm above `grad_norm_high` in some epoch, or a median below `grad_norm_low`."""

    def check(trial: TrialView, seed: SeedRun) -> Finding | None:
        totals = _totals(seed)
        if not totals:
            return None
        peak_epoch, peak = max(totals, key=lambda p: p[1] if math.isfinite(p[1]) else math.inf)
        clip = setting(run, trial, "train.max_grad_norm")
        if (not math.isfinite(peak) or peak > th.grad_norm_high) and not clip:
            # with clipping on, large raw norms are what clipping is for: nothing to advise
            lr = scaled(setting(run, trial, "train.lr"), 0.1)
            overrides = {"train.lr": lr} if lr is not None and valid_overrides(run, trial, {"train.lr": lr}) else {}
            return Finding(
                rule="grad_norm_range",
                severity="warning",
                scope="trial",
                trials=[trial.number],
                title="gradient norms too large",
                evidence=(
                    f"total gradient norm {fmt(peak)} at epoch {peak_epoch} (> {fmt(th.grad_norm_high)}); "
                    f"median {fmt(statistics.median(v for _, v in totals))} over {len(totals)} epochs"
                ),
                next_experiment=f"lower lr ×10 ({set_text(overrides)}) or add clipping (--set train.max_grad_norm=1.0)",
                overrides=overrides,
            )
        median = statistics.median(v for _, v in totals)
        if median < th.grad_norm_low and not converged(curve(seed, "train_loss"), th.converged_frac):
            lr = scaled(setting(run, trial, "train.lr"), 10)
            overrides = {"train.lr": lr} if lr is not None and valid_overrides(run, trial, {"train.lr": lr}) else {}
            low_epoch, low = min(totals, key=lambda p: p[1])
            return Finding(
                rule="grad_norm_range",
                severity="warning",
                scope="trial",
                trials=[trial.number],
                title="gradient norms vanishing",
                evidence=(
                    f"median total gradient norm {fmt(median)} over {len(totals)} epochs (< {fmt(th.grad_norm_low)}); "
                    f"lowest {fmt(low)} at epoch {low_epoch}"
                ),
                next_experiment=(
                    f"raise lr ×10 ({set_text(overrides)}), or check the initialization, activations and input scaling"
                ),
                overrides=overrides,
            )
        return None

    return per_trial(run, check)


def vanishing_first_layers(run: RunView, th: Thresholds) -> list[Finding]:
    """The first layer's weight-gradient norm is a tiny fraction of the last layer's (median over epochs)."""

    def check(trial: TrialView, seed: SeedRun) -> Finding | None:
        ratios: list[tuple[int, float, float, float]] = []
        first_name = last_name = ""
        for record in seed.grad_norms:
            norms = record.get("norms") if isinstance(record, Mapping) else None
            if not isinstance(norms, Mapping) or not isinstance(record.get("epoch"), int):
                continue
            # parameter order is the model's (named_parameters): first weight = first layer
            weights = [k for k in norms if str(k).endswith("weight")] or list(norms)
            if len(weights) < 2:
                continue
            first_name, last_name = weights[0], weights[-1]
            first, last = num(norms[first_name]), num(norms[last_name])
            if first is None or last is None or not last > 0 or not math.isfinite(first / last):
                continue
            ratios.append((record["epoch"], first / last, first, last))
        if len(ratios) < 1:
            return None
        median = statistics.median(r for _, r, _, _ in ratios)
        if median >= th.vanishing_ratio or converged(curve(seed, "train_loss"), th.converged_frac):
            return None
        epoch, _, first, last = ratios[-1]
        activation = setting(run, trial, "model.activation")
        overrides: dict[str, object] = {}
        for option in ({"model.activation": "relu"} if activation in ("sigmoid", "tanh") else {},
                       {"model.layer_norm": True}):
            changes = option and setting(run, trial, next(iter(option))) != next(iter(option.values()))
            if changes and valid_overrides(run, trial, option):  # only families that have the key
                overrides = option
                break
        fix = f"try {set_text(overrides)}, or use fewer layers" if overrides else "use fewer layers"
        return Finding(
            rule="vanishing_first_layers",
            severity="warning",
            scope="trial",
            trials=[trial.number],
            title="gradients vanish in the first layers",
            evidence=(
                f"first layer {first_name} gradient norm {fmt(first)} vs last layer {last_name} {fmt(last)} "
                f"at epoch {epoch}; median ratio {fmt(median)} over {len(ratios)} epochs (< {fmt(th.vanishing_ratio)})"
            ),
            next_experiment=f"{fix}, and check the initialization",
            overrides=overrides,
        )

    return per_trial(run, check)
