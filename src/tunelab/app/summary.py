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
    if (res.run_dir / "report.html").exists():
        console.print(f"[bold]report[/bold]       {res.run_dir / 'report.html'}")
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


def print_tune_summary(console: Console, res: Any) -> None:
    """Where the study lives, how many trials ended how, and the winner."""
    from tunelab.runs.claim import mask_url
    from tunelab.runs.layout import RunLayout
    from tunelab.runs.records import read_json

    layout = RunLayout(res.run_dir)
    console.print(f"[bold]run folder[/bold] {res.run_dir}")
    console.print(f"[bold]study[/bold]      {res.study_name} in {mask_url(res.storage)}")
    state = "finished" if res.finished else "not finished (run the same command to continue)"
    if res.ran_trials == 0 and res.finished:
        state = "already finished: nothing to run"
    console.print(
        f"[bold]trials[/bold]     {res.n_complete} complete, {res.n_pruned} pruned, {res.n_failed} failed; {state}"
    )
    if res.best_value is not None:
        console.print(f"[bold]best[/bold]       {res.best_value:.4f} with {res.best_params}")
    if layout.summary_md.exists():
        console.print(f"[bold]summary[/bold]    {layout.summary_md}")
    sweep = layout.lr_sweep_txt
    if sweep.exists():
        console.print(sweep.read_text(encoding="utf-8"), markup=False, highlight=False, end="")
    final = layout.test_metrics
    if final.exists():
        record = read_json(final)
        tests = ", ".join(f"{k}={v:.4f}" for k, v in record.items() if k.startswith("test_"))
        console.print(f"[bold]final[/bold]      {tests or record.get('note', '')} ({layout.final})")
    if layout.report_html.exists():
        console.print(f"[bold]report[/bold]     {layout.report_html}")


def study_result_json(res: Any) -> str:
    """A study result as one JSON line, the storage password masked."""
    import json

    from tunelab.runs.claim import mask_url

    return json.dumps({**res.public(), "storage": mask_url(res.storage)}, default=str) + "\n"
