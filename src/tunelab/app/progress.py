"""Rich progress bars as train hooks; a disabled bar is a no-op, so callers never branch on it."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tunelab.train.hooks import FitContext, Hook


def _make_progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )


class EpochProgress(Hook):
    """One bar over the current trial's epochs, showing the latest validation loss."""

    name = "progress"

    def __init__(self, *, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress = _make_progress(console) if enabled else None
        self._task: Any = None

    def __enter__(self) -> EpochProgress:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def on_train_start(self, ctx: FitContext) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task("epochs", total=ctx.epochs, status="")

    def on_epoch_end(self, ctx: FitContext, record: dict[str, Any]) -> None:
        if self._progress is None or self._task is None:
            return
        key = "val_loss" if record.get("val_loss") is not None else "train_loss"
        value = record.get(key)
        status = f"{key}={value:.4f}" if isinstance(value, float) else ""
        self._progress.update(self._task, completed=record["epoch"], status=status)


class StudyProgress:
    """Two bars for `tunelab tune`: trials (with the best value so far) and the current trial's epochs."""

    def __init__(self, *, enabled: bool, console: Console | None = None) -> None:
        from tunelab.search.results import StudyObserver

        self.enabled = enabled
        self._progress = _make_progress(console) if enabled else None
        self._epochs = EpochProgress(enabled=False)
        self._epochs._progress = self._progress
        self._epochs.enabled = enabled
        self._trials: Any = None
        outer = self

        class _Observer(StudyObserver):
            def epoch_hooks(self) -> list[Hook]:
                return [outer._epochs] if outer.enabled else []

            def study_start(self, total: int | None, done: int) -> None:
                if outer._progress is not None:
                    outer._trials = outer._progress.add_task("trials", total=total, completed=done, status="")

            def trial_end(self, number: int, outcome: Any, best: float | None) -> None:
                if outer._progress is not None and outer._trials is not None:
                    status = f"best={best:.4g}" if best is not None else ""
                    outer._progress.update(outer._trials, advance=1, status=status)

        self.observer = _Observer()

    def __enter__(self) -> StudyProgress:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
