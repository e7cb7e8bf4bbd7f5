"""One-screen summaries printed at the end of a command."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return "-" if value is None else str(value)


def print_train_summary(console: Console, res: Any) -> None:
    """State, best epoch, and the best and last epochs' numbers side by side."""
    r = res.result
    console.print(f"[bold]run folder[/bold]   {res.run_dir}")
    console.print(f"[bold]trial folder[/bold] {res.trial_dir}")
    state = r.state + (f" ({r.reason})" if r.reason else "")
    if r.resumed_from_epoch:
        state += f"; resumed from epoch {r.resumed_from_epoch}"
    console.print(f"[bold]state[/bold]        {state}")
    console.print(
        f"[bold]epochs[/bold]       {r.epochs_run}, best {r.best_epoch} by {r.monitor}; "
        f"train time {r.train_time_s:.2f}s; peak memory {r.peak_mem_mb:.0f} MB"
    )
    keys = [k for k in r.last_record if k not in ("epoch", "is_best")]
    table = Table(show_header=True)
    table.add_column("metric")
    table.add_column(f"best (epoch {r.best_epoch})")
    table.add_column(f"last (epoch {r.last_record.get('epoch', '-')})")
    for key in keys:
        table.add_row(key, _fmt(r.best_record.get(key)), _fmt(r.last_record.get(key)))
    console.print(table)
