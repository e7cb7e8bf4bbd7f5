"""Batched asks for model-based samplers (tpe, gp, cmaes): how many trials a round holds and
which trials go together.

A study asks a round of B trials at once; every trial process pops the round's parcels one at a
time, costliest first (search/round_parcels.py: a piece of a same-shape group, trained as one
vectorized group, or a lone trial).
The round is asked by one party, under a lock, once the previous round has finished: a fresh
sampler seeded from (sampler seed, round index) looks at a private in-memory copy of the finished
trials and asks B trials there, leaving each one RUNNING so the next ask sees it pending (TPE's
constant liar, GP's pending points, CMA-ES one population). The round's parameters are then
queued in the real study in a fixed order (same shapes next to each other). Who asks a round,
and who finishes first, therefore never changes which trials a study runs: the same experiment
and B give the same trials by number with any number of processes, as long as their values are
the same (the processes change the parcels; no parcel leaves a stacked trial alone, whose float32
rounding would differ: search/round_parcels.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from tunelab.config.schema import Experiment
from tunelab.config.space import Knob, apply_params, suggest
from tunelab.config.vocabulary import SEQUENTIAL_STRATEGIES
from tunelab.runs.layout import RunLayout
from tunelab.search.planning import batch_size, machine_processes
from tunelab.search.point_queue import pop_lock, shared_queue_lock, take
from tunelab.search.round_parcels import Member, cost, parcels, parcels_text
from tunelab.search.strategies import STRATEGIES
from tunelab.train.grouping import group_key
from tunelab.train.padding import differing, pad_stacks
from tunelab.train.trial import batch_rows

log = logging.getLogger(__name__)
PROCESSES_ATTR = "trial_processes"  # study attribute: how many processes share the rounds
ROUND_ATTR, SLOT_ATTR, SHAPE_ATTR, PARCEL_ATTR = "round", "slot", "shape", "parcel"
ROUND_SIZE_ATTR = "round_size"  # trials in the round: none is popped before all are queued
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
ROUND_POLL_S = 0.1  # wait for the rest of a round: short, every process waits at each round's end
Item = tuple[optuna.trial.Trial, dict[str, Any]]


def round_seed(sampler_seed: int, index: int) -> int:
    """The seed of round `index`'s sampler: a fixed function of the study's seed and the round."""
    return (sampler_seed * 1_000_003 + index) % (2**31 - 1)


@dataclass
class Rounds:
    """Asks a study's trials round by round; one instance per process.

    `make_sampler(seed)` builds the study's sampler with that seed; `shape_of(params)` names a
    configuration's vectorized shape ("" when it trains alone); `lock_path` is a file every local
    process locks while it checks for and queues the next round (on a PostgreSQL study, workers
    on other machines also wait on the study's advisory queue lock); `log_path` gets one line per
    round saying how it was packed; `steps_of(params)` estimates a trial's optimizer steps, so
    the parcels' costs (search/round_parcels.py) can be weighed.
    """

    exp: Experiment
    knobs: Sequence[Knob]
    budget: int
    size: int
    make_sampler: Callable[[int], optuna.samplers.BaseSampler]
    shape_of: Callable[[dict[str, Any]], str]
    lock_path: Path
    log_path: Path
    steps_of: Callable[[dict[str, Any]], float] = lambda params: 0.0

    def ask(self, study: optuna.Study, counted: int, trials: Sequence[FrozenTrial] | None = None) -> list[Item] | None:
        """This process's share of the current round ([] while others finish it: wait and ask
        again); None when the budget is spent or the space has nothing new to offer. `trials`: the
        study as the caller read it for this round (None: read it now); the next round is queued
        from a fresh read under the lock."""
        items = self._pop_share(study, trials)
        if items:
            return items
        if trials is None:
            trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
        if any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials):
            return []
        # this machine's processes wait on the run folder's file; other machines', on the database
        with _locked(self.lock_path), shared_queue_lock(study):
            trials = study.get_trials(deepcopy=False)
            if any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials):
                return []  # another process queued the round while we waited for the lock
            left = self.budget - counted
            if left <= 0:
                return None
            if not self._queue_round(study, trials, min(self.size, left)):
                return None
        return self._pop_share(study)

    def _pop_share(self, study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> list[Item]:
        """Pop this process's next piece of the queued round: all of it in a lone process; else
        the next parcel (search/round_parcels.py: a piece of a same-shape group or a lone trial,
        costliest first), so a process that finishes early takes the next instead of idling
        while the other works through a costlier share. A parcel goes to whoever takes its first
        trial; the others then pass it by."""
        trials = sorted(study.get_trials(deepcopy=False) if trials is None else trials, key=lambda t: t.number)
        waiting = [t for t in trials if t.state == TrialState.WAITING]
        if not _queued_whole(trials, waiting):
            return []  # another process is still queueing the round (its parcels are not all there)
        shared = max(1, int(study.user_attrs.get(PROCESSES_ATTR, 1))) > 1
        if shared:
            first: dict[tuple[int, int], FrozenTrial] = {}
            for t in trials:
                first.setdefault(_parcel(t), t)
            head = min((key for key, t in first.items() if t.state == TrialState.WAITING),
                       default=min((_parcel(t) for t in waiting), default=None))  # else what a dead taker left
            waiting = [t for t in waiting if _parcel(t) == head]
        ids: list[int] = []
        with pop_lock(study):  # RUNNING only if still WAITING (SQLite needs the lock for that)
            for t in waiting:
                if take(study, t._trial_id):
                    ids.append(t._trial_id)
                elif shared and not ids:
                    break  # another process took this parcel first
        if shared and waiting and not ids:
            return self._pop_share(study)  # the next parcel
        # the queued (fixed) values
        return [(trial, suggest(trial, self.knobs, self.exp)) for trial in (optuna.trial.Trial(study, i) for i in ids)]

    def _queue_round(self, study: optuna.Study, trials: Sequence[FrozenTrial], size: int) -> bool:
        """Ask `size` new configurations on a private copy of the study and queue them, same
        shapes next to each other; False when the sampler found none that is not taken."""
        index = 1 + max((int(t.user_attrs.get(ROUND_ATTR, 0)) for t in trials), default=0)
        view = optuna.create_study(direction=study.direction, sampler=self.make_sampler(round_seed(
            self.exp.search.sampler_seed, index)))
        finished = [t for t in sorted(trials, key=lambda t: t.number) if t.state in FINISHED]
        view.add_trials([_copy(t) for t in finished])
        taken = {_key(t.params) for t in finished}
        asked: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = []
        for _ in range(3 * size):  # duplicates are dropped; bounded when the space runs out
            if len(asked) == size:
                break
            trial = view.ask()  # stays RUNNING: the next ask treats it as pending
            params = suggest(trial, self.knobs, self.exp)
            if _key(trial.params) in taken:
                view.tell(trial, state=TrialState.FAIL)
                continue
            taken.add(_key(trial.params))
            asked.append((dict(trial.params), dict(view._storage.get_trial_system_attrs(trial._trial_id)), params))
        if not asked:
            log.warning("round %d: the sampler proposes nothing new; the search space is used up", index)
            return False
        shapes = [self.shape_of(params) for _, _, params in asked]
        stack_of = pad_stacks(Counter(shape for shape in shapes if shape))  # a padded stack's trials together
        stacks = [stack_of.get(shape, "") for shape in shapes]
        sizes = Counter(stacks)
        stacks = [stack if stack and sizes[stack] > 1 else "" for stack in stacks]  # a group of one trains alone
        members = [Member(stack, shape, self.steps_of(params))
                   for stack, shape, (_, _, params) in zip(stacks, shapes, asked, strict=True)]
        costs = [cost([m]) for m in members]
        first = {stack: i for i, stack in reversed(list(enumerate(stacks)))}
        # Groups first; then the lone trials, costliest first. The numbering never depends on the
        # processes: who trains what is the parcels' business.
        order = sorted(range(len(asked)), key=lambda i: (first[stacks[i]], 0, i) if stacks[i] else
                       (len(asked), -costs[i], i))
        processes = int(study.user_attrs.get(PROCESSES_ATTR, machine_processes(self.exp)))
        parcel_of = parcels(members, max(1, processes))
        for slot, i in enumerate(order):
            encoded, system_attrs, _ = asked[i]
            shape = {SHAPE_ATTR: hashlib.sha256(stacks[i].encode()).hexdigest()[:16]} if stacks[i] else {}
            study.add_trial(create_trial(
                state=TrialState.WAITING,
                system_attrs={**system_attrs, "fixed_params": encoded},
                user_attrs={ROUND_ATTR: index, SLOT_ATTR: slot, PARCEL_ATTR: parcel_of[i],
                            ROUND_SIZE_ATTR: len(asked), **shape},
            ))
        line = packing_line(index, shapes)
        if processes > 1:
            line += f"; parcels for {processes} processes, in the order they go out: {parcels_text(parcel_of)}"
        log.info("%s", line)
        with open(self.log_path, "a", encoding="utf-8") as handle:  # under the lock: whole lines
            handle.write(line + "\n")
        return True


def packing_line(index: int, shapes: Sequence[str]) -> str:
    """One line saying how a round was packed: its groups by size (a padded stack of several
    shapes says "padded", how many and in which model knobs they differ), and how many train
    alone."""
    counts = Counter(shape for shape in shapes if shape)
    stack_of = pad_stacks(counts)
    stacks: dict[str, list[str]] = {}
    for shape in counts:
        stacks.setdefault(stack_of[shape], []).append(shape)
    sizes = {stack: sum(counts[shape] for shape in members) for stack, members in stacks.items()}
    alone = sum(1 for shape in shapes if not shape) + sum(1 for n in sizes.values() if n == 1)
    groups = sorted(((n, stacks[stack]) for stack, n in sizes.items() if n > 1), key=lambda g: (-g[0], g[1]))
    sizes_text = " + ".join(f"{n} (padded: {len(keys)} shapes, {', '.join(differing(keys))})" if len(keys) > 1
                            else str(n) for n, keys in groups)
    return f"round {index}: {len(shapes)} trials; vectorized groups of {sizes_text or 'none'}; {alone} alone"


def _queued_whole(trials: Sequence[FrozenTrial], waiting: Sequence[FrozenTrial]) -> bool:
    """Whether every round with a waiting trial is queued whole (a round queued without its size
    counts as whole)."""
    rounds = {t.user_attrs.get(ROUND_ATTR) for t in waiting}
    counts = Counter(t.user_attrs.get(ROUND_ATTR) for t in trials if t.user_attrs.get(ROUND_ATTR) in rounds)
    return all(counts[t.user_attrs.get(ROUND_ATTR)] >= int(t.user_attrs.get(ROUND_SIZE_ATTR, 0)) for t in waiting)


def _parcel(trial: FrozenTrial) -> tuple[int, int]:
    """(round, parcel) of a queued trial; a trial queued without a parcel is a parcel of its own."""
    return int(trial.user_attrs.get(ROUND_ATTR, 0)), int(trial.user_attrs.get(PARCEL_ATTR, trial.number))


def _copy(trial: FrozenTrial) -> FrozenTrial:
    """A finished trial as the round's sampler needs it: values, parameters, sampler state."""
    return create_trial(
        state=trial.state,
        value=trial.value,
        params=trial.params,
        distributions=trial.distributions,
        system_attrs=dict(trial.system_attrs),
        intermediate_values=dict(trial.intermediate_values),
    )


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` among this machine's processes (released on exit or death)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def rounds_for(
    study: optuna.Study, base: Experiment, knobs: Sequence[Knob], budget: int, datasets: Any, run: RunLayout
) -> Rounds | None:
    """The study's round planner, or None when it asks one trial at a time (or explicit points).

    The real study then only hands out queued trials, so its own sampler is replaced by a cheap
    one: a queued trial's values are fixed, and CMA-ES must not take a generation step there.
    """
    if base.search.strategy not in SEQUENTIAL_STRATEGIES:
        return None
    size = batch_size(base, budget)
    if size <= 1:
        return None
    def make_sampler(seed: int) -> optuna.samplers.BaseSampler:
        search = base.search.model_copy(update={"sampler_seed": seed})
        return STRATEGIES[base.search.strategy](base.model_copy(update={"search": search}), list(knobs)).sampler

    def shape_of(params: dict[str, Any]) -> str:
        if base.search.vectorize == "off":
            return ""
        try:
            exp = apply_params(base, dict(params))
            return group_key(exp, datasets.get(exp)) or ""
        except Exception:  # a configuration that cannot load fails later, in its own trial
            return ""

    def steps_of(params: dict[str, Any]) -> float:
        try:
            exp = apply_params(base, dict(params))
            rows = len(datasets.get(exp).train)
            return float(exp.train.epochs * math.ceil(rows / batch_rows(exp.train, rows)))
        except Exception:  # as above: its own trial says what is wrong
            return 0.0

    study.sampler = optuna.samplers.RandomSampler(seed=0)
    return Rounds(base, knobs, budget, size, make_sampler, shape_of, run.rounds_lock, run.rounds_log, steps_of)


def share_processes(study: optuna.Study, processes: int) -> None:
    """Record how many processes share the rounds, so each pops a fair share of every round."""
    if study.user_attrs.get(PROCESSES_ATTR) != processes:
        study.set_user_attr(PROCESSES_ATTR, processes)
