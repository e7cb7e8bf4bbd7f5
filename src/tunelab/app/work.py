"""`tunelab worker`: join a study from any machine and train its trials until none are left."""

from __future__ import annotations

from pathlib import Path

import optuna

from tunelab.app.prepare import default_out, prepare
from tunelab.config.load import load_experiment, validate_experiment
from tunelab.config.schema import Experiment
from tunelab.errors import ConfigError
from tunelab.runs.claim import load_run_experiment
from tunelab.runs.layout import RunLayout
from tunelab.runs.lock import try_hold, writer
from tunelab.search.results import StudyObserver, TuneResult
from tunelab.search.storage import make_storage
from tunelab.search.study_run import start_study


@writer
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
    exp, out = _experiment(source, storage, study_name, out)
    if exp.search.strategy in ("none", "staged"):
        raise ConfigError(f"a worker joins one study; strategy {exp.search.strategy} has none", key="search.strategy")
    prepared = prepare(exp, data_dir=data_dir)
    base = prepared.experiment
    layout = RunLayout(Path(out) if out is not None else default_out(base))
    run = start_study(base, prepared.dataset, prepared.exp_id, layout, storage, data_dir=data_dir,
                      observer=observer, n_trials=n_trials, joining=True)
    ran = run.optimize()
    if write_outputs and try_hold(layout.root):  # tune (or a process it started) leaves the outputs to tune
        run.write_outputs()
    result = run.result(ran)
    run.close()
    return result


def _experiment(
    source: str | Path | None, storage: str, study_name: str | None, out: str | Path | None
) -> tuple[Experiment, str | Path | None]:
    """The experiment to work on, and the run folder (a run folder given as source is its own)."""
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
        return validate_experiment(match[0].user_attrs.get("experiment", {}), source=f"study {study_name}"), out
    if Path(source).is_dir():
        return load_run_experiment(Path(source)), out if out is not None else source
    return load_experiment(source), out
