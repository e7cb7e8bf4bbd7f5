"""Continue a finished trial: more epochs from its last checkpoint, optimizer state included, in a new folder.

The parent folder is never written. The new folder (`RunLayout.continuation`) starts as a copy of the
parent's records up to its last checkpoint and that checkpoint; training then resumes from it exactly
as an interrupted trial would (train/loop.py `fit(resume=True)`), so epoch numbers go on from the
parent's and, with a constant learning rate, 10 epochs then 10 more equal 20 at once. A learning-rate
schedule is built for the new total and picks up at the step reached. When done, the folder's
params.json names its `parent` (folder and epoch), and the record of the first new epoch carries `continued_from`.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunelab.config.schema import Experiment
from tunelab.data.dataset import Dataset
from tunelab.errors import ConfigError, RunFolderError
from tunelab.runs.layout import RunLayout, TrialLayout
from tunelab.runs.recorder import format_epoch
from tunelab.runs.records import read_json, read_jsonl, write_json_atomic, write_jsonl_atomic, write_text_atomic
from tunelab.runs.view import newest_continuation
from tunelab.train import checkpoint as ckpt
from tunelab.train.hooks import Hook
from tunelab.train.loop import FitResult
from tunelab.train.trial import run_trial


def parent_epoch(parent: TrialLayout) -> int:
    """The epoch of the parent's newest checkpoint that loads; a one-line error when there is none."""
    if not parent.result_json.exists():
        raise RunFolderError(f"{parent.root}: the trial has not finished; run its command again to resume it "
                             "(--continue is for finished trials)")
    for epoch, path in parent.epoch_checkpoints():
        try:
            ckpt.load_checkpoint(path)
        except Exception:  # a damaged file: an older one may still load
            continue
        return epoch
    raise RunFolderError(f"{parent.root}: no epoch checkpoint to continue from (checkpoints/ is empty or damaged)")


def check_epochs(parent: TrialLayout, start: int, epochs: int, how: str) -> None:
    if epochs <= start:
        raise ConfigError(f"{how}={epochs} is not larger than the {start} epochs {parent.root.name} already trained; "
                          f"give more than {start}", key="train.epochs")


def continue_trial(
    exp: Experiment,
    dataset: Dataset,
    exp_id: str,
    parent: TrialLayout,
    child: TrialLayout,
    *,
    params: dict[str, Any],
    hooks: Sequence[Hook] = (),
) -> FitResult:
    """Train `parent` on to `exp.train.epochs` in `child` (resuming `child` if it was interrupted)."""
    start = parent_epoch(parent)
    check_epochs(parent, start, exp.train.epochs, "train.epochs")
    if not child.metrics_jsonl.exists():
        _seed_child(parent, child, start)
    result = run_trial(exp, dataset, child, params=params, exp_id=exp_id, hooks=hooks)
    _link(parent, child, start)
    return result


def _seed_child(parent: TrialLayout, child: TrialLayout, start: int) -> None:
    """The parent's records up to `start` and its checkpoint there: what an interrupted trial leaves."""
    staging = child.root.with_name(child.root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    seed = TrialLayout(staging)
    seed.checkpoints.mkdir(parents=True)
    for src, dst in ((parent.metrics_jsonl, seed.metrics_jsonl), (parent.grad_norms_jsonl, seed.grad_norms_jsonl)):
        write_jsonl_atomic(dst, [r for r in read_jsonl(src) if r.get("epoch", 0) <= start] if src.exists() else [])
    shutil.copy2(parent.epoch_checkpoint(start), seed.epoch_checkpoint(start))
    if parent.best_checkpoint.exists():
        shutil.copy2(parent.best_checkpoint, seed.best_checkpoint)
    staging.replace(child.root)  # whole or not at all: a half-copied folder is never taken for a trial


def _link(parent: TrialLayout, child: TrialLayout, start: int) -> None:
    """`parent` in params.json, `continued_from` on the first new epoch's record (and in metrics.log)."""
    link = {"trial": str(parent.root.resolve()), "epoch": start}
    write_json_atomic(child.params_json, {**read_json(child.params_json), "parent": link})
    records = read_jsonl(child.metrics_jsonl)
    for record in records:
        if record.get("epoch") == start + 1:
            record["continued_from"] = link
    write_jsonl_atomic(child.metrics_jsonl, records)
    lines = []
    for record in records:
        if record.get("epoch") == start + 1:
            lines.append(f"Continued from {parent.root} (epoch {start})\n")
        lines.append(format_epoch(record, read_json(child.result_json).get("monitor", "val_loss")))
    write_text_atomic(child.metrics_log, "".join(lines))


def train_parent(layout: RunLayout) -> TrialLayout:
    """What `tunelab train --continue` continues: the run's newest finished continuation, else its trial."""
    trials = layout.trial_dirs()
    if not trials:
        raise RunFolderError(f"{layout.root}: no trained trial to continue; run `tunelab train` first")
    return newest_continuation(layout) or trials[0]


def folder_epochs(run_dir: Path) -> int | None:
    """`train.epochs` of the experiment the run folder holds (None without one)."""
    from tunelab.runs.clash import read_folder_experiment

    path = RunLayout(run_dir).experiment_yaml
    if not path.exists():
        return None
    data = read_folder_experiment(path)
    return int(data["train"]["epochs"]) if isinstance(data, dict) else None
