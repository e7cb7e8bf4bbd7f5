"""The lr sweep's own table (seed 004's layout): one line per lr with the numbers after training."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.runs.outcome import Outcome
from tunelab.runs.view import RunView


@dataclass(frozen=True)
class SweepRow:
    """One lr: the last epoch's numbers and the best val loss, each the mean over the seeds
    (`*_std` their std; 0 with one seed), so the line shows what `best_lr` compares."""

    lr: float
    train_loss: float | None  # measured in eval mode after the last epoch when eval_train is on
    val_loss: float | None
    val_metric: float | None
    best_val_loss: float | None
    best_epoch: int
    state: str
    seeds: int = 1
    val_loss_std: float = 0.0
    val_metric_std: float = 0.0
    best_val_loss_std: float = 0.0
    winner: bool = False  # the study's winner (by its objective: search.selection), which the final model retrains


def _stats(values: list[Any]) -> tuple[float | None, float]:
    nums = [float(v) for v in values if isinstance(v, int | float)]
    if not nums:
        return None, 0.0
    return statistics.fmean(nums), statistics.stdev(nums) if len(nums) > 1 else 0.0


def sweep_rows(run_dir: str | Path) -> tuple[list[SweepRow], str]:
    """Rows in lr order (seed means) and the name of the validation metric shown beside the loss."""
    run = RunView(run_dir)
    metrics = run.experiment.get("train", {}).get("metrics") or []
    metric = f"val_{metrics[0]}" if metrics else ""
    rows = []
    history = run.history if isinstance(run.history, dict) else {}
    won = (history.get("best_params") or {}).get("train.lr")
    for trial in run.trials:
        seeds = [s for s in trial.seeds if s.records]
        if not seeds:
            continue
        lasts: list[dict[str, Any]] = [s.records[-1] for s in seeds]
        lr = trial.params.get("train.lr", trial.params.get("lr", lasts[0].get("lr")))
        bests = []
        for s in seeds:
            losses = [(r.get("val_loss"), r["epoch"]) for r in s.records if r.get("val_loss") is not None]
            bests.append(min(losses) if losses else (None, 0))
        val, val_std = _stats([r.get("val_loss") for r in lasts])
        score, score_std = _stats([r.get(metric) for r in lasts]) if metric else (None, 0.0)
        best, best_std = _stats([b[0] for b in bests])
        rows.append(
            SweepRow(
                lr=float(lr),
                train_loss=_stats([r.get("train_eval_loss", r.get("train_loss")) for r in lasts])[0],
                val_loss=val,
                val_metric=score,
                best_val_loss=best,
                best_epoch=bests[0][1],
                state=trial.state,
                seeds=len(seeds),
                val_loss_std=val_std,
                val_metric_std=score_std,
                best_val_loss_std=best_std,
                winner=won is not None and float(lr) == float(won),
            )
        )
    return sorted(rows, key=lambda r: r.lr), metric


def best_lr(rows: list[SweepRow]) -> SweepRow | None:
    """The study's winner (by `search.objective`, as the summary and the final model have it); without
    a recorded winner, the lr with the lowest best-epoch validation loss (never a test split)."""
    won = [r for r in rows if r.winner]
    if won:
        return won[0]
    done = [r for r in rows if r.best_val_loss is not None and r.state == Outcome.COMPLETE]
    return min(done, key=lambda r: r.best_val_loss) if done else None  # type: ignore[arg-type, return-value]


def on_edge(rows: list[SweepRow], best: SweepRow) -> bool:
    return len(rows) > 2 and best.lr in (rows[0].lr, rows[-1].lr)


def format_sweep(rows: list[SweepRow], metric: str) -> str:
    """`lr=1 train_loss=0.053 val_loss=0.072 val_acc=0.983` lines, then the best lr."""
    short = metric.replace("val_accuracy", "val_acc")
    lines = ["lr_sweep"]
    for r in rows:
        parts = [f"lr={r.lr:g}", f"train_loss={_f(r.train_loss)}", f"val_loss={_f(r.val_loss, r.val_loss_std, r)}"]
        if metric:
            parts.append(f"{short}={_f(r.val_metric, r.val_metric_std, r)}")
        if r.seeds > 1:
            parts.append(f"best_val_loss={_f(r.best_val_loss, r.best_val_loss_std, r)} ({r.seeds} seeds)")
        if r.state != Outcome.COMPLETE:
            parts.append(f"({r.state})")
        lines.append(" ".join(parts))
    best = best_lr(rows)
    if best is not None:
        lines.append(f"best_lr: {best.lr!r}")
        if on_edge(rows, best):
            lines.append(f"warning: the best lr {best.lr:g} is on the edge of the sweep; widen the range")
    return "\n".join(lines) + "\n"


def _f(value: float | None, std: float = 0.0, row: SweepRow | None = None) -> str:
    """A number to 3 decimals; `mean±std` when the row has several seeds."""
    if value is None:
        return "-"
    return f"{value:.3f}±{std:.3f}" if row is not None and row.seeds > 1 else f"{value:.3f}"
