"""Writes one trial's evidence as it trains: metrics.jsonl, metrics.log, grad_norms.jsonl, result.json."""

from __future__ import annotations

import math
from typing import Any

from tunelab.runs.layout import TrialLayout
from tunelab.runs.records import (
    append_jsonl,
    append_text,
    read_json,
    read_jsonl,
    write_json_atomic,
    write_jsonl_atomic,
    write_text_atomic,
)


class TrialRecorder:
    """Appends one record per epoch so a crash loses at most the epoch in flight."""

    def __init__(self, layout: TrialLayout, identity: dict[str, Any], monitor: str = "val_loss") -> None:
        self.layout = layout
        self.identity = identity
        self.monitor = monitor
        layout.root.mkdir(parents=True, exist_ok=True)
        layout.checkpoints.mkdir(exist_ok=True)

    def epoch(self, record: dict[str, Any], grad_norms: dict[str, float]) -> None:
        append_jsonl(self.layout.metrics_jsonl, {**record, "identity": self.identity})
        total = math.sqrt(sum(v * v for v in grad_norms.values())) if grad_norms else None
        append_jsonl(
            self.layout.grad_norms_jsonl,
            {"epoch": record["epoch"], "norms": grad_norms, "total": total, "identity": self.identity},
        )
        append_text(self.layout.metrics_log, format_epoch(record, self.monitor))

    def finish(self, result: dict[str, Any]) -> None:
        write_json_atomic(self.layout.result_json, {**result, "identity": self.identity})

    def finished_result(self) -> dict[str, Any] | None:
        """The result of a run that already ended, so a rerun does not train it again."""
        if not self.layout.result_json.exists():
            return None
        try:
            data = read_json(self.layout.result_json)
        except (OSError, ValueError):
            return None
        data.pop("identity", None)
        return data

    def record_at(self, epoch: int) -> dict[str, Any]:
        for record in read_jsonl(self.layout.metrics_jsonl):
            if record.get("epoch") == epoch:
                record.pop("identity", None)
                return record
        return {}

    def truncate_after(self, epoch: int) -> None:
        """Drop records past the checkpoint being resumed from; they will be written again."""
        for path in (self.layout.metrics_jsonl, self.layout.grad_norms_jsonl):
            records = [r for r in read_jsonl(path) if r.get("epoch", 0) <= epoch]
            write_jsonl_atomic(path, records)
        kept = read_jsonl(self.layout.metrics_jsonl)
        write_text_atomic(self.layout.metrics_log, "".join(format_epoch(r, self.monitor) for r in kept))


def format_epoch(record: dict[str, Any], monitor: str = "val_loss") -> str:
    """The human form of one epoch, as practitioners write it by hand."""
    lines = [f"Epoch {record['epoch']}:"]
    if record.get("is_best"):
        lines.append(f"New best model at epoch {record['epoch']} ({monitor}={_fmt(record.get(monitor))})")
    for prefix, label in (("train_eval_", "Train (eval)"), ("val_", "Validation")):
        parts = [f"{k[len(prefix):]}={_fmt(v)}" for k, v in record.items() if k.startswith(prefix)]
        if parts:
            lines.append(f"{label} - " + ", ".join(parts))
    lines.append(
        f"Train - loss={_fmt(record.get('train_loss'))}, lr={record.get('lr', 0):.6g}, "
        f"time={record.get('epoch_time_s', 0):.3f}s"
    )
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
