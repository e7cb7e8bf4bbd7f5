"""Several asked trials at once: their seeds train as vectorized groups where the shapes allow,
every other trial alone with `fit`. Trials whose MLP shapes differ (hidden widths, depth,
activation, LayerNorm, a frozen head's max_length) share one padded stack when the padding costs
little (train/padding.py, train/mixed.py); heads on embeddings of different max_lengths bring
their own rows (`fit_group`'s member_data).

A member of a group equals the same seed trained alone (see `train/vectorized.py`), so grouping
changes the wall time, not the results. With `data.cv_folds` a trial's folds take its seeds'
place: each member brings its own fold's rows, and members whose folds have the same numbers of
rows train in one `fit_group` (k folds of n rows come in at most two sizes).

A trial trains alone when its model or recipe is not vectorized, when one of its seed folders
already holds progress (a retried or resumed trial continues from its checkpoint with `fit`),
or when it would be a group of one.

Pruning: each trial in a group reports its own objective every epoch to its own Optuna trial
(its first seed reports; its other seeds follow its verdict, as a trial has one value per epoch),
and a pruned trial's members leave the group's stack at the end of that epoch while the others
train on unchanged (`fit_group` slices the stacked parameters and optimizer rows down).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import torch

from tunelab.config.schema import Experiment
from tunelab.data.dataset import Dataset
from tunelab.data.folds import fold_experiments, repeats
from tunelab.runs.layout import TrialLayout
from tunelab.search.cost_ahead import CostAhead
from tunelab.search.heartbeat import Heartbeat
from tunelab.search.trial_run import (
    FollowPruning,
    OptunaPruning,
    StudyTrials,
    TrialOutcome,
    record_outcome,
    reduce_seeds,
    seeded_experiment,
    start_trial,
    train_alone,
    trial_layouts,
)
from tunelab.text.features import model_inputs
from tunelab.train.group_resume import RESUMED, ResumeRefused, resumable
from tunelab.train.grouping import group_key, has_progress, vectorize_error
from tunelab.train.hooks import Hook
from tunelab.train.member_data import member_data_error, same_rows
from tunelab.train.padding import pad_stacks, stack_fits
from tunelab.train.trial import model_for, write_params
from tunelab.train.trial_cost import trial_cost
from tunelab.train.vectorized import fit_group

log = logging.getLogger(__name__)
Item = tuple[optuna.trial.Trial, Mapping[str, Any]]
OnDone = Callable[[int, TrialOutcome], None]


class CannotVectorize(Exception):
    """`fit_group` would refuse these members (checked before anything is trained or written)."""


@dataclass
class _Started:
    """One asked trial after `start_trial`: its experiment, folder and seed members."""

    index: int
    trial: optuna.trial.Trial
    params: Mapping[str, Any]
    exp: Experiment
    layout: TrialLayout
    seeds: list[tuple[Experiment, Dataset, TrialLayout]]
    key: str | None


def run_trials(
    trials: StudyTrials,
    items: Sequence[Item],
    *,
    max_group: int,
    on_done: OnDone,
    epoch_hooks: Sequence[Hook] = (),
    on_start: Callable[[Sequence[int]], None] | None = None,
    ahead: CostAhead | None = None,
) -> None:
    """Train every item; `on_start(indices)` as each trial (or its group) starts training,
    `on_done(index, outcome)` as soon as each trial (or its group) ends. `ahead`: a helper that
    times each group's shapes for its cost columns while the group trains (search/cost_ahead.py).

    Every item is asked (RUNNING) from the start, so all of them send heartbeats until the end:
    a worker that dies with trials still waiting in its batch has them retried elsewhere too.
    """
    with Heartbeat(trials.study, [trial for trial, _ in items]):
        started = [_start(trials, i, trial, params) for i, (trial, params) in enumerate(items)]
        chunks, alone = _plan(started, max_group)
        for chunk in chunks:
            if on_start is not None:
                on_start([s.index for s in chunk])
            try:
                outcomes = _train_group(chunk, trials.base, trials.exp_id, epoch_hooks, ahead)
            except (CannotVectorize, ResumeRefused) as exc:  # refused before training anything: train alone
                log.warning("trials %s train one at a time: %s", [s.trial.number for s in chunk], exc)
                alone.extend(chunk)
                continue
            for s, outcome in zip(chunk, outcomes, strict=True):
                on_done(s.index, outcome)
        for s in sorted(alone, key=lambda s: s.index):
            if on_start is not None:
                on_start([s.index])
            seeded, data, _ = s.seeds[0]
            timing = ahead.start([(model_for(seeded, data), data, s.exp.train)]) if ahead is not None else []
            outcome = train_alone(trials, s.trial, s.exp, s.layout, s.params, epoch_hooks=epoch_hooks)
            if ahead is not None:
                ahead.finish(timing)
            on_done(s.index, outcome)


def _plan(started: Sequence[_Started], max_group: int) -> tuple[list[list[_Started]], list[_Started]]:
    """Same-shape trials in chunks of at most `max_group` members (a trial's seeds stay together),
    shapes that pad well together (train/padding.py `pad_stacks`) in one chunk, and the trials
    that train alone (not vectorized, resumed, or a group of one)."""
    by_key: dict[str, list[_Started]] = {}
    alone: list[_Started] = []
    for s in started:
        if s.key is None or max_group < 2:
            alone.append(s)
        else:
            by_key.setdefault(s.key, []).append(s)
    stack_of = pad_stacks({key: sum(len(s.seeds) for s in group) for key, group in by_key.items()})
    by_stack: dict[str, list[_Started]] = {}
    for key, group in by_key.items():
        by_stack.setdefault(stack_of[key], []).extend(group)
    chunks: list[list[_Started]] = []
    for group in by_stack.values():
        chunk: list[_Started] = []
        for s in group:
            if chunk and (len(chunk) + 1) * len(s.seeds) > max_group:
                chunks.extend(_within_limit(chunk))
                chunk = []
            chunk.append(s)
        chunks.extend(_within_limit(chunk))
    alone += [c[0] for c in chunks if len(c) == 1 and len(c[0].seeds) == 1]  # a group of one gains nothing
    return [c for c in chunks if not (len(c) == 1 and len(c[0].seeds) == 1)], alone


def _within_limit(chunk: list[_Started]) -> list[list[_Started]]:
    """A chunk cut from a padded stack pads only when its own share of padding stays in the limit
    (else one chunk per shape)."""
    members: dict[str, int] = {}
    for s in chunk:
        members[s.key] = members.get(s.key, 0) + len(s.seeds)  # type: ignore[index]
    if stack_fits(members):
        return [chunk]
    return [[s for s in chunk if s.key == key] for key in members]


def _start(trials: StudyTrials, index: int, trial: optuna.trial.Trial, params: Mapping[str, Any]) -> _Started:
    exp, layout = start_trial(trials, trial, params)
    seeds, keys = [], set()
    folds = fold_experiments(exp)  # data.cv_folds: the folds take the seeds' place
    for i, seed_layout in enumerate(trial_layouts(layout, repeats(trials.base))):
        seeded = folds[i] if folds else seeded_experiment(exp, i)
        data = trials.datasets.get(seeded)
        if seeded.model.family == "encoder_head" and getattr(seeded.model, "freeze_encoder", False):
            data = model_inputs(seeded, data)  # its cached embeddings: the head trains as an MLP
        seeds.append((seeded, data, seed_layout))
        key = group_key(seeded, data)
        if has_progress(seed_layout):  # resumed members group only with resumed ones (train/group_resume.py)
            key = key + RESUMED if key is not None and resumable(seed_layout) else None
        keys.add(key)
    key = keys.pop() if len(keys) == 1 else None
    return _Started(index, trial, params, exp, layout, seeds, key)


def _train_group(
    chunk: Sequence[_Started], base: Experiment, exp_id: str, epoch_hooks: Sequence[Hook], ahead: CostAhead | None
) -> list[TrialOutcome]:
    """One `fit_group` over every seed of every trial in the chunk, then each trial's verdict."""
    metric = base.search.objective.metric
    prune = base.search.pruner != "none"
    models, states, cfgs, layouts, identities, hooks, datas = [], [], [], [], [], [], []
    prunings: list[OptunaPruning] = []
    for s in chunk:
        shared: dict[str, str] = {}
        pruning = OptunaPruning(s.trial, metric, prune=prune, group=shared, seed0=s.seeds[0][2])
        prunings.append(pruning)
        for i, (seeded, seed_data, seed_layout) in enumerate(s.seeds):
            models.append(model_for(seeded, seed_data))
            datas.append(seed_data)
            states.append(torch.get_rng_state())  # dropout masks then follow this member's own stream
            identities.append(write_params(seeded, seed_data, seed_layout, params=s.params, exp_id=exp_id))
            cfgs.append(seeded.train)
            layouts.append(seed_layout)
            member_hooks: list[Hook] = [pruning] if i == 0 else ([FollowPruning(shared)] if prune else [])
            if not hooks:
                member_hooks += list(epoch_hooks)  # progress follows the group's first member
            hooks.append(member_hooks)
    exp0 = chunk[0].seeds[0][0]
    refusal = vectorize_error(cfgs, models)
    if refusal:
        raise CannotVectorize(refusal)
    folds = bool(base.data.cv_folds)
    own_rows = folds or any(not same_rows(datas[0], d) for d in datas[1:])  # folds, or embeddings per max_length
    parts = _parts(datas, folds=folds)  # folds: one fit_group per fold size
    for part in parts if own_rows else ():
        refusal = member_data_error(datas[part[0]], [datas[i] for i in part], len(part))
        if refusal:
            raise CannotVectorize(refusal)
    firsts = [sum(len(c.seeds) for c in chunk[:k]) for k in range(len(chunk))]  # each trial's first member
    timing = ahead.start([(models[i], datas[i], s.exp.train) for i, s in zip(firsts, chunk, strict=True)]) \
        if ahead is not None else []
    results: list[Any] = [None] * len(models)
    for part in parts:
        pick = [models[i] for i in part]
        done = fit_group(
            pick, datas[part[0]], [cfgs[i] for i in part], loss_name=exp0.train.loss,
            metrics=exp0.train.metrics or [], layouts=[layouts[i] for i in part],
            identities=[identities[i] for i in part], hooks=[hooks[i] for i in part],
            rng_states=[states[i] for i in part], member_data=[datas[i] for i in part] if own_rows else (),
        )
        for i, result in zip(part, done, strict=True):
            results[i] = result
    if ahead is not None:
        ahead.finish(timing)  # the cost timings taken meanwhile: trial_cost below finds them cached
    outcomes, at = [], 0
    for s, pruning in zip(chunk, prunings, strict=True):
        outcome = reduce_seeds(results[at : at + len(s.seeds)], metric)
        cost = trial_cost(models[at : at + len(s.seeds)], datas[at], s.exp, outcome.results, s.layout, alone=False)
        at += len(s.seeds)
        record_outcome(s.trial.study, s.trial, outcome, pruning.unreported(s.seeds[0][2]), cost)
        outcomes.append(outcome)
    return outcomes


def _parts(datas: Sequence[Dataset], *, folds: bool) -> list[list[int]]:
    """Members that train in one `fit_group`: all of them, or with cross-validation folds those
    whose folds have the same numbers of training and validation rows (stacked per member)."""
    if not folds:
        return [list(range(len(datas)))]
    parts: dict[tuple[int, int], list[int]] = {}
    for i, data in enumerate(datas):
        parts.setdefault((len(data.train), len(data.val)), []).append(i)
    return list(parts.values())
