"""`tunelab tune`: an ordinary Optuna study driven trial by trial (ask/tell), resumable after a crash."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tunelab.api import Prepared, claim_run_folder, default_out, prepare
from tunelab.config.load import load_experiment
from tunelab.config.schema import Experiment
from tunelab.config.space import Knob, decode_params, encode_params, fixed_params, parse_space, suggest
from tunelab.errors import ConfigError
from tunelab.runs.layout import RunLayout
from tunelab.runs.records import write_text_atomic
from tunelab.search.objective import DatasetCache, TrialOutcome, config_key, encoded_choices, run_configuration
from tunelab.search.storage import open_study
from tunelab.search.strategies import STRATEGIES, Plan
from tunelab.search.workers import (
    Heartbeat,
    check_compatible,
    duplicate_of,
    recover_dead_trials,
    retry_trial,
    stamp_study,
)
from tunelab.train.hooks import Hook

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
    ran = _optimize(study, base, knobs, plan, layout, prepared, data_dir, observer, n_trials, timeout_s)
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
) -> int:
    recover_dead_trials(study)
    choices = None
    if plan.points is not None:
        _enqueue_missing(study, knobs, plan.points)
        choices = encoded_choices(knobs, plan.points)
    budget = n_trials or plan.n_trials
    deadline = time.monotonic() + (timeout_s or base.search.timeout_s or float("inf"))
    datasets = DatasetCache(data_dir, (base, prepared.dataset))
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
        trial = study.ask()
        params = _params_of(trial, knobs, base, choices)
        if params is None:  # another worker took the last point between our check and ask()
            trial.set_user_attr("outcome", "skipped")
            study.tell(trial, state=TrialState.FAIL)
            continue
        twin = duplicate_of(study, trial, config_key(params))
        if twin is not None:
            trial.set_user_attr("outcome", "duplicate")
            trial.set_user_attr("reason", f"configuration already taken by trial {twin}")
            study.tell(trial, state=TrialState.FAIL)
            continue
        observer.trial_start(trial.number, "")
        try:
            with Heartbeat(study, trial):
                outcome = run_configuration(
                    trial, params, knobs, base, layout, datasets, prepared.exp_id,
                    epoch_hooks=observer.epoch_hooks(),
                )
        except KeyboardInterrupt:
            trial.set_user_attr("outcome", "interrupted")
            trial.set_user_attr("reason", "interrupted by the user; configuration retried on the next run")
            study.tell(trial, state=TrialState.FAIL)
            retry_trial(study, study.get_trials(deepcopy=False)[trial.number], "interrupted")
            raise
        if outcome.state == "complete":
            study.tell(trial, outcome.value)
        elif outcome.state == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)
        ran += 1
        observer.trial_end(trial.number, outcome, _best_value(study))
    return ran


def _best_value(study: optuna.Study) -> float | None:
    try:
        return study.best_value
    except ValueError:
        return None


def _best_params(study: optuna.Study, knobs: Sequence[Knob]) -> dict[str, Any]:
    """The winner's searched values by knob name, decoded (lists are lists again)."""
    by_path = decode_params(knobs, study.best_trial.params) if knobs else dict(study.best_trial.params)
    names = {k.path: k.name for k in knobs if k.kind != "fixed"}
    return {names.get(p, p): v for p, v in by_path.items() if not knobs or p in names}


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
    from tunelab.search.outputs import write_outputs as write_run_outputs

    write_run_outputs(layout, study, base, knobs)
    return summarize_study(study, layout, storage, plan, n_trials, ran, knobs)
