"""Parameter importance: Optuna's fANOVA on the study's trials as optimization_history.json holds them.

The trials come from the history the report already read (`runs.study_trials`: Optuna's params and
distributions rebuilt from the experiment's space), not from study.db: a process's first database
read costs SQLAlchemy's engine and ORM set-up, 0.3-0.4 s of CPU after the last trial in a renderer
that had no idle core to warm up on. Same trials, same numbers. A folder whose history or
experiment cannot give them exactly (an older or hand-edited folder) is read from study.db.
The forest keeps Optuna's 64 trees: with 32 or 16 the ranking of a 40-trial TPE study's five
params changed with the seed (benchmarks/RESULTS.md, "Drawing the report cheaper").
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from tunelab.report.figures import new_figure
from tunelab.report.runinfo import ReportRun, short_names
from tunelab.runs.study_trials import complete_trials

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


def _load_study(run: ReportRun) -> optuna.Study | None:
    import optuna

    db = run.view.layout.study_db
    if not db.exists():
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Relative to the folder as it is now, so a copied run folder reads its own study.db.
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}", skip_compatibility_check=True, skip_table_creation=True)
    names = [s.study_name for s in storage.get_all_studies()]
    wanted = run.view.history.get("study_name")
    name = wanted if wanted in names else (names[0] if len(names) == 1 else None)
    return optuna.load_study(study_name=name, storage=storage) if name else None


def history_study(run: ReportRun) -> optuna.Study | None:
    """An in-memory study of the history's complete trials (`runs.study_trials`); None when the
    folder cannot give them exactly."""
    import optuna

    trials = complete_trials(run.view)
    if trials is None:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=run.view.history.get("direction") or "minimize")
    study.add_trials(trials)
    return study


def importances(run: ReportRun) -> tuple[dict[str, float], int] | str:
    """({param: importance}, complete trials), or a note saying why there is none."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState

    try:
        study = history_study(run) or _load_study(run)
    except Exception as exc:  # a damaged or foreign database: the rest of the report still stands
        log.debug("study.db unreadable", exc_info=True)
        return f"parameter importance skipped: study.db could not be read ({type(exc).__name__})"
    if study is None:
        return "parameter importance skipped: no Optuna study in the run folder (study.db)"
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    params = {p for t in complete for p in t.params}
    if len(complete) < 2 or len(params) < 2:
        return (f"parameter importance skipped: needs at least 2 complete trials and 2 searched params "
                f"(found {len(complete)} complete, {len(params)} param(s))")
    try:
        # A fixed seed: the forest is random, and a rebuilt report must show the same numbers.
        scores = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError, optuna.exceptions.OptunaError) as exc:
        return f"parameter importance skipped: {exc}"
    return dict(scores), len(complete)


def importance_plot(run: ReportRun) -> Figure | str:
    found = importances(run)
    if isinstance(found, str):
        return found
    scores, n_complete = found
    names = short_names(list(scores))
    fig, axes = new_figure((7.0, max(2.5, 0.5 * len(scores) + 1.4)))
    ax = axes[0][0]
    labels = [names[p] for p in scores]
    ax.barh(range(len(scores)), list(scores.values()), color="#1f77b4")
    for i, v in enumerate(scores.values()):
        ax.text(v, i, f" {v:.3f}", va="center", fontsize=8)
    ax.set_yticks(range(len(scores)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, max(scores.values()) * 1.15 or 1)
    ax.set_xlabel(f"importance for {run.metric} (fANOVA, fraction of variance, sums to 1)")
    ax.set_title(f"Parameter importance ({n_complete} complete trials)")
    fig.tight_layout()
    return fig

