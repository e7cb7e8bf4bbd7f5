"""Rule over the final model: the test metric far from the chosen trial's validation estimate (seed 000)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from tunelab.config.vocabulary import higher_is_better
from tunelab.diagnose.finding import Finding
from tunelab.diagnose.readings import best_record, fmt, num
from tunelab.diagnose.thresholds import Thresholds
from tunelab.runs.view import RunView, TrialView


def _chosen(run: RunView) -> TrialView | None:
    number = run.final.get("trial_number") if isinstance(run.final, Mapping) else None
    if isinstance(run.final, Mapping) and run.final.get("source") == "combination":
        return None  # the combined winners are no study trial: no validation row to compare with
    for trial in run.trials:
        if trial.number == number:
            return trial
    return run.best_trial


def _disagree(metric: str, val: float, test: float, th: Thresholds) -> bool:
    if metric == "r2":
        return abs(val - test) > th.r2_gap_max or (val > 0) != (test > 0)
    if higher_is_better(metric):  # scores in [0, 1]: accuracy, f1, roc_auc, ...
        return abs(val - test) > th.score_gap_max
    # losses and errors (loss, mse, mae, rmse): lower is better, compare as a ratio
    return val > 0 and test > th.loss_ratio_max * val


def val_test_disagree(run: RunView, th: Thresholds) -> list[Finding]:
    """Compare each final test_<metric> with the chosen trial's val_<metric> at its best epoch."""
    final = run.final
    if not isinstance(final, Mapping) or not final:
        return []
    trial = _chosen(run)
    if trial is None:
        return []
    best = [best_record(run, seed) for seed in trial.seeds]
    pairs = []
    epochs = sorted({r["epoch"] for r in best if isinstance(r.get("epoch"), int)})
    for key, raw in final.items():
        if not key.startswith("test_") or key.endswith("_std"):
            continue
        metric = key[len("test_") :]
        test = num(raw)
        vals = [num(r.get(f"val_{metric}")) for r in best]
        vals_f = [v for v in vals if v is not None and math.isfinite(v)]
        if test is None or not math.isfinite(test) or not vals_f:
            continue
        val = statistics.fmean(vals_f)
        if _disagree(metric, val, test, th):
            pairs.append((metric, val, test))
    if not pairs:
        return []
    # the most telling pair first: scores (R² and friends) before losses
    pairs.sort(key=lambda p: not higher_is_better(p[0]))
    at = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs}" if epochs else "its best epoch"
    text = "; ".join(f"val_{m} {fmt(v)} vs test_{m} {fmt(t)}" for m, v, t in pairs)
    return [
        Finding(
            rule="val_test_disagree",
            severity="error",
            scope="study",
            trials=[trial.number],
            title="validation and test disagree",
            evidence=f"{text} (trial #{trial.number} at {at} vs the final model on test)",
            next_experiment=(
                "the split is too small or shifted: compare the target distribution per split, try another "
                "data.split_seed or a larger validation split; keep selecting on validation, never on test"
            ),
        )
    ]
