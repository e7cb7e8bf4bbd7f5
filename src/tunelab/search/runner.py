"""`tunelab tune`: an ordinary Optuna study driven trial by trial (ask/tell), resumable after a crash."""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tunelab.api import Prepared, claim_run_folder, default_out, prepare
from tunelab.config.load import load_experiment
from tunelab.config.schema import Experiment
from tunelab.config.space import (
    Knob,
    apply_params,
    decode_params,
    encode_params,
    fixed_params,
    parse_space,
    suggest,
)
from tunelab.errors import ConfigError
from tunelab.runs.layout import RunLayout
from tunelab.runs.records import write_text_atomic
from tunelab.search import selection
from tunelab.search.group_run import run_trials
from tunelab.search.local_jobs import resolve_jobs, spawn_workers, wait_workers
from tunelab.search.objective import DatasetCache, TrialOutcome, config_key, encoded_choices
from tunelab.search.storage import close_storage, open_study
from tunelab.search.strategies import STRATEGIES, Plan
from tunelab.search.trial_writes import write_trial
from tunelab.search.workers import (
    check_compatible,
    duplicate_of,
    recover_dead_trials,
    retry_trial,
    stamp_study,
)
from tunelab.train.hooks import Hook
from tunelab.train.vectorized import group_key

log = logging.getLogger(__name__)
COUNTED = ("complete", "pruned", "diverged")  # outcomes that use up budget; crashes are retried
POLL_S = 1.0


@dataclass(frozen=True)
class TuneResult:
    """Where a study lives and how it ended."""

    run_dir: Path
    study_name: str
    storage: str
    n_complete: int
    n_pruned: int
    n_failed: int
    best_value: float | None
    best_params: dict[str, Any]
    finished: bool
    ran_trials: int


class StudyObserver:
    """Callbacks for progress display; every method is a no-op by default."""

    def epoch_hooks(self) -> Sequence[Hook]:
        return ()

    def study_start(self, total: int | None, done: int) -> None:
        pass

    def trial_start(self, number: int, name: str) -> None:
        pass

    def trial_end(self, number: int, outcome: TrialOutcome, best: float | None) -> None:
        pass


def _counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("outcome") in COUNTED]


def _enqueue_missing(study: optuna.Study, knobs: Sequence[Knob], points: Sequence[dict[str, Any]]) -> int:
    """Queue every explicit point not yet finished, waiting or running (exactly once across resumes)."""
    taken = {
        t.user_attrs.get("config_key")
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get("outcome") in COUNTED or t.state in (TrialState.WAITING, TrialState.RUNNING)
    }
    added = 0
    for point in points:
        key = config_key(point)
        if key in taken:
            continue
        study.enqueue_trial(encode_params(knobs, point), user_attrs={"config_key": key})
        taken.add(key)
        added += 1
    return added


def _others_running(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _waiting(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _params_of(
    trial: optuna.trial.Trial, knobs: Sequence[Knob], base: Experiment, choices: dict[str, list[Any]] | None
) -> dict[str, Any] | None:
    """The trial's configuration by key path; None when an explicit study has no point left for it."""
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


def tune(
    experiment: str | Path | Experiment | None = None,
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    storage: str | None = None,
    data_dir: str | None = None,
    observer: StudyObserver | None = None,
    run_final: bool | None = None,
    write_outputs: bool = True,
) -> TuneResult:
    """Run (or resume) the experiment's search; writes the run folder's summary and final model."""
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment, overrides)
    if isinstance(experiment, Experiment) and overrides:
        exp = load_experiment(None, overrides, raw=experiment.model_dump(mode="json"))
    if exp.search.strategy == "none":
        raise ConfigError(
            f"strategy none has nothing to search; choose one of {', '.join(STRATEGIES)} or use tunelab train",
            key="search.strategy",
        )
    prepared = prepare(exp, data_dir=data_dir)
    base = prepared.experiment
    _check_objective(base)
    if base.search.strategy == "staged":
        return _tune_staged(base, out, data_dir, observer or StudyObserver(), run_final)
    knobs = parse_space(base)
    plan = STRATEGIES[base.search.strategy](base, knobs)
    layout = RunLayout(Path(out) if out is not None else default_out(base))
    claim_run_folder(layout, base)
    storage_url = storage or base.search.storage or f"sqlite:///{layout.study_db}"
    study = open_study(base, storage_url, plan.sampler)
    check_compatible(study, prepared.dataset.data_hash, strict_code=False)
    stamp_study(study, prepared.dataset.data_hash)
    observer = observer or StudyObserver()
    procs: list[Any] = []

    def start_jobs(units: int) -> int:
        # A per-run limit (--n-trials over explicit points, --timeout) binds this process only.
        limited = timeout_s is not None or (n_trials is not None and plan.points is not None)
        jobs = 1 if limited else resolve_jobs(base, units)
        if jobs > 1:
            procs.extend(spawn_workers(jobs - 1, layout.root, storage_url, data_dir, n_trials=n_trials))
        return jobs

    try:
        ran = _optimize(study, base, knobs, plan, layout, prepared, data_dir, observer, n_trials, timeout_s,
                        on_queued=start_jobs)
    except BaseException:
        for proc in procs:  # Ctrl-C reaches them too; anything else stops them here
            if proc.poll() is None and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
                proc.terminate()
        raise
    finally:
        wait_workers(procs)
    if procs and recover_dead_trials(study):  # a trial process died: its trials were queued again
        ran += _optimize(study, base, knobs, plan, layout, prepared, data_dir, observer, n_trials, timeout_s)
    result = summarize_study(study, layout, storage_url, plan, n_trials, ran, knobs)
    if write_outputs:
        from tunelab.search.outputs import write_outputs as write_run_outputs

        write_run_outputs(layout, study, base, knobs)
        if base.search.strategy == "lr_sweep":
            from tunelab.search.lr_sweep import format_sweep, sweep_rows

            write_text_atomic(layout.root / "lr_sweep.txt", format_sweep(*sweep_rows(layout.root)))
        do_final = base.final.enabled if run_final is None else run_final
        if do_final and result.finished and result.best_value is not None:
            from tunelab.search.final import run_final as final_model

            final_model(layout.root, data_dir=data_dir, study=study)
            write_run_outputs(layout, study, base, knobs)
        write_evidence(layout.root)
    close_storage(study)
    return result


def write_evidence(run_dir: Path) -> None:
    """decisions.md (cards and findings) then report.html; a report problem never fails a finished study."""
    from tunelab.diagnose.decisions import write_decisions
    from tunelab.errors import TunelabError
    from tunelab.report.html import write_report

    try:
        write_decisions(run_dir)
        write_report(run_dir)
    except (TunelabError, OSError) as exc:
        log.warning("report not written: %s", exc)


def _tune_staged(
    base: Experiment, out: str | Path | None, data_dir: str | None, observer: StudyObserver, run_final: bool | None
) -> TuneResult:
    from tunelab.search.staged import default_stages, run_staged, stage_experiment

    for i, stage in enumerate(base.search.stages or default_stages(base), start=1):
        parse_space(stage_experiment(base, stage, i, {}))  # every stage's space is checked before anything runs
    layout = RunLayout(Path(out) if out is not None else default_out(base))
    claim_run_folder(layout, base)
    outcome = run_staged(base, layout, data_dir=data_dir, observer=observer, run_final=run_final)
    write_evidence(layout.root)
    stages = outcome["stages"]
    last = stages[-1] if stages else {}
    return TuneResult(
        run_dir=layout.root,
        study_name=base.name,
        storage=f"{len(stages)} stage studies under {layout.root / 'stages'}",
        n_complete=len(stages),
        n_pruned=0,
        n_failed=0,
        best_value=last.get("best_value"),
        best_params=outcome["winners"],
        finished=all(s["finished"] for s in stages),
        ran_trials=len(stages),
    )


def _check_objective(exp: Experiment) -> None:
    metric = exp.search.objective.metric
    allowed = ["val_loss"] + [f"val_{m}" for m in exp.train.metrics or []]
    if metric not in allowed:
        raise ConfigError(
            f"objective {metric!r} is not logged for this experiment; choose one of {', '.join(allowed)}",
            key="search.objective.metric",
        )


AUTO_GROUP = 32  # members per vectorized group under `vectorize: auto`
SEQUENTIAL_SAMPLERS = ("tpe", "gp", "cmaes")  # learn from every result: asked one trial at a time


def group_limits(exp: Experiment) -> tuple[int, int]:
    """(trials asked per round, members per vectorized group) for the experiment's settings.

    `off`: one trial at a time, never grouped. `auto`: groups of up to 32 members; explicit
    points, random and qmc ask that many trials at once; model-based samplers, and any study
    with a pruner (it compares a trial with those finished before it), ask one (its seeds still
    train as one group). An integer K: groups of K members, K trials per round, whatever the
    sampler or pruner.
    """
    setting, seeds = exp.search.vectorize, exp.search.seeds
    if setting == "off":
        return 1, 1
    members = AUTO_GROUP if setting == "auto" else int(setting)
    if setting == "auto" and (exp.search.strategy in SEQUENTIAL_SAMPLERS or exp.search.pruner != "none"):
        return 1, members
    return max(1, members // seeds), members


def _ask(study: optuna.Study) -> optuna.trial.Trial:
    with warnings.catch_warnings():  # we send heartbeats ourselves (workers.Heartbeat)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        return study.ask()


def _round_size(
    study: optuna.Study,
    plan: Plan,
    per_round: int,
    budget: int,
    n_trials: int | None,
    ran: int,
    workers: int,
    shape_of: dict[str, str],
) -> int:
    """How many trials to ask now: for explicit points, a fair share (among the workers in sight)
    of the next same-shape group in the queue, so every process gets part of every costly group
    and workers that join later still find work; for samplers, a fair share of the budget left."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    in_sight = max(workers, len({t.user_attrs.get("pid") for t in running}) + 1)
    if plan.points is None:
        left = budget - len(_counted(study)) - len(running)
        return max(1, min(per_round, -(-left // in_sight)))
    waiting = sorted(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)), key=lambda t: t.number)
    left = len(waiting) if n_trials is None else min(len(waiting), n_trials - ran)
    shapes = [shape_of.get(t.user_attrs.get("config_key", ""), "") for t in waiting]
    group = 1
    while shapes and shapes[0] and group < len(shapes) and shapes[group] == shapes[0]:
        group += 1
    share = -(-sum(1 for key in shape_of.values() if key == shapes[0]) // in_sight) if shapes and shapes[0] else 1
    return max(1, min(per_round, group, share, left))


def _optimize(
    study: optuna.Study,
    base: Experiment,
    knobs: list[Knob],
    plan: Plan,
    layout: RunLayout,
    prepared: Prepared,
    data_dir: str | None,
    observer: StudyObserver,
    n_trials: int | None,
    timeout_s: float | None,
    workers: int = 1,
    on_queued: Callable[[int], int] | None = None,
) -> int:
    """Ask, train and tell until the budget or the queue is spent. `on_queued(units)` is called
    once the explicit points are queued, with the number of independent units of work (groups
    or trials), and returns how many processes share the study."""
    recover_dead_trials(study)
    choices = None
    datasets = DatasetCache(data_dir, (base, prepared.dataset))
    budget = n_trials or plan.n_trials
    per_round, max_group = group_limits(base)
    if plan.points is not None:
        ordered, units, shape_of = _grouped_order(plan.points, base, datasets)
        _enqueue_missing(study, knobs, ordered)
        choices = encoded_choices(knobs, plan.points)
    else:
        units, shape_of = -(-budget // per_round), {}
    if on_queued is not None:
        workers = on_queued(units)
    deadline = time.monotonic() + (timeout_s or base.search.timeout_s or float("inf"))
    total = len(plan.points) if plan.points is not None else budget
    observer.study_start(total, len(_counted(study)))
    ran = 0
    while time.monotonic() < deadline:
        recover_dead_trials(study)
        if plan.points is not None:
            if n_trials is not None and ran >= n_trials:
                break
            if _waiting(study) == 0:
                if not _others_running(study):
                    break
                time.sleep(POLL_S)  # another worker is training; its trial may still die and come back
                continue
        elif len(_counted(study)) >= budget:
            break
        items = _ask_round(study, knobs, base, choices, _round_size(study, plan, per_round, budget, n_trials, ran,
                                                                       workers, shape_of))
        if not items:
            continue
        ran += _train_round(study, items, knobs, base, layout, datasets, prepared.exp_id, observer, max_group)
    return ran


def _ask_round(
    study: optuna.Study, knobs: list[Knob], base: Experiment, choices: dict[str, list[Any]] | None, size: int
) -> list[tuple[optuna.trial.Trial, dict[str, Any]]]:
    """Ask up to `size` trials; points another worker took meanwhile, and duplicates, are told
    failed at once and left out."""
    items: list[tuple[optuna.trial.Trial, dict[str, Any]]] = []
    keys: dict[str, int] = {}
    for _ in range(size):
        if choices is not None and items and _waiting(study) == 0:
            break
        trial = _ask(study)
        params = _params_of(trial, knobs, base, choices)
        if params is None:  # another worker took the last point between our check and ask()
            trial.set_user_attr("outcome", "skipped")
            study.tell(trial, state=TrialState.FAIL)
            break
        key = config_key(params)
        twin = keys.get(key)
        if twin is None:
            twin = duplicate_of(study, trial, key)
        if twin is not None:
            reason = f"configuration already taken by trial {twin}"
            write_trial(study, trial, {"outcome": "duplicate", "reason": reason})
            study.tell(trial, state=TrialState.FAIL)
            continue
        keys[key] = trial.number
        items.append((trial, params))
    return items


def _train_round(
    study: optuna.Study,
    items: list[tuple[optuna.trial.Trial, dict[str, Any]]],
    knobs: list[Knob],
    base: Experiment,
    layout: RunLayout,
    datasets: DatasetCache,
    exp_id: str,
    observer: StudyObserver,
    max_group: int,
) -> int:
    """Train the asked trials (vectorized where they can) and tell each as soon as it ends."""
    told: set[int] = set()

    def on_done(index: int, outcome: TrialOutcome) -> None:
        trial = items[index][0]
        if outcome.state == "complete":
            study.tell(trial, outcome.value)
        elif outcome.state == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)
        told.add(index)
        observer.trial_end(trial.number, outcome, _best_value(study))

    for trial, _ in items:
        observer.trial_start(trial.number, "")
    try:
        run_trials(study, items, knobs, base, layout, datasets, exp_id, max_group=max_group, on_done=on_done,
                   epoch_hooks=observer.epoch_hooks())
    except KeyboardInterrupt:
        for index, (trial, _) in enumerate(items):
            if index in told:
                continue
            write_trial(study, trial, {
                "outcome": "interrupted",
                "reason": "interrupted by the user; configuration retried on the next run",
            })
            study.tell(trial, state=TrialState.FAIL)
            retry_trial(study, study.get_trials(deepcopy=False)[trial.number], "interrupted")
        raise
    return len(told)


def _grouped_order(
    points: Sequence[dict[str, Any]], base: Experiment, datasets: DatasetCache
) -> tuple[list[dict[str, Any]], int, dict[str, str]]:
    """The explicit points with same-shape configurations next to each other (a stable sort), so
    a round of asked trials forms few, large vectorized groups; how many units of work (groups,
    or points that train alone) they make; and each point's shape key by its config key ("" for
    a point that trains alone)."""
    if base.search.vectorize == "off":
        return list(points), len(points), {}
    longest_first = base.search.strategy in ("grid", "random", "qmc")
    keys, costs, cost_of = [], [], {}
    for point in points:
        try:
            exp = apply_params(base, dict(point))
            data = datasets.get(exp)
            key = group_key(exp, data) or ""
        except Exception:  # a point that cannot even load fails later, in its own trial, with its reason
            key, exp, data = "", None, None
        if key and longest_first and key not in cost_of:  # one cheap build per shape (mlp, cnn)
            cost_of[key] = _cost(exp, data)
        keys.append(key)
        costs.append(cost_of.get(key, 0.0))
    first_seen: dict[str, int] = {}
    for key in keys:
        first_seen.setdefault(key, len(first_seen))
    if longest_first:
        # Longest work first: the costliest groups start while every process is free, so the
        # cheap ones fill the gaps at the end instead of one expensive group running alone.
        load: dict[str, float] = {}
        for key, cost in zip(keys, costs, strict=True):
            load[key] = load.get(key, 0.0) + cost
        rank = {key: i for i, key in enumerate(sorted(first_seen, key=lambda k: (-load[k], first_seen[k])))}
    else:  # ablation and sweeps keep their order: the default or the sweep's order comes first
        rank = first_seen
    order = sorted(range(len(points)), key=lambda i: rank[keys[i]])
    _, max_group = group_limits(base)
    units = keys.count("") + sum(-(-keys.count(k) * base.search.seeds // max_group) for k in first_seen if k)
    shape_of = {config_key(point): key for point, key in zip(points, keys, strict=True)}
    return [points[i] for i in order], units, shape_of


def _cost(exp: Experiment, data: Any) -> float:
    """A trial's relative cost: parameters x epochs x training rows (its forward/backward FLOPs)."""
    from tunelab.trial import model_for

    try:
        params = sum(p.numel() for p in model_for(exp, data).parameters())
    except Exception:
        return 0.0
    return float(params) * exp.train.epochs * max(1, len(data.train))


def _best_value(study: optuna.Study) -> float | None:
    return selection.choose(study).value


def _best_params(study: optuna.Study, knobs: Sequence[Knob]) -> dict[str, Any]:
    """The winner's values by key path, decoded: exactly what the history and the final model name."""
    best = selection.best_trial(study)
    return decode_params(knobs, best.params) if knobs else dict(best.params)


def summarize_study(
    study: optuna.Study,
    layout: RunLayout,
    storage: str,
    plan: Plan,
    n_trials: int | None,
    ran: int,
    knobs: Sequence[Knob] = (),
) -> TuneResult:
    trials = study.get_trials(deepcopy=False)
    outcomes = [t.user_attrs.get("outcome") for t in trials]
    counted = sum(1 for o in outcomes if o in COUNTED)
    if plan.points is not None:
        finished = _waiting(study) == 0 and not any(t.state == TrialState.RUNNING for t in trials)
    else:
        finished = counted >= (n_trials or plan.n_trials)
    best = _best_value(study)
    return TuneResult(
        run_dir=layout.root,
        study_name=study.study_name,
        storage=storage,
        n_complete=outcomes.count("complete"),
        n_pruned=outcomes.count("pruned"),
        n_failed=outcomes.count("diverged"),
        best_value=best,
        best_params=_best_params(study, knobs) if best is not None else {},
        finished=finished,
        ran_trials=ran,
    )


ObserverFactory = Callable[[], StudyObserver]


def work(
    source: str | Path | None = None,
    *,
    storage: str,
    study_name: str | None = None,
    out: str | Path | None = None,
    n_trials: int | None = None,
    data_dir: str | None = None,
    observer: StudyObserver | None = None,
    write_outputs: bool = True,
) -> TuneResult:
    """Join a study and train its trials until the budget or the grid is exhausted.

    The experiment comes from `source` (a run folder or an experiment file) or, given only the
    storage URL and the study name, from the study's own attributes.
    """
    from tunelab.config.load import validate_experiment
    from tunelab.search.storage import make_storage

    if source is None:
        if not study_name:
            raise ConfigError("give a run folder, an experiment file, or --study NAME", key="worker")
        try:
            summaries = optuna.get_all_study_summaries(make_storage(storage))
        except Exception as exc:
            raise ConfigError(f"cannot read studies: {type(exc).__name__}", key="--storage") from None
        match = [s for s in summaries if s.study_name == study_name]
        if not match:
            names = ", ".join(s.study_name for s in summaries) or "none"
            raise ConfigError(f"no study named {study_name!r} in this storage (studies: {names})", key="--study")
        exp = validate_experiment(match[0].user_attrs.get("experiment", {}), source=f"study {study_name}")
    elif Path(source).is_dir():
        from tunelab.search.final import load_run_experiment

        exp = load_run_experiment(Path(source))
        out = out if out is not None else source
    else:
        exp = load_experiment(source)
    if exp.search.strategy in ("none", "staged"):
        raise ConfigError(f"a worker joins one study; strategy {exp.search.strategy} has none", key="search.strategy")
    prepared = prepare(exp, data_dir=data_dir)
    base = prepared.experiment
    knobs = parse_space(base)
    plan = STRATEGIES[base.search.strategy](base, knobs)
    layout = RunLayout(Path(out) if out is not None else default_out(base))
    study = open_study(base, storage, plan.sampler)
    check_compatible(study, prepared.dataset.data_hash)  # refuse before writing anything
    claim_run_folder(layout, base)
    stamp_study(study, prepared.dataset.data_hash)
    ran = _optimize(
        study, base, knobs, plan, layout, prepared, data_dir, observer or StudyObserver(), n_trials, None
    )
    if write_outputs:  # a trial process started by `tune` leaves the outputs to it
        from tunelab.search.outputs import write_outputs as write_run_outputs

        write_run_outputs(layout, study, base, knobs)
    result = summarize_study(study, layout, storage, plan, n_trials, ran, knobs)
    close_storage(study)
    return result
