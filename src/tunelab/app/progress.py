"""What `tunelab train` and `tunelab tune` show while they run.

At a terminal: Rich bars (trials, and one epochs bar for this trial process, reused by every trial
it trains). To a pipe or file: no bars at all (their redraws are garbage in a log), one plain line
per finished trial and per phase after the trials, so a log stays greppable. A disabled display is
a no-op, so callers never branch on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tunelab.search.results import StudyCounts, StudyObserver
from tunelab.train.hooks import FitContext, Hook

ETA_AFTER = 3  # finished trials (this run) before an ETA is shown: one or two say little about the rest


def _make_progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )


def format_duration(seconds: float) -> str:
    """`4.2s`, `42s`, `3m05s`, `2h07m`: short enough for a status line."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def best_text(metric: str, direction: str, best: float | None) -> str:
    """`best val_accuracy (max) 0.9443`: which metric, which way is better, and its value."""
    way = "max" if direction == "maximize" else "min"
    return f"best {metric} ({way}) " + (f"{best:.4g}" if best is not None else "-")


def eta_seconds(
    total: int | None, done: int, finished_here: int, elapsed: float, deadline_left: float | None
) -> tuple[float, str] | None:
    """Seconds left and why: the remaining budget at the rate trials finished so far (every process of
    the study together), capped by the timeout. None until `ETA_AFTER` trials finished in this run."""
    by_timeout = (max(0.0, deadline_left), "timeout") if deadline_left is not None else None
    if finished_here < ETA_AFTER or elapsed <= 0 or (total is not None and done >= total):
        return None
    if total is None:
        return by_timeout
    by_budget = (max(0, total - done) * elapsed / finished_here, "budget")
    if by_timeout is not None and by_timeout[0] < by_budget[0]:
        return by_timeout
    return by_budget


class _Bars:
    """A display that starts and stops the Rich bars it holds (none when disabled or not live)."""

    _progress: Progress | None

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


class EpochProgress(_Bars, Hook):
    """One bar over the current trial's epochs, showing the latest objective (or validation loss)."""

    name = "progress"

    def __init__(self, *, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress = _make_progress(console) if enabled else None
        self._task: Any = None
        self.metric: str | None = None

    def on_train_start(self, ctx: FitContext) -> None:
        if self._progress is None:
            return
        if self._task is None:  # one bar for the process, reset for each trial it trains
            self._task = self._progress.add_task("epochs", total=ctx.epochs, status="")
        else:
            self._progress.reset(self._task, total=ctx.epochs, completed=0, status="")

    def on_epoch_end(self, ctx: FitContext, record: dict[str, Any]) -> None:
        if self._progress is None or self._task is None:
            return
        keys = [k for k in (self.metric, "val_loss", "train_loss") if k and record.get(k) is not None]
        value = record.get(keys[0]) if keys else None
        status = f"{keys[0]}={value:.4f}" if isinstance(value, float) else ""
        self._progress.update(self._task, completed=record["epoch"], status=status)


class StudyProgress(_Bars):
    """`tunelab tune` / `worker`: the trials bar (best, in flight, ETA) and the epochs bar at a terminal,
    or a line per finished trial and per phase (`live=False`, for a pipe or file)."""

    def __init__(self, *, enabled: bool, console: Console | None = None, live: bool = True) -> None:
        self.enabled = enabled
        self.live = enabled and live
        self._console = console or Console()
        self._progress = _make_progress(console) if self.live else None
        self._epochs = EpochProgress(enabled=False)
        self._epochs._progress = self._progress
        self._epochs.enabled = self.live
        self._trials: Any = None
        self._metric, self._direction = "objective", "minimize"
        self._deadline: float | None = None
        self._counts: Callable[[], StudyCounts] | None = None
        self._total: int | None = None
        self._done_at_start = 0
        self._started_at = time.monotonic()
        self._asked: set[int] = set()
        self._training: set[int] = set()
        self._finished_here = 0
        self._best: float | None = None
        self.observer = _Observer(self)

    def print(self, line: str) -> None:
        """A whole line: above the bars at a terminal, as is in a file."""
        if not self.enabled:
            return
        console = self._progress.console if self._progress is not None else self._console
        console.print(line, highlight=False, markup=False, soft_wrap=True)

    def status(self, best: float | None) -> tuple[int, str]:
        """(trials done in the study, the status text): best with metric and direction, trials in flight
        (trained here, plus other processes' running trials), and the ETA once a few trials finished."""
        counts = self._counts() if self._counts is not None else None
        done = counts.done if counts is not None else self._done_at_start + self._finished_here
        elsewhere = len(counts.running - self._asked) if counts is not None else 0
        parts = [best_text(self._metric, self._direction, best), f"{len(self._training) + elsewhere} in flight"]
        left = self._deadline - time.monotonic() if self._deadline is not None else None
        eta = eta_seconds(self._total, done, max(self._finished_here, done - self._done_at_start),
                          time.monotonic() - self._started_at, left)
        if eta is not None:
            parts.append(f"ETA {format_duration(eta[0])}" + (" (timeout)" if eta[1] == "timeout" else ""))
        return done, " · ".join(parts)


class _Observer(StudyObserver):
    """The study's callbacks, turned into bar updates or lines."""

    def __init__(self, view: StudyProgress) -> None:
        self.view = view

    def epoch_hooks(self) -> list[Hook]:
        return [self.view._epochs] if self.view.live else []

    def study_start(self, total: int | None, done: int) -> None:
        v = self.view
        v._total, v._done_at_start, v._started_at = total, done, time.monotonic()
        v._finished_here, v._best = 0, None  # a staged search's stages count (and rank) on their own
        if v._progress is not None and v._trials is not None:  # the next stage of a staged search: same bar
            v._progress.reset(v._trials, total=total, completed=done, status="")
        elif v._progress is not None:
            v._trials = v._progress.add_task("trials", total=total, completed=done, status="")

    def study_info(
        self, metric: str, direction: str, deadline: float | None, counts: Callable[[], StudyCounts]
    ) -> None:
        v = self.view
        v._metric, v._direction, v._deadline, v._counts = metric, direction, deadline, counts
        v._epochs.metric = metric
        if v._progress is not None and v._trials is not None:
            v._progress.update(v._trials, status=best_text(metric, direction, None))

    def round_start(self, numbers: Sequence[int]) -> None:
        self.view._asked.update(numbers)

    def trial_start(self, number: int, name: str) -> None:
        v = self.view
        v._training.add(number)
        if v._progress is not None and v._trials is not None:
            v._progress.update(v._trials, status=v.status(v._best)[1])

    def trial_end(self, number: int, outcome: Any, best: float | None) -> None:
        v = self.view
        v._training.discard(number)
        v._finished_here += 1
        v._best = best
        done, status = v.status(best)
        if v._progress is not None and v._trials is not None:
            v._progress.update(v._trials, completed=done, status=status)
        elif v.enabled:
            value = getattr(outcome, "value", None)
            shown = f" {v._metric}={value:.4g}" if isinstance(value, float) else ""
            total = f"/{v._total}" if v._total is not None else ""
            v.print(f"trial {number} {getattr(outcome, 'state', '')}{shown} · {done}{total} done · {status}")

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        v, start = self.view, time.monotonic()
        if v._progress is not None and v._trials is not None:
            v._progress.update(v._trials, status=f"{name} ...")
        yield
        if v._progress is not None and v._trials is not None:
            v._progress.update(v._trials, status=best_text(v._metric, v._direction, v._best))
        v.print(f"{name}: {format_duration(time.monotonic() - start)}")
