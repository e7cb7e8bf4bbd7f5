"""What a study run reports: the result type, the observer it calls, and the study queries both need."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tunelab.config.space import Knob, decode_params
from tunelab.runs.layout import RunLayout
from tunelab.runs.outcome import COUNTED, Outcome
from tunelab.search.strategies import Plan
from tunelab.search.trial_run import TrialOutcome
from tunelab.train.hooks import Hook


@dataclass(frozen=True)
class TuneResult:
    """Where a study lives and how it ended: what `tunelab.tune` returns and `tune --json` prints.

    `best_params` is keyed by key path (`train.lr`, `model.hidden_dims`), like the history, the
    summary and the final model, for every strategy (staged: the winners of all stages merged);
    `n_diverged` counts trials whose loss diverged (no value);
    `n_failed` counts attempts whose process crashed or was interrupted (their configuration is retried).
    `test_metrics` holds the `test_*` scores of the final model's
    `test_metrics.json` (`test_loss`, `test_accuracy`, ...) when this call retrained it (None when
    no final ran); `report` is `report.html` once written.
    """

    run_dir: Path
    study_name: str
    storage: str
    n_complete: int
    n_pruned: int
    n_diverged: int
    n_failed: int
    best_value: float | None
    best_params: dict[str, Any]
    finished: bool
    ran_trials: int
    test_metrics: dict[str, float] | None = None
    report: Path | None = None

    def public(self) -> dict[str, Any]:
        """The fields a caller prints (`--json`)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def with_outputs(result: TuneResult, layout: RunLayout, *, final_ran: bool) -> TuneResult:
    """`result` with the final model's test metrics (when `final_ran`) and the report path (when written)."""
    from tunelab.runs.records import read_json

    metrics = None
    scores = layout.final_of().test_metrics  # the scores; the file also says how the model was retrained
    if final_ran and scores.exists():
        metrics = {k: v for k, v in read_json(scores).items() if k.startswith("test_")}
    report = layout.report_html if layout.report_html.exists() else None
    return replace(result, test_metrics=metrics, report=report)


class StudyObserver:
    """Callbacks for progress display; every method is a no-op by default."""

    def epoch_hooks(self) -> Sequence[Hook]:
        return ()

    def study_start(self, total: int | None, done: int) -> None:
        pass

    def study_info(
        self, metric: str, direction: str, deadline: float | None, counts: Callable[[], StudyCounts]
    ) -> None:
        """The objective, the `time.monotonic()` deadline (None: no timeout) and a live view of the study."""

    def round_start(self, numbers: Sequence[int]) -> None:
        """Trials this process asked for and will train next (they start with their group)."""

    def phase(self, name: str) -> AbstractContextManager[None]:
        """A step after the trials (final retrain, evidence), timed by the display."""
        return nullcontext()

    def trial_start(self, number: int, name: str) -> None:
        pass

    def trial_end(self, number: int, outcome: TrialOutcome, best: float | None) -> None:
        pass


@dataclass(frozen=True)
class StudyCounts:
    """What every process of a study has done: told trials that used budget, and the numbers still running."""

    done: int
    running: frozenset[int]


def study_counts(study: optuna.Study) -> StudyCounts:
    trials = study.get_trials(deepcopy=False)
    return StudyCounts(
        done=sum(1 for t in trials if t.state != TrialState.RUNNING and t.user_attrs.get("outcome") in COUNTED),
        running=frozenset(t.number for t in trials if t.state == TrialState.RUNNING),
    )


# `trials` below: the study's trials as the caller read them once for a round; None reads them now.
# Each read of an RDB study loads every unfinished trial with its attributes (SQLite, 27 queued
# points: median 10 ms on the loaded 2-core VM, 2026-12-01), and a round of one trial used to read it 8 times.
Trials = Sequence[optuna.trial.FrozenTrial] | None


def counted(study: optuna.Study, trials: Trials = None) -> list[optuna.trial.FrozenTrial]:
    """Trials that used up budget (complete, pruned, diverged); crashed ones are retried."""
    return [t for t in _read(study, trials) if t.user_attrs.get("outcome") in COUNTED]


def in_state(study: optuna.Study, state: TrialState, trials: Trials = None) -> list[optuna.trial.FrozenTrial]:
    """The trials in `state`, by number."""
    if trials is None:
        return study.get_trials(deepcopy=False, states=(state,))
    return [t for t in trials if t.state == state]


def others_running(study: optuna.Study, trials: Trials = None) -> bool:
    return bool(in_state(study, TrialState.RUNNING, trials))


def running(study: optuna.Study, trials: Trials = None) -> int:
    return len(in_state(study, TrialState.RUNNING, trials))


def waiting(study: optuna.Study, trials: Trials = None) -> int:
    return len(in_state(study, TrialState.WAITING, trials))


def _read(study: optuna.Study, trials: Trials) -> Sequence[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False) if trials is None else trials


def best_value(study: optuna.Study) -> float | None:
    """The winner's objective value (search/selection.py breaks ties), or None before any result."""
    from tunelab.search import selection

    return selection.choose(study).value


def best_by_path(study: optuna.Study, knobs: Sequence[Knob]) -> dict[str, Any]:
    """The winner's values by key path, decoded: exactly what the history and the final model name."""
    from tunelab.search import selection

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
    n_counted = sum(1 for o in outcomes if o in COUNTED)
    if plan.points is not None:
        finished = waiting(study) == 0 and not any(t.state == TrialState.RUNNING for t in trials)
    else:
        finished = n_counted >= (n_trials or plan.n_trials)
    best = best_value(study)
    return TuneResult(
        run_dir=layout.root,
        study_name=study.study_name,
        storage=storage,
        n_complete=outcomes.count(Outcome.COMPLETE),
        n_pruned=outcomes.count(Outcome.PRUNED),
        n_diverged=outcomes.count(Outcome.DIVERGED),
        n_failed=outcomes.count(Outcome.CRASHED) + outcomes.count(Outcome.INTERRUPTED),
        best_value=best,
        best_params=best_by_path(study, knobs) if best is not None else {},
        finished=finished,
        ran_trials=ran,
    )
