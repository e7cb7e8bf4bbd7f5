"""`tunelab tune`: load, run the study (or each stage), write the outputs, the final model and the evidence.

The path of a search: `cli.tune` -> `app.tune.tune` -> `search.study_run.StudyRun.optimize` ->
`search.group_run.run_trials` / `search.trial_run.train_alone` -> `train.loop.fit` / `train.vectorized.fit_group`.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tunelab.app.combine_winners import check_combine, combine_winners
from tunelab.app.evidence import write_evidence
from tunelab.app.prepare import default_out, load, prepare
from tunelab.app.ray_jobs import check_backend, run_on_ray
from tunelab.config.schema import Experiment
from tunelab.config.space import parse_space
from tunelab.data.folds import check_cv
from tunelab.errors import ConfigError
from tunelab.report.render_pool import PlotPool
from tunelab.runs.claim import claim_run_folder
from tunelab.runs.layout import RunLayout
from tunelab.runs.lock import hold, writer
from tunelab.runs.records import read_json, write_text_atomic
from tunelab.search.cost_ahead import CostAhead, IdleProbe, spare_core
from tunelab.search.forked_jobs import can_fork, fork_workers
from tunelab.search.local_jobs import pin_devices, spawn_workers, wait_workers
from tunelab.search.planning import resolve_jobs
from tunelab.search.proxy import serve_storage
from tunelab.search.results import StudyObserver, TuneResult, with_outputs
from tunelab.search.shared_study import recover_dead_trials
from tunelab.search.space_sizes import check_space_sizes
from tunelab.search.storage import check_storage
from tunelab.search.strategies import STRATEGIES
from tunelab.search.study_run import StudyRun, start_study, study_storage
from tunelab.train.shared_costs import shared_timings


@writer
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
    quick: bool = False,
) -> TuneResult:
    """Run (or resume) the experiment's search; writes the run folder's summary, final model and report.

    The same call again resumes the study where it stopped (finished trials are kept).

    Args:
        experiment: a YAML file, an `Experiment` (`tunelab.load_experiment`), or None for the defaults.
        overrides: `key.path=value` strings, as the CLI's `--set` (`"train.lr=0.01"`).
        out: the run folder (default `runs/<name>`).
        n_trials: the trial budget (default: the file's `search.n_trials`): the study's total for sampler
            strategies (a finished study of 12 trials runs 4 more with 16), the points to run in this call
            for grid, ablation and lr_sweep.
        timeout_s: stop starting trials after this many seconds.
        storage: an Optuna storage URL (default: `search.storage`, else SQLite in the run folder).
        data_dir: folder with the file-based data sets (default: `data.data_dir`, TUNELAB_DATA_DIR).
        observer: progress callbacks (`StudyObserver`); the CLI's progress bars use this.
        run_final: retrain the winner on train+val and score it on test (default: `final.enabled`).
        write_outputs: write summary, final model and report after the trials (False: the trials only).
        quick: apply the file's `quick:` budget before `overrides`.

    Returns:
        `TuneResult`: `best_params` by key path, `best_value`, `test_metrics`, `report`, counts.

    Raises:
        ConfigError: a bad file or override, located at `file:line` (or the `--set` that wrote it).
        DataError: a data set that cannot be found or read.
    """
    exp = load(experiment, overrides, quick=quick)
    if exp.search.strategy == "none":
        raise ConfigError(
            f"strategy none has nothing to search; choose one of {', '.join(STRATEGIES)} or use tunelab train",
            key="search.strategy",
        )
    check_backend(exp)  # before the data loads: a missing Ray or a dead cluster address is refused at once
    probe = IdleProbe()  # is a core idle for helpers while the study trains (search/cost_ahead.py)
    with ExitStack() as stack:
        prepared = prepare(exp, data_dir=data_dir)
        base = prepared.experiment
        _check_objective(base)
        check_combine(base)
        check_cv(base)
        observer = observer or StudyObserver()
        if base.search.strategy == "staged":
            return _tune_staged(base, out, data_dir, observer, run_final)
        layout = RunLayout(Path(out) if out is not None else default_out(base))
        space = parse_space(base)
        STRATEGIES[base.search.strategy](base, space)  # a bad or oversized space writes nothing
        if not prepared.dataset.is_text:  # nor does a space holding a model past the memory limit
            check_space_sizes(base, space, prepared.dataset)
        check_storage(storage or base.search.storage)  # nor does a bad storage URL
        hold(layout.root)  # one writer per run folder (runs/lock.py)
        # The plots drawn ahead while the final model retrains (report/render_pool.py); closed, with
        # its renderers, however this call ends.
        plots = stack.enter_context(PlotPool()) if write_outputs else None
        run = start_study(base, prepared.dataset, prepared.exp_id, layout, study_storage(storage, base, layout),
                          data_dir=data_dir, observer=observer, n_trials=n_trials, timeout_s=timeout_s)
        stack.enter_context(shared_timings(layout.cost_timings))  # each shape timed by one trial process
        ran = _run_with_local_jobs(run, data_dir, limited=timeout_s is not None or (
            n_trials is not None and run.plan.points is not None), plots=plots, probe=probe)
        result = run.result(ran)
        if write_outputs:
            with observer.phase("summary tables"):
                run.write_outputs()
                if base.search.strategy == "lr_sweep":
                    from tunelab.search.lr_sweep import format_sweep, sweep_rows

                    write_text_atomic(layout.lr_sweep_txt, format_sweep(*sweep_rows(layout.root)))
            if base.search.combine_winners and result.finished:  # seed 002's last step, checked with seeds
                with observer.phase("combined winners against the default"):
                    combine_winners(layout, run.study, base, prepared.dataset, prepared.exp_id, data_dir)
                    run.write_outputs()
            do_final = base.final.enabled if run_final is None else run_final
            # the same finished command again: the winner's final model is there, so the test split is not
            # scored again (`tunelab final` retrains it on purpose)
            kept = ran == 0 and _final_is_current(layout)
            final_ran = bool(do_final and result.finished and result.best_value is not None and not kept)
            if final_ran:
                from tunelab.app.final import run_final as final_model

                if plots is not None:  # no plot reads the final model: they draw while it retrains
                    plots.draw_ahead(layout.root)
                with observer.phase("final retrain and test"):
                    final_model(layout.root, data_dir=data_dir, study=run.study)
                with observer.phase("summary tables with the final model"):
                    run.write_outputs()
            with observer.phase("diagnosis and report"):
                if plots is not None and not final_ran:  # they draw while the diagnosis rules run
                    plots.draw_ahead(layout.root)
                write_evidence(layout.root, plots.render if plots is not None else None)
            result = with_outputs(result, layout, final_ran=final_ran or (do_final and kept))
        run.close()
        return result


def _final_is_current(layout: RunLayout) -> bool:
    """final/ holds the study's present winner (the history's best trial) with its test scores."""
    try:
        final = read_json(layout.final_of().test_metrics)
        history = read_json(layout.optimization_history)
    except (OSError, ValueError):
        return False
    return isinstance(final, dict) and isinstance(history, dict) and final.get("trial_number") is not None \
        and final.get("trial_number") == history.get("best_trial")


def _run_with_local_jobs(
    run: StudyRun, data_dir: str | None, *, limited: bool, plots: PlotPool | None = None,
    probe: IdleProbe | None = None,
) -> int:
    """The study run by this process and the `search.n_jobs - 1` trial processes it starts.
    A per-run limit (--n-trials over explicit points, --timeout) binds this process only.
    Where the trial processes leave a core idle (`probe`: and the host was idle enough while the study
    started), that core takes the cost timings (search/cost_ahead.py) and warms the plot renderers
    (`plots`) while the study trains; else the renderers warm up on this process's core once nothing
    is left for it to take while the last trials train elsewhere."""
    procs: list[Any] = []
    worker_url, stop_proxy = serve_storage(run.base, run.storage_url)  # a gRPC proxy with search.storage_proxy
    on_ray: list[int] = []  # trials trained by Ray workers

    def start_jobs(units: int) -> int:
        if run.base.search.backend == "ray":  # the cluster trains the study; what it leaves, this process does
            workers, trained = run_on_ray(run.base, units, run.layout.root, worker_url, data_dir,
                                          n_trials=run.n_trials, limited=limited)
            on_ray.append(trained)
            return workers
        jobs = 1 if limited else resolve_jobs(run.base, units)
        threads = max(1, int(run.base.resources.cpus_per_trial))
        if jobs > 1 and can_fork(run, worker_url, threads):  # before any thread starts here
            procs.extend(fork_workers(jobs - 1, run, data_dir))
        elif jobs > 1:
            pins = pin_devices(run.base, jobs)  # CUDA_VISIBLE_DEVICES per process, by search/placement.py
            procs.extend(spawn_workers(jobs - 1, run.layout.root, worker_url, data_dir, n_trials=run.n_trials,
                                       devices=pins[1:], threads=threads))
        else:
            pin_devices(run.base, jobs)
        if spare_core(jobs, run.base.train, probe.idle_cores() if probe is not None else None):
            run.cost_ahead = CostAhead()
            run.cost_ahead.open(run.base.train)
            if plots is not None:
                plots.warm_up()
        elif plots is not None and jobs > 1:  # this process's core idles once its share is done: warm them then
            run.on_idle = plots.warm_up
        return jobs

    try:
        ran = run.optimize(on_queued=start_jobs) + sum(on_ray)
    except BaseException:
        for proc in procs:  # Ctrl-C reaches them too; anything else stops them here
            if proc.poll() is None and type(sys.exc_info()[1]) is not KeyboardInterrupt:  # SIGTERM too
                proc.terminate()
        raise
    finally:
        wait_workers(procs)
        stop_proxy()
        if run.cost_ahead is not None:
            run.cost_ahead.close()
    if procs and recover_dead_trials(run.study):  # a trial process died: its trials were queued again
        ran += run.optimize()
    return ran


def _tune_staged(
    base: Experiment, out: str | Path | None, data_dir: str | None, observer: StudyObserver, run_final: bool | None
) -> TuneResult:
    """Every stage as its own study (outputs and evidence in its folder), then the last winner's final model."""
    from tunelab.search.staged import check_stages, run_staged

    check_stages(base)
    layout = RunLayout(Path(out) if out is not None else default_out(base))
    hold(layout.root)
    claim_run_folder(layout, base)

    def run_stage(exp: Experiment, stage: RunLayout) -> TuneResult:
        with observer.phase(f"stage {stage.root.name}"):  # its trials' lines, then its time
            return tune(exp, out=stage.root, data_dir=data_dir, observer=observer, run_final=False)

    outcome = run_staged(base, layout, run_stage)
    do_final = base.final.enabled if run_final is None else run_final
    if do_final and outcome.last is not None:
        from tunelab.app.final import run_final as final_model

        with observer.phase("final retrain and test"):
            final_model(outcome.last.root, data_dir=data_dir)
        if layout.final.exists():
            shutil.rmtree(layout.final)
        outcome.last.final.rename(layout.final)
    with observer.phase("diagnosis and report"):
        write_evidence(layout.root)
    stages = outcome.stages
    last = stages[-1] if stages else {}
    result = TuneResult(
        run_dir=layout.root,
        study_name=base.name,
        storage=f"{len(stages)} stage studies under {layout.stages_dir}",
        n_complete=len(stages),
        n_pruned=0,
        n_diverged=0,
        n_failed=0,
        best_value=last.get("best_value"),
        best_params=outcome.winners,
        finished=all(s["finished"] for s in stages),
        ran_trials=len(stages),
    )
    return with_outputs(result, layout, final_ran=bool(do_final and outcome.last is not None))


def _check_objective(exp: Experiment) -> None:
    metric = exp.search.objective.metric
    allowed = ["val_loss"] + [f"val_{m}" for m in exp.train.metrics or []]
    if metric not in allowed:
        raise ConfigError(
            f"objective {metric!r} is not logged for this experiment; choose one of {', '.join(allowed)}",
            key="search.objective.metric",
        )
