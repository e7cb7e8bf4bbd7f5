"""Rules on how long and how steadily trials trained: still improving at the last epoch, the lowest
searched lr still learning, a loss that bounces without converging at a high lr."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from itertools import pairwise

from tunelab.diagnose.advice import set_text, valid_overrides
from tunelab.diagnose.finding import Finding
from tunelab.diagnose.readings import converged, curve, finite, fmt, num, per_trial, scaled, setting
from tunelab.diagnose.thresholds import Thresholds
from tunelab.runs.outcome import Outcome
from tunelab.runs.view import RunView, SeedRun, TrialView

MAX_EPOCHS = 100_000  # the schema's bound on train.epochs


def _improving(seed: SeedRun, epochs: int, th: Thresholds) -> tuple[float, int] | None:
    """(relative fall, window) when val_loss still fell clearly over the last epochs, else None."""
    points = [(e, v) for e, v in curve(seed, "val_loss") if math.isfinite(v)]
    if len(points) < th.min_epochs or len(points) < epochs:  # early stopping ended it: not cut short
        return None
    window = max(2, math.ceil(th.improving_epochs_window * len(points)))
    start, last = points[-window][1], points[-1][1]
    lowest = min(v for _, v in points)
    fall = start - last
    if last > lowest * (1 + 1e-9) or start <= 0:  # the last epoch must be the best one
        return None
    if fall <= th.improving_epochs_rel * start or fall <= th.improving_epochs_floor * points[0][1]:
        return None
    return fall / start, window


def under_trained(run: RunView, th: Thresholds) -> list[Finding]:
    """The chosen configuration's val loss was still falling at its last epoch: raise train.epochs."""
    best = run.best_trial
    if best is None or best.state != Outcome.COMPLETE or not best.seeds:
        return []
    epochs = int(num(setting(run, best, "train.epochs")) or 0)
    found = [_improving(seed, epochs, th) for seed in best.seeds]
    if epochs < th.min_epochs or any(f is None for f in found):
        return []
    fall, window = max(found)  # type: ignore[type-var]
    target = min(MAX_EPOCHS, 2 * epochs)
    overrides = {"train.epochs": target}
    if not valid_overrides(run, best, overrides):
        return []
    others = [
        t.number for t in run.trials
        if t.number != best.number and t.state == Outcome.COMPLETE and t.seeds and _improving(t.seeds[0], epochs, th)
    ]
    return [
        Finding(
            rule="under_trained",
            severity="warning",
            scope="study",
            trials=[best.number, *others],
            title="the chosen configuration was still improving at its last epoch",
            evidence=(
                f"trial #{best.number}'s val_loss fell {fall:.1%} over its last {window} of {epochs} epochs and its "
                f"last epoch is its best"
                + (f"; {len(others)} other trial(s) were still improving too" if len(run.trials) > 1 else "")
            ),
            next_experiment=f"train longer: {set_text(overrides)} (twice the epochs), then compare again",
            overrides=overrides,
        )
    ]


def lowest_lr_still_learning(run: RunView, th: Thresholds) -> list[Finding]:
    """The smallest searched lr was still learning when training stopped: the lr comparison is cut
    short by the epoch budget (it favours high lrs), not settled."""
    if "train.lr" not in run.searched_space:
        return []
    done = [t for t in run.trials if t.state == Outcome.COMPLETE and t.seeds and num(t.params.get("train.lr"))]
    if len(done) < 2:
        return []
    low = min(done, key=lambda t: float(t.params["train.lr"]))
    if low.number == run.history.get("best_trial"):
        return []  # the winner still improving is under_trained's case
    points = curve(low.seeds[0], "train_loss")
    epochs = int(num(setting(run, low, "train.epochs")) or 0)
    if len(points) < max(th.min_epochs, epochs) or not finite(points) or converged(points, th.converged_frac):
        return []
    window = max(2, math.ceil(th.improving_epochs_window * len(points)))
    start, last = points[-window][1], points[-1][1]
    first = points[0][1]
    if start <= 0 or (first - last) < th.flat_rel_drop * first:  # flat: train_loss_flat says raise lr
        return []
    if start - last <= th.improving_epochs_rel * start:
        return []
    overrides = {"train.epochs": min(MAX_EPOCHS, 2 * epochs)}
    if not valid_overrides(run, low, overrides):
        return []
    lr = float(low.params["train.lr"])
    return [
        Finding(
            rule="lowest_lr_still_learning",
            severity="info",
            scope="study",
            trials=[low.number],
            title="the lowest lr searched was still learning at the last epoch",
            evidence=(
                f"lr={fmt(lr)} (trial #{low.number}): train_loss {fmt(start)}→{fmt(last)} over the last {window} of "
                f"{len(points)} epochs, {(start - last) / start:.1%} lower and still falling"
            ),
            next_experiment=(
                f"the low lrs were cut short, not bad: compare them with more epochs ({set_text(overrides)})"
            ),
            overrides=overrides,
        )
    ]


def loss_bouncing(run: RunView, th: Thresholds) -> list[Finding]:
    """Train loss goes up and down in the second half without settling, at one of the higher lrs."""
    lrs = [num(t.params.get("train.lr")) for t in run.trials]
    searched_lrs = sorted(v for v in lrs if v is not None)

    def check(trial: TrialView, seed: SeedRun) -> Finding | None:
        if (seed.result.get("state") if isinstance(seed.result, Mapping) else None) == Outcome.DIVERGED:
            return None  # loss_exploding already says it
        points = curve(seed, "train_loss")
        if len(points) < max(6, th.min_epochs) or not finite(points) or converged(points, th.converged_frac):
            return None
        lr = num(setting(run, trial, "train.lr"))
        if lr is None or (searched_lrs and lr < statistics.median(searched_lrs)):
            return None
        half = [v for _, v in points[len(points) // 2 - 1:]]
        steps = [b - a for a, b in pairwise(half)]
        ups = sum(1 for d in steps if d > 0)
        mean = statistics.fmean(half)
        swing = statistics.fmean(abs(d) for d in steps)
        lowest = min(v for _, v in points)
        if ups < th.bounce_up_share * len(steps) or mean <= 0 or swing < th.bounce_amplitude * mean:
            return None
        if swing < th.bounce_amplitude * points[0][1]:
            return None  # small wobbles of a loss that came down far (dropout, small batches) are noise
        if points[-1][1] < lowest * (1 + th.bounce_amplitude):
            return None
        new_lr = scaled(lr, 1 / 3)
        overrides = {"train.lr": new_lr} if new_lr and valid_overrides(run, trial, {"train.lr": new_lr}) else {}
        return Finding(
            rule="loss_bouncing",
            severity="warning",
            scope="trial",
            trials=[trial.number],
            title="train loss bounces without converging: lr too high",
            evidence=(
                f"lr={fmt(lr)}: train_loss rose in {ups} of the last {len(steps)} epochs, mean step {fmt(swing)} "
                f"({swing / mean:.0%} of its mean {fmt(mean)}); last {fmt(points[-1][1])} vs lowest {fmt(lowest)}"
            ),
            next_experiment=(
                f"lower lr ×3 ({set_text(overrides)}) or add a decaying schedule (--set train.scheduler=cosine)"
            ),
            overrides=overrides,
        )

    return per_trial(run, check)
