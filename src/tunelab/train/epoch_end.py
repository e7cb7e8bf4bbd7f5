"""One trial's end of epoch, shared by `fit` (train/loop.py) and each member of `fit_group`
(train/vectorized.py).

Both trainers produce an epoch's record the same way up to the point where it is judged; from
there on a trial's bookkeeping is the same whichever trainer ran it: divergence, the best epoch,
the record and gradient norms appended (on the training thread: three short lines cost less than
a hand-off to another thread), the hooks (early stopping, pruning, progress), the epoch
checkpoints and best.pt (the best epoch's checkpoint, kept in memory until the next epoch
checkpoint is written; both written by train/artifacts.py's background writer), and finally the
`FitResult` and `result.json`. `TrialBook` holds that bookkeeping for one trial, so the two
trainers cannot drift apart on it. What only the trainer knows (its optimizer, scheduler and
RNG states for a checkpoint) it hands over as a callable, called only when a checkpoint is due.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from tunelab.config.schema import TrainSection
from tunelab.config.train_section import AUTO_CHECKPOINT_S
from tunelab.config.vocabulary import higher_is_better
from tunelab.runs.layout import TrialLayout
from tunelab.runs.outcome import Outcome
from tunelab.runs.recorder import TrialRecorder
from tunelab.train import artifacts
from tunelab.train.hooks import EarlyStopping, FitContext, Hook

TrainerState = Callable[[], dict[str, Any]]  # {"optimizer", "scheduler", "rng"} for a checkpoint


@dataclass
class FitResult:
    """How a fit ended and what it reached; also written as `result.json`."""

    state: str  # complete | diverged | pruned | interrupted
    reason: str
    epochs_run: int
    best_epoch: int
    best_value: float | None
    monitor: str
    best_record: dict[str, Any] = field(default_factory=dict)
    last_record: dict[str, Any] = field(default_factory=dict)
    train_time_s: float = 0.0
    peak_mem_mb: float = 0.0
    resumed_from_epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Best:
    """The best epoch so far by the monitored key."""

    def __init__(self, monitor: str) -> None:
        self.monitor, self.maximize = monitor, higher_is_better(monitor)
        self.value: float | None = None
        self.epoch = 0
        self.record: dict[str, Any] = {}

    def update(self, record: dict[str, Any]) -> bool:
        value = record.get(self.monitor)
        if value is None or value != value:  # missing or NaN never counts as best
            return False
        better = self.value is None or (value > self.value if self.maximize else value < self.value)
        if better or (value == self.value and _lower_loss(record, self.record)):
            self.value, self.epoch, self.record = value, record["epoch"], dict(record)
            return True
        return False


def _lower_loss(record: dict[str, Any], best: dict[str, Any]) -> bool:
    """A tie on a coarse monitor (val_accuracy) goes to the epoch with the lower val_loss."""
    new, old = record.get("val_loss"), best.get("val_loss")
    return isinstance(new, int | float) and isinstance(old, int | float) and new < old


def divergence(record: dict[str, Any], max_loss: float) -> str:
    """Why this epoch counts as diverged, or '' when it does not."""
    for key in ("train_loss", "val_loss"):
        value = record.get(key)
        if value is None:
            continue
        if value != value or value in (float("inf"), float("-inf")):
            return f"{key}={value}"
        if value > max_loss:
            return f"{key}={value:.4g} above divergence.max_loss={max_loss:g}"
    return ""


def monitor_key(cfg: TrainSection, has_val: bool) -> str:
    """The record key the best epoch is chosen by (`auto`: val_loss; no validation: train_loss)."""
    return (cfg.monitor if cfg.monitor != "auto" else "val_loss") if has_val else "train_loss"


class TrialBook:
    """One trial's bookkeeping from the end of its first epoch to its `FitResult`."""

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainSection,
        *,
        has_val: bool,
        layout: TrialLayout | None,
        identity: dict[str, Any] | None,
        hooks: Sequence[Hook] = (),
    ) -> None:
        self.model, self.cfg, self.layout = model, cfg, layout
        self.monitor = monitor_key(cfg, has_val)
        self.hooks: list[Hook] = list(hooks)
        if cfg.early_stopping.patience is not None and has_val:
            es = cfg.early_stopping
            self.hooks.insert(0, EarlyStopping(self.monitor, es.patience, es.min_delta))  # type: ignore[arg-type]
        self.ctx = FitContext(model=model, epochs=cfg.epochs)
        self.best = Best(self.monitor)
        self.recorder = TrialRecorder(layout, identity or {}, self.monitor) if layout is not None else None
        self.state, self.reason = Outcome.COMPLETE.value, ""
        self.record: dict[str, Any] = {}
        self.train_time = 0.0
        self.resumed_from = 0
        self._since_checkpoint = 0.0  # training seconds since the last epoch checkpoint
        self._best_state: dict[str, Any] | None = None  # the best epoch's checkpoint, not yet on disk

    def finished_result(self) -> FitResult | None:
        """The result this trial folder already holds (a finished trial is not trained again)."""
        finished = self.recorder.finished_result() if self.recorder is not None else None
        return FitResult(**finished) if finished is not None else None

    def resume(self, state: dict[str, Any]) -> None:
        """Continue after a checkpoint: hook states, best epoch (and its record), time, epoch."""
        for hook in self.hooks:
            hook.load_state_dict(state["hooks"].get(hook.name, {}))
        self.best.value, self.best.epoch = state["best"]["value"], state["best"]["epoch"]
        if self.recorder is not None:
            self.best.record = self.recorder.record_at(self.best.epoch)
        self.train_time, self.resumed_from = float(state["train_time_s"]), int(state["epoch"])
        self.ctx.epoch = self.resumed_from

    def truncate_after(self, epoch: int) -> None:
        """Records past `epoch` are written again by the epochs that follow it."""
        if self.recorder is not None:
            self.recorder.truncate_after(epoch)

    def start(self) -> None:
        for hook in self.hooks:
            hook.on_train_start(self.ctx)

    def end_epoch(
        self, record: dict[str, Any], grad_norms: dict[str, float], epoch_time: float, trainer_state: TrainerState
    ) -> bool:
        """Judge, record and checkpoint one finished epoch (the model holds its weights now).
        True when the trial stops here (diverged, early-stopped, pruned)."""
        cfg, ctx, layout, epoch = self.cfg, self.ctx, self.layout, record["epoch"]
        self.train_time += epoch_time
        self._since_checkpoint += epoch_time
        record["epoch_time_s"] = round(epoch_time, 6)
        diverged = divergence(record, cfg.divergence.max_loss)
        record["is_best"] = False if diverged else self.best.update(record)
        self.record = record
        if self.recorder is not None:
            self.recorder.epoch(record, grad_norms)
        if diverged:
            self.state, self.reason = Outcome.DIVERGED.value, f"{diverged} at epoch {epoch}"
            ctx.request_stop(Outcome.DIVERGED.value, self.reason)
        for hook in self.hooks:
            hook.on_epoch_end(ctx, record)
        if ctx.stop and not diverged:
            self.state, self.reason = ctx.stop_state, ctx.stop_reason
        if layout is not None and not diverged:
            self._checkpoint(layout, epoch, record["is_best"] and cfg.checkpoints.keep_best, trainer_state)
        return ctx.stop

    def _checkpoint(self, layout: TrialLayout, epoch: int, best: bool, trainer_state: TrainerState) -> None:
        """The epoch's checkpoint when one is due (`checkpoints.every`), with best.pt: the best
        epoch's own checkpoint, linked to the epoch's file when the best epoch is a due one, else
        kept in memory and written with the next due checkpoint (or when the trial ends).

        A kill therefore loses the epochs since the last due checkpoint, and the resumed trial
        trains them again exactly; a due epoch never leaves best.pt behind the best epoch up to it."""
        every = self.cfg.checkpoints.every
        due = (epoch == self.cfg.epochs or self.ctx.stop
               or (self._since_checkpoint >= AUTO_CHECKPOINT_S if every == "auto" else epoch % every == 0))
        if not (due or best):
            return
        state = {
            "epoch": epoch,
            "model": self.model.state_dict(),
            **trainer_state(),
            "hooks": {h.name: h.state_dict() for h in self.hooks},
            "best": {"value": self.best.value, "epoch": self.best.epoch},
            "train_time_s": self.train_time,
        }
        if not due:
            self._best_state = _detached(state)  # the live tensors change at the next step
            return
        if not best:
            self._write_best()
        self._best_state = None
        self._since_checkpoint = 0.0
        artifacts.save_later(layout.epoch_checkpoint(epoch), state, prune=(layout, self.cfg.checkpoints.keep_last),
                             best=layout.best_checkpoint if best else None)

    def _write_best(self) -> None:
        """best.pt from the best epoch kept in memory (none kept: it is on disk already)."""
        if self._best_state is not None and self.layout is not None:
            artifacts.save_later(self.layout.best_checkpoint, self._best_state)
        self._best_state = None

    def finish(self, peak_mem_mb: float) -> FitResult:
        """The trial's `FitResult`; with a folder, every queued write lands before `result.json`."""
        result = FitResult(
            state=self.state,
            reason=self.reason,
            epochs_run=self.ctx.epoch,
            best_epoch=self.best.epoch,
            best_value=self.best.value,
            monitor=self.monitor,
            best_record=_without_identity(self.best.record),
            last_record=_without_identity(self.record),
            train_time_s=round(self.train_time, 4),
            peak_mem_mb=round(peak_mem_mb, 1),
            resumed_from_epoch=self.resumed_from,
        )
        if self.recorder is not None:
            self._write_best()  # a diverged epoch is never checkpointed: the best before it is written here
            artifacts.flush()  # best and last checkpoints and every record are on disk before result.json
            self.recorder.finish(result.to_dict())
        for hook in self.hooks:
            hook.on_train_end(self.ctx, result)
        return result


def _without_identity(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "identity"}


def _detached(value: Any) -> Any:
    """A copy of a checkpoint's state whose tensors no longer change with training."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_detached(v) for v in value)
    return value
