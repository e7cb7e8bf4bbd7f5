"""Rule over the final model: the test metric far from the chosen trial's validation estimate (seed 000).

A gap counts when it is large enough to matter (the `*_gap_max`/`loss_ratio_max` thresholds) and
larger than the split sizes explain (diagnose/split_noise.py): a warning past `val_test_z_warn`
standard errors, an error past `val_test_z_error`. A final model retrained for fewer than
`min_epochs` epochs is not the model that was validated (more rows per epoch move an early model a
lot), so its gap stays a warning that says so. A folder without split sizes (no split.json) is
judged on the size of the gap alone, as before split sizes were recorded.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from tunelab.config.vocabulary import higher_is_better
from tunelab.diagnose.finding import Finding
from tunelab.diagnose.readings import best_record, fmt, num
from tunelab.diagnose.split_noise import Gap, splits_known
from tunelab.diagnose.thresholds import Thresholds
from tunelab.runs.view import RunView, TrialView

SPLIT_ADVICE = (
    "the split is too small or shifted: compare the target distribution per split, try another "
    "data.split_seed or a larger validation split; keep selecting on validation, never on test"
)


def _chosen(run: RunView) -> TrialView | None:
    number = run.final.get("trial_number") if isinstance(run.final, Mapping) else None
    if isinstance(run.final, Mapping) and run.final.get("source") == "combination":
        return None  # the combined winners are no study trial: no validation row to compare with
    for trial in run.trials:
        if trial.number == number:
            return trial
    return run.best_trial


def _matters(metric: str, val: float, test: float, th: Thresholds) -> bool:
    """The gap is large enough to act on, whatever the split sizes."""
    if metric == "r2":
        return abs(val - test) > th.r2_gap_max or (val > 0) != (test > 0)
    if higher_is_better(metric):  # scores in [0, 1]: accuracy, f1, roc_auc, ...
        return abs(val - test) > th.score_gap_max
    # losses and errors (loss, mse, mae, rmse): lower is better, compare as a ratio
    return val > 0 and test > th.loss_ratio_max * val


def _rows(run: RunView) -> tuple[int | None, int | None]:
    """(validation rows, test rows) behind the two numbers: split.json, and the final model's own test count."""
    split = run.split_rows
    tested = run.final.get("rows_tested")
    n_test = tested if isinstance(tested, int) and tested > 0 else (split[2] if split else None)
    return (split[1] if split else None), n_test


def val_test_disagree(run: RunView, th: Thresholds) -> list[Finding]:
    """Compare each final test_<metric> with the chosen trial's val_<metric> at its best epoch."""
    final = run.final
    if not isinstance(final, Mapping) or not final:
        return []
    trial = _chosen(run)
    if trial is None:
        return []
    best = [best_record(run, seed) for seed in trial.seeds]
    epochs = sorted({r["epoch"] for r in best if isinstance(r.get("epoch"), int)})
    n_val, n_test = _rows(run)
    known = splits_known(n_val, n_test)
    pairs: list[tuple[str, float, float, Gap | None]] = []
    for key, raw in final.items():
        if not key.startswith("test_") or key.endswith("_std"):
            continue
        metric = key[len("test_") :]
        test = num(raw)
        vals_f = [v for v in (num(r.get(f"val_{metric}")) for r in best) if v is not None and math.isfinite(v)]
        if test is None or not math.isfinite(test) or not vals_f:
            continue
        val = statistics.fmean(vals_f)
        if not _matters(metric, val, test, th):
            continue
        if not known:
            pairs.append((metric, val, test, None))
            continue
        gap = Gap(metric, val, test, int(n_val or 0), int(n_test or 0), num(final.get(f"{key}_std")) or 0.0)
        if (gap.z if gap.kind == "loss" else abs(gap.z)) >= th.val_test_z_warn:
            pairs.append((metric, val, test, gap))
    if not pairs:
        return []
    # the most telling pair first: scores (R² and friends) before losses
    pairs.sort(key=lambda p: not higher_is_better(p[0]))
    at = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs}" if epochs else "its best epoch"
    where = f"trial #{trial.number} at {at} vs the final model on test"
    if not known:
        text = "; ".join(f"val_{m} {fmt(v)} vs test_{m} {fmt(t)}" for m, v, t, _ in pairs)
        return [_finding(trial, "error", f"{text} ({where}; split sizes unknown: no split.json)", SPLIT_ADVICE)]
    gaps = [g for *_, g in pairs if g is not None]
    text = "; ".join(g.text() for g in gaps)
    z = max(abs(g.z) for g in gaps)
    retrained = final.get("epochs")
    if isinstance(retrained, int) and retrained < th.min_epochs:
        rows = final.get("rows_trained")
        on = f" on {rows} rows" if isinstance(rows, int) else ""
        return [_finding(
            trial, "warning",
            f"{text} ({where}); the final model trained only {retrained} epoch(s){on}: a retrain this early "
            "is not the model that was validated, so the gap may be the retrain's, not the split's",
            f"train longer before judging the split (the chosen epoch {retrained} is under {th.min_epochs}): "
            "raise train.epochs, then tune again",
        )]
    severity = "error" if z >= th.val_test_z_error else "warning"
    return [_finding(trial, severity, f"{text} ({where})", SPLIT_ADVICE)]


def _finding(trial: TrialView, severity: str, evidence: str, advice: str) -> Finding:
    return Finding(
        rule="val_test_disagree",
        severity=severity,
        scope="study",
        trials=[trial.number],
        title="validation and test disagree",
        evidence=evidence,
        next_experiment=advice,
    )
