"""The `tunelab` command: parse, call the API, print, set the exit code (2 for a user's mistake)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from tunelab.errors import TunelabError

app = typer.Typer(
    name="tunelab",
    help="Hyperparameter tuning for PyTorch: describe an experiment once, search it, read the evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
F = TypeVar("F", bound=Callable[..., Any])

SET_HELP = "Override a key of the experiment, e.g. --set train.lr=0.01 (repeatable)."
DATA_DIR_HELP = "Folder with local copies of file-based data sets (default: $TUNELAB_DATA_DIR)."
QUICK_HELP = "Apply the file's quick: budget (a smoke run in seconds) before any --set."


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, never wrapped, then exit."""
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    raise typer.Exit(code)


def _guarded(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except TunelabError as exc:
        fail(exc.one_line(), exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: finished epochs are saved; run the same command again to resume\n")
        raise typer.Exit(130) from None


def _print_study_result(res: Any, as_json: bool) -> None:
    """`tune` and `worker` end the same way: JSON (password masked) or the one-screen summary."""
    if as_json:
        from dataclasses import asdict

        from tunelab.search.storage import mask_url

        sys.stdout.write(json.dumps({**asdict(res), "storage": mask_url(res.storage)}, default=str) + "\n")
        return
    from tunelab.summary import print_tune_summary

    print_tune_summary(console, res)


def _quiet_mode(quiet: bool) -> bool:
    return quiet or not sys.stdout.isatty()


@app.command()
def train(
    experiment: Path = typer.Argument(..., help="Experiment YAML file."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default: runs/<name>-train)."),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    quick: bool = typer.Option(False, "--quick", help=QUICK_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train one configuration; the same command again resumes from the last checkpoint."""
    from tunelab import api
    from tunelab.progress import EpochProgress

    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    progress = EpochProgress(enabled=not (_quiet_mode(quiet) or as_json), console=console)

    def run() -> Any:
        with progress:
            return api.train(experiment, overrides=set_, out=out, data_dir=data_dir, hooks=[progress], quick=quick)

    res = _guarded(run)
    if as_json:
        sys.stdout.write(
            json.dumps({"run_dir": str(res.run_dir), "trial_dir": str(res.trial_dir), **res.result.to_dict()}) + "\n"
        )
        return
    from tunelab.summary import print_train_summary

    print_train_summary(console, res)


@app.command()
def tune(
    experiment: Path = typer.Argument(..., help="Experiment YAML file."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default: runs/<name>)."),
    n_trials: int | None = typer.Option(
        None, "--n-trials", min=1, help="Trial budget (sampler strategies: the study's total)."
    ),
    timeout: float | None = typer.Option(None, "--timeout", min=0.001, help="Stop starting trials after S seconds."),
    storage: str | None = typer.Option(None, "--storage", help="Optuna storage URL (default: run folder sqlite)."),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    no_final: bool = typer.Option(False, "--no-final", help="Skip retraining the winner on train+val."),
    quick: bool = typer.Option(False, "--quick", help=QUICK_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run a search; the same command again resumes it (finished trials are kept)."""
    from tunelab import tune as run_tune
    from tunelab.progress import StudyProgress

    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    progress = StudyProgress(enabled=not (_quiet_mode(quiet) or as_json), console=console)

    def run() -> Any:
        with progress:
            return run_tune(
                experiment, overrides=set_, out=out, n_trials=n_trials, timeout_s=timeout, storage=storage,
                data_dir=data_dir, observer=progress.observer, run_final=False if no_final else None,
                quick=quick,
            )

    _print_study_result(_guarded(run), as_json)


@app.command()
def worker(
    source: str | None = typer.Argument(None, help="Run folder or experiment file (omit with --study)."),
    storage: str = typer.Option(
        ..., "--storage", envvar="TUNELAB_STORAGE",
        help="Shared Optuna storage URL, e.g. postgresql://... (or $TUNELAB_STORAGE, which keeps a password off the "
        "command line)",
    ),
    study: str | None = typer.Option(None, "--study", help="Study name: read the experiment from the study."),
    out: Path | None = typer.Option(None, "--out", help="Shared run folder for trial files."),
    n_trials: int | None = typer.Option(None, "--n-trials", min=1, help="At most this many trials here."),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    no_outputs: bool = typer.Option(False, "--no-outputs", hidden=True, help="Leave summary files to tune."),
) -> None:
    """Join a shared study from any machine and train its trials until none are left."""
    from tunelab.progress import StudyProgress
    from tunelab.search.runner import work

    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    progress = StudyProgress(enabled=not (_quiet_mode(quiet) or as_json), console=console)

    def run() -> Any:
        with progress:
            return work(source, storage=storage, study_name=study, out=out, n_trials=n_trials,
                        data_dir=data_dir, observer=progress.observer, write_outputs=not no_outputs)

    _print_study_result(_guarded(run), as_json)


@app.command()
def final(
    run_dir: Path = typer.Argument(..., help="Run folder of a finished study."),
    storage: str | None = typer.Option(None, "--storage", help="Optuna storage URL if not the run folder's."),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the test metrics as JSON."),
) -> None:
    """Retrain the best configuration on train+val and score it once on test (writes final/)."""
    from tunelab.search.final import run_final

    record = _guarded(lambda: run_final(run_dir, data_dir=data_dir, storage=storage))
    if as_json:
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        return
    console.print(f"final model of trial #{record['trial_number']} in {run_dir / 'final'}")
    for key, value in record.items():
        if key.startswith("test_"):
            console.print(f"  {key} = {value:.4f}")


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="Run folder with a final/ model."),
    input_path: Path | None = typer.Argument(
        None, help="CSV with the feature columns; text runs: a CSV with a text column or a .txt file, one text a line."
    ),
    texts: list[str] = typer.Option([], "--text", help="Text runs: predict this text (repeatable) instead of a file."),
    out: Path | None = typer.Option(None, "--out", help="Write predictions here (default: stdout)."),
) -> None:
    """Predict rows of a CSV (or typed texts) with the final model, using the training-set standardization."""
    from tunelab.search.predict import predict_file, predict_texts

    if (input_path is None) == (not texts):
        fail("predict: give either INPUT_PATH or --text, not both" if texts else "predict: give INPUT_PATH or --text")
    if texts:
        text = _guarded(lambda: predict_texts(run_dir, texts))
    else:
        text = _guarded(lambda: predict_file(run_dir, input_path))
    if out is None:
        sys.stdout.write(text)
    else:
        from tunelab.runs.records import write_text_atomic

        write_text_atomic(out, text)
        console.print(f"wrote {out}")


@app.command()
def init(
    path: Path = typer.Argument(Path("experiment.yaml"), help="Where to write the starter file."),
    template: str = typer.Option("digits", "--template", "-t", help="Starter template name."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter experiment that runs as is."""
    from tunelab.templates import TEMPLATES, write_template

    if template not in TEMPLATES:
        fail(f"--template: unknown template {template!r}; choose one of {', '.join(sorted(TEMPLATES))}")
    if path.exists() and not force:
        fail(f"{path} already exists; pass --force to overwrite it")
    write_template(template, path)
    console.print(f"wrote {path} (template {template}); run it with: tunelab train {path}")


@app.command()
def datasets(
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the built-in data sets and whether each is available here."""
    from tunelab.data import list_datasets

    rows = _guarded(lambda: list_datasets(data_dir))
    if as_json:
        sys.stdout.write(json.dumps([row.__dict__ for row in rows], default=str) + "\n")
        return
    table = Table(title="tunelab data sets")
    for column in ("name", "task", "available", "where", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.name, row.task, "yes" if row.available else "no", str(row.where), row.description)
    console.print(table)


@app.command()
def diagnose(
    run_dir: Path = typer.Argument(..., help="Run folder of a study or a `tunelab train` run."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON, most important first."),
) -> None:
    """Read the logged curves, gradients and results; say what looks wrong and what to try next."""
    from rich.markup import escape as rich_escape

    from tunelab.diagnose.decisions import collect_findings, write_decisions
    from tunelab.runs.view import RunView

    def run() -> Any:
        labelled = collect_findings(RunView(run_dir))
        return labelled, write_decisions(run_dir)

    labelled, path = _guarded(run)
    if as_json:
        rows = [{**f.to_dict(), **({"stage": label} if label else {})} for label, f in labelled]
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    if not labelled:
        console.print("no findings: nothing in the curves, gradients or study results looks wrong")
    else:
        colors = {"error": "bold red", "warning": "yellow", "info": "cyan"}
        staged = any(label for label, _ in labelled)
        table = Table(title=f"diagnosis of {run_dir}")
        for column in (["stage"] if staged else []) + ["severity", "rule", "trials", "evidence", "next experiment"]:
            wraps = column in ("evidence", "next experiment")
            table.add_column(column, overflow="fold" if wraps else "ellipsis", no_wrap=not wraps)
        for label, f in labelled:
            severity = f"[{colors[f.severity]}]{f.severity}[/]"
            cells = [f.rule, f.where, f.evidence, f.next_experiment]
            table.add_row(*([label or "study"] if staged else []), severity, *(rich_escape(c) for c in cells))
        console.print(table)
    console.print(f"wrote {rich_escape(str(path))}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="Run folder (made by tunelab tune or tunelab train)."),
    tensorboard: Path | None = typer.Option(None, "--tensorboard", help="Write TensorBoard event files under DIR."),
    mlflow: str | None = typer.Option(None, "--mlflow", help="MLflow tracking URI (sqlite:, file:, http:)."),
) -> None:
    """Copy every trial's records to TensorBoard and/or MLflow (a run per trial, metrics per epoch)."""
    from tunelab.export import export_mlflow, export_tensorboard

    if tensorboard is None and mlflow is None:
        fail("export: give --tensorboard DIR and/or --mlflow URI")
    jobs = [(export_tensorboard, tensorboard), (export_mlflow, mlflow)]
    for job, target in jobs:
        if target is not None:
            res = _guarded(lambda job=job, target=target: job(run_dir, target))
            sys.stdout.write(f"{res.target}: {len(res.written)} runs written, {len(res.skipped)} already there\n")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="Run folder (made by tunelab tune or tunelab train)."),
) -> None:
    """Rebuild plots/ and report.html from a run folder alone (no retraining); prints the page's path."""
    from tunelab.report.html import write_report

    path = _guarded(lambda: write_report(run_dir))
    sys.stdout.write(f"{path}\n")


def main() -> None:
    """The console script. A study leaves many small objects (tensors, figures, trial
    records) to tear down; every file is already written and closed, so the process ends at
    once instead of spending a second freeing them."""
    try:
        app()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
    else:
        code = 0
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
