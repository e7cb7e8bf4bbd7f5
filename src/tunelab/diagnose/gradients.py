"""Rules over one trial's gradient norms (grad_norms.jsonl): outside about 1e-2..10, vanishing in early layers."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from tunelab.diagnose.finding import Finding
from tunelab.diagnose.readings import fmt, num, per_trial, setting
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
        if not math.isfinite(peak) or peak > th.grad_norm_high:
            clip = setting(run, trial, "train.max_grad_norm")
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
                next_experiment=(
                    "lower lr ×10" + ("" if clip else " or add clipping (train.max_grad_norm=1.0)")
                ),
            )
        median = statistics.median(v for _, v in totals)
        if median < th.grad_norm_low:
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
                next_experiment="raise lr ×10, or check the initialization, activations and input scaling",
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
        if median >= th.vanishing_ratio:
            return None
        epoch, _, first, last = ratios[-1]
        activation = setting(run, trial, "model.activation")
        swap = (
            f"replace {activation} with relu or gelu, " if activation in ("sigmoid", "tanh") else ""
        )
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
            next_experiment=f"{swap}add model.layer_norm or use fewer layers, and check the initialization",
        )

    return per_trial(run, check)
