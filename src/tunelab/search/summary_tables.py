"""The study's tables: summary.csv, summary.md and optimization_history.json, from the study alone."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tunelab.config.schema import Experiment
from tunelab.config.space import Knob, decode_params
from tunelab.markdown import md_escape
from tunelab.runs.cost_record import estimated_mark
from tunelab.runs.layout import RunLayout, TrialLayout
from tunelab.runs.outcome import COUNTED
from tunelab.runs.records import read_json, write_json_atomic, write_text_atomic
from tunelab.runs.test_touches import WHY as TEST_TOUCH_WHY
from tunelab.runs.test_touches import read_touches
from tunelab.search.ablation_tables import write_knob_tables
from tunelab.search.history_seed001 import seed001_history
from tunelab.search.selection import choose, winner_line

# A configuration's own cost (train/cost.py), copied from the trial's attributes.
COST_COLUMNS = ("n_params", "train_time_alone_s", "train_time_kind", "config_mem_mb", "config_mem_kind",
                "latency_ms_b1", "latency_ms_b256")


def _value_text(mean: float | None, std: float | None, seeds: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{mean:.4f} ± {std:.4f}" if seeds > 1 else f"{mean:.4f}"


def train_counterpart(exp: Experiment) -> str | None:
    """The training-split record key that mirrors the validation objective.

    `val_accuracy` -> `train_eval_accuracy` (needs `train.eval_train`); `val_loss` without it ->
    the running `train_loss`; otherwise None.
    """
    metric = exp.search.objective.metric
    if not metric.startswith("val_"):
        return None
    if exp.train.eval_train:
        return f"train_eval_{metric[4:]}"
    return "train_loss" if metric == "val_loss" else None


def _seed_results(root: Path | None, trial_dir: str, seeds: int) -> list[dict[str, Any]]:
    """Each seed's `result.json` of a trial folder (`seed-<i>/` with several seeds); unreadable ones skipped."""
    if root is None or not trial_dir:
        return []
    results = []
    for sub in TrialLayout(root / trial_dir).seeds(seeds):
        try:
            results.append(read_json(sub.result_json))
        except (OSError, ValueError):
            continue
    return results


def _mean(values: Sequence[Any]) -> float | None:
    finite = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _folder_columns(
    results: Sequence[dict[str, Any]], train_key: str | None, metric: str = ""
) -> dict[str, float | None]:
    """The training-split counterpart and every logged validation metric at the best epoch, and the
    mean epoch time, all seed means."""
    bests = [r.get("best_record") or {} for r in results]
    epoch_times = [r.get("train_time_s", 0) / r["epochs_run"] for r in results if r.get("epochs_run")]
    out: dict[str, float | None] = {"epoch_time_s": _mean(epoch_times)}
    if train_key:
        out[train_key] = _mean([b.get(train_key) for b in bests])
    for key in sorted({k for b in bests for k in b if k.startswith("val_") and k != metric}):
        out[key] = _mean([b.get(key) for b in bests])
    return out


def summary_rows(
    study: optuna.Study, exp: Experiment, knobs: Sequence[Knob], root: Path | None = None
) -> list[dict[str, Any]]:
    """One row per configuration, best first; crashed attempts that were retried are left out.

    With `root` (the run folder), each row also carries the training-split counterpart of the
    objective at the best epoch (`train_eval_<metric>`), read from the trial folder.
    """
    metric = exp.search.objective.metric
    train_key = train_counterpart(exp)
    rows = []
    for t in study.get_trials(deepcopy=False):
        outcome = t.user_attrs.get("outcome")
        if outcome not in COUNTED and t.state != TrialState.RUNNING:
            continue
        values = t.user_attrs.get("seed_values", [])
        mean = t.value if t.state == TrialState.COMPLETE else None
        std = t.user_attrs.get("value_std", 0.0)
        best_epochs = t.user_attrs.get("best_epochs", [])
        rows.append(
            {
                "number": t.number,
                "name": t.user_attrs.get("trial_dir", "").split("/")[-1],
                "params": json.dumps(decode_params(knobs, t.params), default=str),
                metric: _value_text(mean, std, len(values)),
                f"{metric}_mean": mean,
                f"{metric}_std": std if len(values) > 1 else None,
                "seeds": len(values),
                "seed_values": json.dumps(values),
                "best_epoch": best_epochs[0] if len(best_epochs) == 1 else json.dumps(best_epochs),
                **_folder_columns(
                    _seed_results(root, t.user_attrs.get("trial_dir", ""), len(values) or exp.search.seeds),
                    train_key,
                    metric,
                ),
                "train_time_s": t.user_attrs.get("train_time_s"),
                "peak_mem_mb": t.user_attrs.get("peak_mem_mb"),
                **{col: t.user_attrs.get(col) for col in COST_COLUMNS},
                "state": outcome or "running",
                "reason": t.user_attrs.get("reason", ""),
                "tie_val_loss": t.user_attrs.get("tie_val_loss"),
            }
        )
    maximize = exp.search.objective.resolved_direction() == "maximize"
    key = f"{metric}_mean"
    # equal values in the selection's tie-break order, so the first row is the winner
    rows.sort(key=lambda r: (r[key] is None, -(r[key] or 0) if maximize else (r[key] or 0),
                             r["tie_val_loss"] is None, r["tie_val_loss"] or 0.0))
    return rows


def seed_noise_flag(rows: Sequence[dict[str, Any]], metric: str) -> str:
    """A warning when the winner's margin over the runner-up is inside the seeds' spread."""
    done = [r for r in rows if r[f"{metric}_mean"] is not None]
    if len(done) < 2 or not done[0]["seeds"] or done[0]["seeds"] < 2:
        return ""
    margin = abs(done[0][f"{metric}_mean"] - done[1][f"{metric}_mean"])
    noise = max(done[0][f"{metric}_std"] or 0.0, done[1][f"{metric}_std"] or 0.0)
    if margin <= noise:
        return (
            f"winner #{done[0]['number']} beats #{done[1]['number']} by {margin:.4g}, inside the seed "
            f"spread (std {noise:.4g}): run more seeds before trusting the order"
        )
    return ""


def write_outputs(layout: RunLayout, study: optuna.Study, exp: Experiment, knobs: Sequence[Knob]) -> None:
    """Write the tables atomically; safe to call after every trial or on a crashed study."""
    metric = exp.search.objective.metric
    rows = summary_rows(study, exp, knobs, layout.root)
    finals = _final_metrics(layout)
    train_key = train_counterpart(exp)
    train_cols = [train_key] if train_key and any(r.get(train_key) is not None for r in rows) else []
    val_cols = sorted({k for r in rows for k in r if k.startswith("val_") and k != metric and
                       not k.startswith(f"{metric}_") and r[k] is not None})
    columns = ["number", "name", "params", metric, f"{metric}_mean", f"{metric}_std", "seeds", "seed_values",
               *val_cols, *train_cols, "best_epoch", "train_time_s", "epoch_time_s", "peak_mem_mb",
               *COST_COLUMNS, "state", "reason"]
    test_cols = sorted({k for f in finals.values() for k in f if k.startswith("test_") and not k.endswith("_std")})
    for row in rows:
        for col in test_cols:
            row[col] = finals.get(row["number"], {}).get(col)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns + test_cols, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(layout.summary_csv, buffer.getvalue())
    winner = winner_line(choose(study, metric), exp.train.monitor, knobs)
    touches = read_touches(layout)["count"]
    text = _markdown(exp, rows, metric, test_cols, train_cols, winner, val_cols, touches)
    if exp.search.strategy == "ablation":  # seed 002's reading: one small table per knob
        text += "\n" + write_knob_tables(layout, rows, exp, knobs, train_cols[0] if train_cols else None)
    write_text_atomic(layout.summary_md, text)
    write_json_atomic(layout.optimization_history, history(study, knobs, metric))
    write_json_atomic(layout.optimization_history_seed001, seed001_history(study, knobs, metric))


def _final_metrics(layout: RunLayout) -> dict[int, dict[str, Any]]:
    """Test scores by trial number: the winner's `final/` and every `final/trial-<N>/`."""
    found: dict[int, dict[str, Any]] = {}
    for final in [layout.final_of(), *(f for _, f in layout.final_trials())]:
        try:
            record = read_json(final.test_metrics) if final.test_metrics.exists() else {}
        except (OSError, ValueError):
            continue
        if isinstance(record.get("trial_number"), int):
            found[record["trial_number"]] = record
    return found


def _num(value: Any, fmt: str) -> str | None:
    return format(value, fmt) if isinstance(value, int | float) and not isinstance(value, bool) else None


def cost_cells(row: dict[str, Any]) -> list[str | None]:
    """Parameters, time alone, memory and latency of one row; estimates marked `~`."""
    time_alone = _num(row.get("train_time_alone_s"), ".2f")
    mem = _num(row.get("config_mem_mb"), ".2f")
    return [
        _num(row.get("n_params"), ","),
        estimated_mark(row, "train_time_kind") + time_alone if time_alone else None,
        estimated_mark(row, "config_mem_kind") + mem if mem else None,
        _num(row.get("latency_ms_b1"), ".4f"),
        _num(row.get("latency_ms_b256"), ".5f"),
    ]


COST_HEADER = ["params (n)", "time alone (s)", "memory (MB)", "latency b1 (ms/row)", "latency b256 (ms/row)"]
COST_NOTE = (
    "Cost of each configuration on its own: `time alone` is the fit's own time when it trained alone, "
    "or `~` an estimate (epochs x a solo calibration's step and evaluation time) when it trained in a "
    "vectorized group, whose shared clock says nothing about one member; `memory` is CUDA "
    "max_memory_allocated during a solo calibration, or `~` on CPU an estimate (weights + gradients + "
    "optimizer state + one batch's activations); latency is the trained model's eval forward pass per "
    "row at batch 1 and 256."
)


def _markdown(
    exp: Experiment,
    rows: Sequence[dict[str, Any]],
    metric: str,
    test_cols: Sequence[str],
    train_cols: Sequence[str] = (),
    winner: str = "",
    val_cols: Sequence[str] = (),
    test_touches: int = 0,
) -> str:
    direction = exp.search.objective.resolved_direction()
    lines = [
        f"# {md_escape(exp.name)}: {md_escape(exp.search.strategy)} search",
        "",
        f"Objective: {metric} ({direction}) at each configuration's best epoch, mean ± std over "
        + (f"{exp.data.cv_folds} cross-validation folds" if exp.data.cv_folds else f"{exp.search.seeds} seed(s)")
        + ". Test numbers come from final models only.",
        "",
    ]
    lines += [winner, ""] if winner else []
    flag = seed_noise_flag(rows, metric)
    if flag:
        lines += [f"> **Seed noise:** {md_escape(flag)}", ""]
    if test_touches:
        lines += [f"Test split scored {test_touches} time(s) in this run folder. {TEST_TOUCH_WHY}", ""]
    notes = "Train time is summed over seeds; epoch time is the mean time of one epoch."
    if val_cols:
        notes = f"{', '.join(f'`{c}`' for c in val_cols)}: at the same best epoch (seed mean). " + notes
    if train_cols:
        notes = f"`{train_cols[0]}`: the same measure on the training split at the best epoch (seed mean). " + notes
    lines += [notes, "", COST_NOTE, ""]
    header = ["#", "name", "params", metric, *val_cols, *train_cols, "best epoch", "epoch time (s)",
              *COST_HEADER, "state", *test_cols]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for r in rows:
        vals = [_num(r.get(c), ".4f") for c in [*val_cols, *train_cols]]
        cells = [r["number"], r["name"], r["params"], r[metric], *vals, r["best_epoch"],
                 _num(r.get("epoch_time_s"), ".3f"), *cost_cells(r),
                 r["state"] + (f" ({r['reason']})" if r["reason"] else "")]
        cells += [_num(r.get(c), ".4f") or "" for c in test_cols]
        lines.append("| " + " | ".join(md_escape(c if c is not None else "-") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def history(study: optuna.Study, knobs: Sequence[Knob], metric: str) -> dict[str, Any]:
    """Best params, best value and every trial, like seed 001's optimization_history.json."""
    trials = study.get_trials(deepcopy=False)
    choice = choose(study, metric)
    best = choice.winner
    best_params = decode_params(knobs, best.params) if best is not None else {}
    return {
        "study_name": study.study_name,
        "direction": study.direction.name.lower(),
        "metric": metric,
        "best_params": best_params,
        "best_value": choice.value,
        "best_trial": choice.number,
        "selection": choice.to_dict(),
        "n_trials": len(trials),
        "trials": [
            {
                "number": t.number,
                "params": decode_params(knobs, t.params),
                "value": t.value,
                "state": t.state.name.lower(),
                "outcome": t.user_attrs.get("outcome"),
                "reason": t.user_attrs.get("reason", ""),
                "seed_values": t.user_attrs.get("seed_values", []),
                "duration_s": t.duration.total_seconds() if t.duration is not None else None,
                "intermediate_values": {str(k): v for k, v in t.intermediate_values.items()},
                "trial_dir": t.user_attrs.get("trial_dir"),
            }
            for t in trials
        ],
    }
