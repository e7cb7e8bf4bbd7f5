"""The lr sweep's own table (seed 004's layout): one line per lr with the numbers after training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.runs.view import RunView


@dataclass(frozen=True)
class SweepRow:
    lr: float
    train_loss: float | None  # measured in eval mode after the last epoch when eval_train is on
    val_loss: float | None
    val_metric: float | None
    best_val_loss: float | None
    best_epoch: int
    state: str


def sweep_rows(run_dir: str | Path) -> tuple[list[SweepRow], str]:
    """Rows in lr order and the name of the validation metric shown beside the loss."""
    run = RunView(run_dir)
    metrics = run.experiment.get("train", {}).get("metrics") or []
    metric = f"val_{metrics[0]}" if metrics else ""
    rows = []
    for trial in run.trials:
        seed = trial.first
        if seed is None or not seed.records:
            continue
        last: dict[str, Any] = seed.records[-1]
        lr = trial.params.get("train.lr", trial.params.get("lr", last.get("lr")))
        losses = [(r.get("val_loss"), r["epoch"]) for r in seed.records if r.get("val_loss") is not None]
        best = min(losses) if losses else (None, 0)
        rows.append(
            SweepRow(
                lr=float(lr),
                train_loss=last.get("train_eval_loss", last.get("train_loss")),
                val_loss=last.get("val_loss"),
                val_metric=last.get(metric) if metric else None,
                best_val_loss=best[0],
                best_epoch=best[1],
                state=trial.state,
            )
        )
    return sorted(rows, key=lambda r: r.lr), metric


def best_lr(rows: list[SweepRow]) -> SweepRow | None:
    """The lr with the lowest best-epoch validation loss (selection never reads a test split)."""
    done = [r for r in rows if r.best_val_loss is not None and r.state == "complete"]
    return min(done, key=lambda r: r.best_val_loss) if done else None  # type: ignore[arg-type, return-value]


def on_edge(rows: list[SweepRow], best: SweepRow) -> bool:
    return len(rows) > 2 and best.lr in (rows[0].lr, rows[-1].lr)


def format_sweep(rows: list[SweepRow], metric: str) -> str:
    """`lr=1 train_loss=0.053 val_loss=0.072 val_acc=0.983` lines, then the best lr."""
    short = metric.replace("val_accuracy", "val_acc")
    lines = ["lr_sweep"]
    for r in rows:
        parts = [f"lr={r.lr:g}", f"train_loss={_f(r.train_loss)}", f"val_loss={_f(r.val_loss)}"]
        if metric:
            parts.append(f"{short}={_f(r.val_metric)}")
        if r.state != "complete":
            parts.append(f"({r.state})")
        lines.append(" ".join(parts))
    best = best_lr(rows)
    if best is not None:
        lines.append(f"best_lr: {best.lr!r}")
        if on_edge(rows, best):
            lines.append(f"warning: the best lr {best.lr:g} is on the edge of the sweep; widen the range")
    return "\n".join(lines) + "\n"


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
