"""One-screen summaries printed at the end of a command."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def _line(console: Console, label: str, value: str) -> None:
    """A bold label and a value printed as plain text: names, paths and params may hold `[...]`,
    which rich would otherwise read as markup (and fail on, or swallow)."""
    console.print(Text.assemble((label, "bold"), value))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return "-" if value is None else str(value)


def cost_line(cost: dict[str, Any]) -> str:
    """cost.json in one line: `~` marks an estimate (docs/cost.md says how each is taken)."""
    def mark(kind: str) -> str:
        return "~" if cost.get(kind) == "estimated" else ""

    parts = [f"{cost['n_params']:,} parameters"]
    if isinstance(cost.get("train_time_alone_s"), int | float):
        parts.append(f"time alone {mark('train_time_kind')}{cost['train_time_alone_s']:.2f}s")
    if isinstance(cost.get("config_mem_mb"), int | float):
        parts.append(f"memory {mark('config_mem_kind')}{cost['config_mem_mb']:.2f} MB")
    latency = [f"{cost[k]:.4g} ms/sample at batch {k.removeprefix('latency_ms_b')}"
               for k in cost if k.startswith("latency_ms_b") and isinstance(cost[k], int | float)]
    return "; ".join(parts + latency)


def print_train_summary(console: Console, res: Any) -> None:
    """State, best epoch, and the best and last epochs' numbers side by side."""
    from tunelab.runs.layout import RunLayout

    r = res.result
    _line(console, "run folder   ", f"{res.run_dir}")
    _line(console, "trial folder ", f"{res.trial_dir}")
    report = RunLayout(res.run_dir).report_html
    if report.exists():
        _line(console, "report       ", f"{report}")
    state = r.state + (f" ({r.reason})" if r.reason else "")
    if r.resumed_from_epoch:
        state += f"; resumed from epoch {r.resumed_from_epoch}"
    _line(console, "state        ", f"{state}")
    _line(
        console, "epochs       ", f"{r.epochs_run}, best {r.best_epoch} by {r.monitor}; "
        f"train time {r.train_time_s:.2f}s; peak memory of the process {r.peak_mem_mb:.0f} MB"
    )
    cost = getattr(res, "cost", None) or {}
    if cost.get("n_params") is not None:
        _line(console, "cost         ", cost_line(cost))
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
    from tunelab.runs.test_touches import read_touches

    layout = RunLayout(res.run_dir)
    _line(console, "run folder ", f"{res.run_dir}")
    _line(console, "study      ", f"{res.study_name} in {mask_url(res.storage)}")
    state = "finished" if res.finished else "not finished (run the same command to continue)"
    if res.ran_trials == 0 and res.finished:
        state = "already finished: nothing to run"
    ended = f"{res.n_complete} complete, {res.n_pruned} pruned, {res.n_diverged} diverged"
    if res.n_failed:
        ended += f", {res.n_failed} crashed or interrupted"
    _line(console, "trials     ", f"{ended}; {state}")
    if res.best_value is not None:
        _line(console, "best       ", f"{res.best_value:.4f} with {res.best_params}")
    if layout.summary_md.exists():
        _line(console, "summary    ", f"{layout.summary_md}")
    sweep = layout.lr_sweep_txt
    if sweep.exists():
        console.print(sweep.read_text(encoding="utf-8"), markup=False, highlight=False, end="")
    final = layout.final_of().test_metrics
    if final.exists():
        record = read_json(final)
        tests = ", ".join(f"{k}={v:.4f}" for k, v in record.items() if k.startswith("test_"))
        _line(console, "final      ", f"{tests or record.get('note', '')} ({layout.final})")
        if record.get("choice"):  # search.combine_winners: which configuration it retrained, and why
            _line(console, "final model", f" {record['choice']}")
    touches = read_touches(layout)["count"]
    if touches:
        _line(console, "test split ", f"scored {touches} time(s) in this run folder ({layout.test_touches.name})")
    if layout.report_html.exists():
        _line(console, "report     ", f"{layout.report_html}")


def study_result_json(res: Any) -> str:
    """A study result as one JSON line, the storage password masked."""
    import json

    from tunelab.runs.claim import mask_url

    return json.dumps({**res.public(), "storage": mask_url(res.storage)}, default=str) + "\n"
