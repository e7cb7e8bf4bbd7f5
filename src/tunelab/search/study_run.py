"""One study run: an ordinary Optuna study driven trial by trial (ask/tell), resumable after a crash.

`StudyRun` holds what a run needs (study, base experiment, knobs, plan, run folder, data sets,
observer, limits); `start_study` opens it, `optimize` asks, trains and tells until the budget or
the queue is spent. `tunelab tune` and `tunelab worker` share this body; how many trials a round
asks and in what order is decided in `search/planning.py`.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tunelab.config.schema import Experiment
from tunelab.config.space import Knob, encode_params, fixed_params, parse_space, suggest
from tunelab.data.dataset import Dataset
from tunelab.runs.claim import claim_run_folder, record_split
from tunelab.runs.layout import RunLayout
from tunelab.runs.outcome import Outcome
from tunelab.search import planning
from tunelab.search.claims import claim
from tunelab.search.cost_ahead import CostAhead
from tunelab.search.group_run import run_trials
from tunelab.search.local_jobs import TRIAL_PROCESS_ENV
from tunelab.search.point_queue import enqueue_missing, pop_lock, pop_queued
from tunelab.search.results import (
    StudyObserver,
    TuneResult,
    best_value,
    counted,
    in_state,
    others_running,
    study_counts,
    summarize_study,
)
from tunelab.search.results import running as n_running
from tunelab.search.results import waiting as n_waiting
from tunelab.search.rounds import ROUND_POLL_S, rounds_for, share_processes
from tunelab.search.shared_study import check_compatible, duplicate_of, recover_dead_trials, retry_trial, stamp_study
from tunelab.search.storage import close_storage, open_study
from tunelab.search.strategies import STRATEGIES, Plan
from tunelab.search.trial_run import DatasetCache, StudyTrials, TrialOutcome, config_key, encoded_choices
from tunelab.search.trial_writes import write_trial
from tunelab.train.data_checks import write_data_checks

# While the last trials train elsewhere: how often to look whether one died and came back to the queue
# (the study ends when the last one ends; a second's sleep cost ~0.5 s of seed 000's grid, ~4%).
POLL_S = 0.2
Items = list[tuple[optuna.trial.Trial, dict[str, Any]]]  # a round's asked trials with their configurations
MAX_DRY_ASKS = 20  # asks in a row that gave only configurations already taken: the space is used up
log = logging.getLogger(__name__)


@dataclass
class StudyRun(StudyTrials):
    """Everything one study run needs, opened once and passed as one object: what its trials share
    (`StudyTrials`: study, base experiment, knobs, run folder, data sets), plus the plan, storage,
    observer and limits."""

    plan: Plan
    storage_url: str
    observer: StudyObserver
    n_trials: int | None = None
    timeout_s: float | None = None
    cost_ahead: CostAhead | None = None  # set by `tune` when a core is spare (search/cost_ahead.py)
    on_idle: Callable[[], None] | None = None  # called once when the rest trains elsewhere (`_wait_for_others`)

    def optimize(self, on_queued: Callable[[int], int] | None = None) -> int:
        """Ask, train and tell until the budget or the queue is spent; returns the trials run here.
        `on_queued(units)` is called once the explicit points are queued, with the number of
        independent units of work (groups or trials), and returns how many processes share the study."""
        return _optimize(self, on_queued)

    def result(self, ran: int) -> TuneResult:
        return summarize_study(self.study, self.layout, self.storage_url, self.plan, self.n_trials, ran, self.knobs)

    def write_outputs(self) -> None:
        """summary.csv, summary.md and optimization_history.json from the study as it stands."""
        from tunelab.search.summary_tables import write_outputs

        write_outputs(self.layout, self.study, self.base, self.knobs)

    def close(self) -> None:
        close_storage(self.study)


def start_study(
    base: Experiment,
    dataset: Dataset,
    exp_id: str,
    layout: RunLayout,
    storage_url: str,
    *,
    data_dir: str | None,
    observer: StudyObserver | None = None,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    joining: bool = False,
) -> StudyRun:
    """Open (or resume) the experiment's study on `storage_url` with its run folder claimed.

    `tune` claims the folder first (its study.db lives there) and accepts a study from other
    code; a worker `joining` a study checks that it runs the same code and data before it
    writes anything.
    """
    knobs = parse_space(base)
    plan = STRATEGIES[base.search.strategy](base, knobs)
    if joining and plan.points is None:
        # Every process of a study builds its sampler from the same sampler_seed: asked one at a
        # time, a joining process would propose exactly what `tune` proposed a moment earlier
        # (each such twin is then failed as a duplicate). Optuna reseeds each parallel sampler the
        # same way; rounds (search.batch_size > 1) seed their own samplers per round and stay
        # reproducible, and `tune` keeps the seed, so a one-process study is too.
        plan.sampler.reseed_rng()
    if not joining:
        claim_run_folder(layout, base)
    study = open_study(base, storage_url, plan.sampler)
    check_compatible(study, dataset.data_hash, strict_code=joining)
    if joining:
        claim_run_folder(layout, base)
    write_data_checks(layout, dataset)
    stamp_study(study, dataset.data_hash)
    record_split(layout, *_rows(dataset))
    datasets = DatasetCache(data_dir, (base, dataset))
    return StudyRun(study=study, base=base, knobs=knobs, layout=layout, datasets=datasets, exp_id=exp_id, plan=plan,
                    storage_url=storage_url, observer=observer or StudyObserver(),
                    n_trials=n_trials, timeout_s=timeout_s)


def _rows(dataset: Dataset) -> tuple[int, int, int]:
    return len(dataset.train), len(dataset.val), len(dataset.test) if dataset.test is not None else 0


def _optimize(run: StudyRun, on_queued: Callable[[int], int] | None) -> int:
    study, base, plan, n_trials = run.study, run.base, run.plan, run.n_trials
    recover_dead_trials(study)
    choices = None
    budget = n_trials or plan.n_trials
    per_round, max_group = planning.group_limits(base)
    if plan.points is not None:
        ordered, units, shape_of = planning.grouped_order(plan.points, base, run.datasets)
        enqueue_missing(study, run.storage_url, run.knobs, ordered)
        choices = encoded_choices(run.knobs, plan.points)
    else:
        units, shape_of = -(-budget // per_round), {}
    rounds = rounds_for(study, base, run.knobs, budget, run.datasets, run.layout) if plan.points is None else None
    workers = on_queued(units) if on_queued is not None else 1
    if rounds is not None and on_queued is not None:
        share_processes(study, workers)
    deadline = time.monotonic() + (run.timeout_s or base.search.timeout_s or float("inf"))
    total = len(plan.points) if plan.points is not None else budget
    run.observer.study_start(total, len(counted(study)))
    objective = base.search.objective
    run.observer.study_info(objective.metric, objective.resolved_direction(),
                            None if deadline == float("inf") else deadline, lambda: study_counts(study))
    ran = dry = 0
    while time.monotonic() < deadline:
        trials = _round_trials(study)
        if plan.points is not None:
            if n_trials is not None and ran >= n_trials:
                break
            if n_waiting(study, trials) == 0:
                if not others_running(study, trials) or _leaves_the_rest():
                    break
                _wait_for_others(run)  # another worker is training; its trial may still die and come back
                continue
        elif len(counted(study, trials)) >= budget:
            break
        elif rounds is None and len(counted(study, trials)) + n_running(study, trials) >= budget:
            if _leaves_the_rest():  # the last trials of the budget train elsewhere; they may die and come back
                break
            _wait_for_others(run)
            continue
        if rounds is not None:  # model-based sampler in rounds (search/rounds.py)
            items = rounds.ask(study, len(counted(study, trials)), trials)
            if items is None:
                break
            if not items:
                time.sleep(ROUND_POLL_S)  # the rest of the round trains elsewhere
                continue
        else:
            size = planning.round_size(study, trials, plan, per_round, budget, n_trials, ran, workers, shape_of)
            items = _ask_round(run, choices, size, trials)
            dry = 0 if items else dry + 1
            if dry >= MAX_DRY_ASKS:  # e.g. 3 categorical values and n_trials 10: it would ask forever
                log.warning("the sampler proposed only configurations already taken, %d times in a row; "
                            "the search space looks used up: stopping", dry)
                break
        if not items:
            continue
        ran += _train_round(run, items, max_group)
    return ran


def _round_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's trials, read once for this round after dead processes' trials were failed and
    queued again (once more when that changed anything): every decision of the round works from this
    read (each loads every unfinished trial with its attributes; a round used to read the study 8 times)."""
    trials = study.get_trials(deepcopy=False)
    if recover_dead_trials(study, trials):
        trials = study.get_trials(deepcopy=False)
    return trials


def _leaves_the_rest() -> bool:
    """A trial process of `tune` leaves the trials others still train to it (tune retries whatever
    comes back after its trial processes end); any other process waits for them."""
    return bool(os.environ.get(TRIAL_PROCESS_ENV))


def _wait_for_others(run: StudyRun) -> None:
    """Nothing left to take while the last trials train elsewhere: this core is idle (`on_idle`, once)."""
    idle, run.on_idle = run.on_idle, None
    if idle is not None:
        idle()
    time.sleep(POLL_S)


def _params_of(
    trial: optuna.trial.Trial, knobs: Sequence[Knob], base: Experiment, choices: dict[str, list[Any]] | None
) -> dict[str, Any] | None:
    """The trial's configuration by key path; None for a queued trial that holds no point."""
    if choices is None:
        return suggest(trial, knobs, base)
    key = trial.user_attrs.get("config_key")  # set when the point was enqueued
    if not key:
        return None
    point = json.loads(key)
    encoded = encode_params(knobs, point)
    for name, value in encoded.items():  # registers the enqueued values as the trial's Optuna params
        trial.suggest_categorical(name, choices.get(name, [value]))
    return {**fixed_params(knobs), **point}


def _ask(study: optuna.Study) -> optuna.trial.Trial:
    with warnings.catch_warnings():  # we send heartbeats ourselves (search/heartbeat.py)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        with pop_lock(study):  # a queued point goes to one process only (SQLite locks no row)
            return study.ask()


def _ask_round(run: StudyRun, choices: dict[str, list[Any]] | None, size: int, known: Sequence[FrozenTrial]) -> Items:
    """Ask up to `size` trials; points another worker took meanwhile, and duplicates, are told
    failed at once and left out. `known`: the study as read for this round (`_round_trials`); an
    explicit study takes its queued points from it, in number order as Optuna's `ask` would."""
    study = run.study
    items: Items = []
    keys: dict[str, int] = {}
    queue = iter(sorted(in_state(study, TrialState.WAITING, known), key=lambda t: t.number))
    for _ in range(size):
        trial = _ask(study) if choices is None else pop_queued(study, queue)
        if trial is None:  # other workers took the rest of the queue
            break
        params = _params_of(trial, run.knobs, run.base, choices)
        # Owner, first heartbeat and configuration at once, before the twin check below reads the
        # study: two processes whose samplers propose the same point together then see each other.
        # (A trial asked but never claimed is recovered later.)
        claim(study, trial, {"config_key": config_key(params)} if params is not None else {})
        if params is None:  # a queued trial without its point (no config_key): nothing to train
            trial.set_user_attr("outcome", Outcome.SKIPPED.value)
            study.tell(trial, state=TrialState.FAIL)
            break
        key = config_key(params)
        twin = keys.get(key)
        if twin is None:
            twin = duplicate_of(study, trial, key, known)
        if twin is not None:
            _drop_duplicate(study, trial, twin)
            continue
        keys[key] = trial.number
        items.append((trial, params))
    return _still_ours(study, items)


def _still_ours(study: optuna.Study, items: Items) -> Items:
    """The round's trials whose configuration no other worker finished or started first, read once
    after the round's asks (the check during the asks reads the study as it was before them: two
    workers taking twin copies of a point at the same moment both passed it)."""
    if not items:
        return items
    fresh = study.get_trials(deepcopy=False)
    kept = []
    for trial, params in items:
        twin = duplicate_of(study, trial, config_key(params), fresh)
        if twin is None:
            kept.append((trial, params))
        else:
            _drop_duplicate(study, trial, twin)
    return kept


def _drop_duplicate(study: optuna.Study, trial: optuna.trial.Trial, twin: int) -> None:
    reason = f"configuration already taken by trial {twin}"
    write_trial(study, trial, {"outcome": Outcome.DUPLICATE.value, "reason": reason})
    study.tell(trial, state=TrialState.FAIL)


def _train_round(run: StudyRun, items: Items, max_group: int) -> int:
    """Train the asked trials (vectorized where they can) and tell each as soon as it ends."""
    study, observer = run.study, run.observer
    told: set[int] = set()
    # The best value reads every trial of the study: only for a display that shows it (the CLI's).
    shows_best = type(observer).trial_end is not StudyObserver.trial_end

    def on_done(index: int, outcome: TrialOutcome) -> None:
        trial = items[index][0]
        if outcome.state == Outcome.COMPLETE:
            study.tell(trial, outcome.value)
        elif outcome.state == Outcome.PRUNED:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)
        told.add(index)
        observer.trial_end(trial.number, outcome, best_value(study) if shows_best else None)

    def on_start(indices: Sequence[int]) -> None:  # a vectorized group's trials all start with it
        for index in indices:
            observer.trial_start(items[index][0].number, "")

    observer.round_start([trial.number for trial, _ in items])
    try:
        run_trials(run, items, max_group=max_group, on_done=on_done, on_start=on_start,
                   epoch_hooks=observer.epoch_hooks(), ahead=run.cost_ahead)
    except KeyboardInterrupt:
        for index, (trial, _) in enumerate(items):
            if index in told:
                continue
            write_trial(study, trial, {
                "outcome": Outcome.INTERRUPTED.value,
                "reason": "interrupted by the user; configuration retried on the next run",
            })
            study.tell(trial, state=TrialState.FAIL)
            retry_trial(study, study.get_trials(deepcopy=False)[trial.number], Outcome.INTERRUPTED.value)
        raise
    return len(told)


def study_storage(storage: str | None, base: Experiment, layout: RunLayout) -> str:
    """The study's storage URL: `--storage`, else the experiment's, else study.db in the run folder."""
    return storage or base.search.storage or f"sqlite:///{layout.study_db}"

