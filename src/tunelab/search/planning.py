"""Every "how many, which together, in what order" decision of a study, in one place.

How many trials a round asks, how many members a vectorized group holds, in which order the
explicit points are queued (same shapes together, costliest first), what a trial costs, how many
processes share the study, and which samplers must see every result before suggesting the next.
"""

from __future__ import annotations

import math
import os
import socket
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import optuna
from optuna.trial import TrialState

from tunelab.config.schema import Experiment
from tunelab.config.space import apply_params
from tunelab.config.vocabulary import SEQUENTIAL_STRATEGIES
from tunelab.data.folds import repeats
from tunelab.search.results import counted, in_state
from tunelab.search.strategies import DEFAULT_N_TRIALS, Plan
from tunelab.search.trial_run import DatasetCache, config_key
from tunelab.train.grouping import group_key
from tunelab.train.padding import pad_stacks
from tunelab.train.trial import model_for

AUTO_MEMBERS = 32  # members per vectorized group under `vectorize: auto`
MIN_ROUNDS = 4  # `auto` keeps at least this many rounds, so the sampler learns between them
LONGEST_FIRST = ("grid", "random", "qmc")  # order-free strategies: costliest groups start first


class GroupLimits(NamedTuple):
    per_round: int  # trials asked per round
    members: int  # members (trials x seeds) per vectorized group


class GroupedOrder(NamedTuple):
    points: list[dict[str, Any]]  # the explicit points, same shapes next to each other
    units: int  # independent units of work: vectorized groups, or points that train alone
    shape_of: dict[str, str]  # config key -> shape key ("" for a point that trains alone)


def group_limits(exp: Experiment) -> GroupLimits:
    """(trials asked per round, members per vectorized group) for the experiment's settings.

    `off`: one trial at a time, never grouped. `auto`: groups of up to 32 members; explicit
    points, random and qmc ask that many trials at once; model-based samplers, and any study
    with a pruner (it compares a trial with those finished before it), ask one (its seeds still
    train as one group). An integer K: groups of K members, K trials per round, whatever the
    sampler or pruner.
    """
    setting, seeds = exp.search.vectorize, repeats(exp)  # with data.cv_folds: the folds
    if setting == "off":
        return GroupLimits(1, 1)
    members = AUTO_MEMBERS if setting == "auto" else int(setting)
    if setting == "auto" and (exp.search.strategy in SEQUENTIAL_STRATEGIES or exp.search.pruner != "none"):
        return GroupLimits(1, members)
    return GroupLimits(max(1, members // seeds), members)


def machine_processes(exp: Experiment) -> int:
    """The trial processes `auto` plans for: `search.n_jobs`, or one per core."""
    setting = exp.search.n_jobs
    return int(setting) if setting != "auto" else max(1, os.cpu_count() or 1)


def batch_size(exp: Experiment, budget: int) -> int:
    """Trials asked per round (`search.batch_size`); 1 means one at a time as before.

    `auto`: with a model-based sampler and no pruner, enough trials to fill the machine (members
    per vectorized group x processes), but no more than a quarter of the budget (nor fewer than the
    processes), so the sampler still learns from three rounds of results. Any other strategy, or a
    pruner (which compares a trial with those finished before it), keeps asking one at a time
    under `auto`: measured (benchmarks/RESULTS.md, "Batched rounds with pruning"), ASHA in rounds
    of 8 trained 1.08x the epochs of ASHA one at a time and took 1.28x the wall time (40 trials,
    2-core CPU); a round's first members meet few rivals at a rung, and the median pruner counts
    only finished trials.
    """
    setting = exp.search.batch_size
    if setting != "auto":
        return int(setting)
    if exp.search.strategy not in SEQUENTIAL_STRATEGIES or exp.search.pruner != "none":
        return 1
    vectorize = exp.search.vectorize
    members = 1 if vectorize == "off" else AUTO_MEMBERS if vectorize == "auto" else int(vectorize)
    processes = machine_processes(exp)
    per_group = max(1, members // repeats(exp))
    return max(1, min(per_group * processes, max(processes, math.ceil(budget / MIN_ROUNDS))))


def batched(exp: Experiment) -> bool:
    """Whether this study asks in rounds (a model-based sampler with a batch size above 1)."""
    budget = exp.search.n_trials or DEFAULT_N_TRIALS
    return exp.search.strategy in SEQUENTIAL_STRATEGIES and batch_size(exp, budget) > 1


def resolve_jobs(exp: Experiment, units: int) -> int:
    """Processes for this study: an explicit N as given; `auto` one per core, but no more than
    the independent units of work (vectorized groups or single trials) and one for model-based
    samplers, whose every suggestion should see every earlier result (and stay reproducible)."""
    from tunelab.search.placement import local_devices, workers_that_fit

    res = exp.resources
    devices = len(local_devices()) if res.gpus_per_trial > 0 else 0
    fit = max(1, workers_that_fit(os.cpu_count() or 1, devices, res.cpus_per_trial, res.gpus_per_trial))
    setting = exp.search.n_jobs
    if setting != "auto":
        return min(int(setting), fit) if res.gpus_per_trial > 0 else int(setting)
    if exp.search.strategy in SEQUENTIAL_STRATEGIES and not batched(exp):
        return 1
    return max(1, min(fit, units))


def round_size(
    study: optuna.Study,
    trials: Sequence[optuna.trial.FrozenTrial],
    plan: Plan,
    per_round: int,
    budget: int,
    n_trials: int | None,
    ran: int,
    workers: int,
    shape_of: dict[str, str],
) -> int:
    """How many trials to ask now, from the study's `trials` as read for this round: for explicit
    points, a fair share (among the workers in sight) of the next same-shape group in the queue, so
    every process gets part of every costly group and workers that join later still find work; for
    samplers, a fair share of the budget left."""
    running = in_state(study, TrialState.RUNNING, trials)
    in_sight = max(workers, _other_processes(running) + 1)
    if plan.points is None:
        left = budget - len(counted(study, trials)) - len(running)
        return max(1, min(per_round, -(-left // in_sight)))
    waiting = sorted(in_state(study, TrialState.WAITING, trials), key=lambda t: t.number)
    left = len(waiting) if n_trials is None else min(len(waiting), n_trials - ran)
    shapes = [shape_of.get(t.user_attrs.get("config_key", ""), "") for t in waiting]
    group = 1
    while shapes and shapes[0] and group < len(shapes) and shapes[group] == shapes[0]:
        group += 1
    share = -(-sum(1 for key in shape_of.values() if key == shapes[0]) // in_sight) if shapes and shapes[0] else 1
    return max(1, min(per_round, group, share, left))


def _other_processes(running: Sequence[optuna.trial.FrozenTrial]) -> int:
    """How many other processes own running trials, by their (host, pid). A trial just taken from
    the queue and not yet claimed has no owner yet: it is not one more process (counted as one, it
    cut a fair share of 9 to 3 and left a group of one to train alone at the end), but it does show
    that some other process is there."""
    me = (socket.gethostname(), os.getpid())
    owners = {(t.user_attrs.get("host"), t.user_attrs.get("pid")) for t in running if "pid" in t.user_attrs}
    return len(owners - {me}) or int(any("pid" not in t.user_attrs for t in running))


def grouped_order(
    points: Sequence[dict[str, Any]], base: Experiment, datasets: DatasetCache
) -> GroupedOrder:
    """The explicit points with same-shape configurations next to each other (a stable sort), so
    a round of asked trials forms few, large vectorized groups (shapes that pad well together,
    train/padding.py, count as one); how many units of work (groups, or points that train
    alone) they make; and each point's shape key by its config key ("" for
    a point that trains alone)."""
    if base.search.vectorize == "off":
        return GroupedOrder(list(points), len(points), {})
    longest_first = base.search.strategy in LONGEST_FIRST
    keys, costs, cost_of = [], [], {}
    for point in points:
        try:
            exp = apply_params(base, dict(point))
            data = datasets.get(exp)
            key = group_key(exp, data) or ""
        except Exception:  # a point that cannot even load fails later, in its own trial, with its reason
            key, exp, data = "", None, None
        if key and longest_first and key not in cost_of:  # one cheap build per shape (mlp, cnn)
            cost_of[key] = cost(exp, data)
        keys.append(key)
        costs.append(cost_of.get(key, 0.0))
    stack_of = pad_stacks({key: n * repeats(base) for key, n in Counter(key for key in keys if key).items()})
    keys = [stack_of.get(key, "") for key in keys]  # shapes that pad well together queue as one
    first_seen: dict[str, int] = {}
    for key in keys:
        first_seen.setdefault(key, len(first_seen))
    if longest_first:
        # Longest work first: the costliest groups start while every process is free, so the
        # cheap ones fill the gaps at the end instead of one expensive group running alone.
        load: dict[str, float] = {}
        for key, c in zip(keys, costs, strict=True):
            load[key] = load.get(key, 0.0) + c
        rank = {key: i for i, key in enumerate(sorted(first_seen, key=lambda k: (-load[k], first_seen[k])))}
    else:  # ablation and sweeps keep their order: the default or the sweep's order comes first
        rank = first_seen
    order = sorted(range(len(points)), key=lambda i: rank[keys[i]])
    max_group = group_limits(base).members
    units = keys.count("") + sum(-(-keys.count(k) * repeats(base) // max_group) for k in first_seen if k)
    shape_of = {config_key(point): key for point, key in zip(points, keys, strict=True)}
    return GroupedOrder([points[i] for i in order], units, shape_of)


def cost(exp: Experiment, data: Any) -> float:
    """A trial's relative cost: parameters x epochs x training rows (its forward/backward FLOPs)."""
    try:
        params = sum(p.numel() for p in model_for(exp, data).parameters())
    except Exception:
        return 0.0
    return float(params) * exp.train.epochs * max(1, len(data.train))
