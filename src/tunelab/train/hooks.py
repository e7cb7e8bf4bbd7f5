"""Train hooks: small observers of the loop with no-op defaults, each keeping its own resumable state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from tunelab.config.vocabulary import higher_is_better
from tunelab.runs.outcome import Outcome


@dataclass
class FitContext:
    """What a hook may read, and the one thing it may set: a request to stop."""

    model: nn.Module
    epochs: int
    epoch: int = 0
    stop: bool = False
    stop_state: str = ""
    stop_reason: str = ""

    def request_stop(self, state: str, reason: str) -> None:
        if not self.stop:
            self.stop, self.stop_state, self.stop_reason = True, state, reason


class Hook:
    """Override what you use; `name` keys this hook's state inside checkpoints."""

    name = "hook"

    def on_train_start(self, ctx: FitContext) -> None:
        pass

    def on_epoch_end(self, ctx: FitContext, record: dict[str, Any]) -> None:
        pass

    def on_train_end(self, ctx: FitContext, result: Any) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class EarlyStopping(Hook):
    """Stop after `patience` epochs without an improvement larger than `min_delta` in `monitor`."""

    name = "early_stopping"

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.maximize = higher_is_better(monitor)
        self.best: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0

    def on_epoch_end(self, ctx: FitContext, record: dict[str, Any]) -> None:
        value = record.get(self.monitor)
        if value is None:
            return
        improved = self.best is None or (
            value > self.best + self.min_delta if self.maximize else value < self.best - self.min_delta
        )
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, record["epoch"], 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            ctx.request_stop(
                Outcome.COMPLETE.value,
                f"early stopping at epoch {record['epoch']}: {self.monitor} has not improved for "
                f"{self.patience} epochs since epoch {self.best_epoch}",
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
