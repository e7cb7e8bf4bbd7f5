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
from rich.table import Table

from tunelab.app.starters import choices_help
from tunelab.cli_errors import OneLineErrors, finite
from tunelab.console import make_console
from tunelab.errors import TunelabError

app = typer.Typer(
    name="tunelab",
    help="Hyperparameter tuning for PyTorch: describe an experiment once, search it, read the evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)
console = make_console()  # never wraps or cuts lines when stdout is a pipe or a file
F = TypeVar("F", bound=Callable[..., Any])

SET_HELP = "Override a key of the experiment, e.g. --set train.lr=0.01 (repeatable)."
DATA_DIR_HELP = "Folder with local copies of file-based data sets (default: $TUNELAB_DATA_DIR)."
QUICK_HELP = "Apply the file's quick: budget (a smoke run in seconds) before any --set."


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("tunelab")
        except PackageNotFoundError:  # running from a source tree that was never installed
            text = "unknown (not installed)"
        sys.stdout.write(f"tunelab {text}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Hyperparameter tuning for PyTorch: describe an experiment once, search it, read the evidence."""


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, never wrapped, password masked, then exit."""
    from tunelab.masking import mask_secrets

    sys.stderr.write(f"error: {mask_secrets(' '.join(message.split()))}\n")
    raise typer.Exit(code)


def _guarded(func: Callable[[], Any], source: Path | None = None, overrides: list[str] | None = None) -> Any:
    """Run a command's work; any error it can explain ends as one line (see docs/reliability.md)."""
    from tunelab.app.errors import locate
    from tunelab.errors import ConfigError, fault_line

    try:
        return func()
    except ConfigError as exc:
        fail(locate(exc, source, overrides or ()).one_line(), exc.exit_code)
    except TunelabError as exc:
        fail(exc.one_line(), exc.exit_code)
    except (OSError, MemoryError, UnicodeDecodeError) as exc:
        if os.environ.get("TUNELAB_TRACEBACK"):
            raise
        fail(fault_line(exc), 2)
    except KeyboardInterrupt as exc:
        from tunelab.lifetime import Terminated

        what, code = ("terminated (SIGTERM)", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        if not os.environ.get("TUNELAB_TRIAL_PROCESS"):  # a trial process of tune: tune says it once
            sys.stderr.write(f"{what}: finished epochs are saved; run the same command again to resume\n")
        raise typer.Exit(code) from None


def _print_study_result(res: Any, as_json: bool) -> None:
    """`tune` and `worker` end the same way: JSON (password masked) or the one-screen summary."""
    if as_json:
        from tunelab.app.summary import study_result_json

        sys.stdout.write(study_result_json(res))
        return
    from tunelab.app.summary import print_tune_summary

    print_tune_summary(console, res)


@app.command()
def train(
    experiment: Path = typer.Argument(..., help="Experiment YAML file."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default: runs/<name>-train)."),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    quick: bool = typer.Option(False, "--quick", help=QUICK_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    continue_: bool = typer.Option(False, "--continue", help="Train the finished run on to a larger train.epochs."),
) -> None:
    """Train one configuration; the same command again resumes from the last checkpoint."""
    from tunelab.app.progress import EpochProgress
    from tunelab.app.train import train as train_run

    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    progress = EpochProgress(enabled=not (quiet or as_json or not sys.stdout.isatty()), console=console)

    def run() -> Any:
        with progress:
            return train_run(experiment, overrides=set_, out=out, data_dir=data_dir, hooks=[progress], quick=quick,
                             continue_run=continue_)

    res = _guarded(run, experiment, set_)
    if as_json:
        sys.stdout.write(
            json.dumps({"run_dir": str(res.run_dir), "trial_dir": str(res.trial_dir), **res.result.to_dict()}) + "\n"
        )
        return
    from tunelab.app.summary import print_train_summary

    print_train_summary(console, res)


@app.command()
def tune(
    experiment: Path = typer.Argument(..., help="Experiment YAML file."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default: runs/<name>)."),
    n_trials: int | None = typer.Option(
        None, "--n-trials", min=1, help="Trial budget (sampler strategies: the study's total)."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.001, callback=finite, help="Stop starting trials after S seconds."
    ),
    storage: str | None = typer.Option(None, "--storage", help="Optuna storage URL (default: run folder sqlite)."),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    no_final: bool = typer.Option(False, "--no-final", help="Skip retraining the winner on train+val."),
    quick: bool = typer.Option(False, "--quick", help=QUICK_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ray: str | None = typer.Option(
        None, "--ray", help="Train on a Ray cluster: auto (ray start on this machine), ray://HOST:10001 or local."
    ),
) -> None:
    """Run a search; the same command again resumes it (finished trials are kept)."""
    from tunelab.app.progress import StudyProgress
    from tunelab.app.ray_jobs import ray_overrides
    from tunelab.app.tune import tune as run_tune

    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    progress = StudyProgress(enabled=not (quiet or as_json), console=console, live=sys.stdout.isatty())

    def run() -> Any:
        with progress:
            return run_tune(
                experiment, overrides=[*set_, *ray_overrides(ray)], out=out, n_trials=n_trials, timeout_s=timeout,
                storage=storage, data_dir=data_dir, observer=progress.observer, run_final=False if no_final else None,
                quick=quick,
            )

    _print_study_result(_guarded(run, experiment, set_), as_json)


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
    from tunelab.app.progress import StudyProgress
    from tunelab.app.work import work

    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    progress = StudyProgress(enabled=not (quiet or as_json), console=console, live=sys.stdout.isatty())

    def run() -> Any:
        with progress:
            return work(source, storage=storage, study_name=study, out=out, n_trials=n_trials,
                        data_dir=data_dir, observer=progress.observer, write_outputs=not no_outputs)

    _print_study_result(_guarded(run), as_json)


@app.command()
def proxy(
    storage: str = typer.Option(
        ..., "--storage", envvar="TUNELAB_STORAGE", help="The study database (postgresql://...), or $TUNELAB_STORAGE."
    ),
    port: int = typer.Option(13000, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    host: str = typer.Option("0.0.0.0", "--host", help="Address to listen on; the proxy has no authentication."),
) -> None:
    """Serve a study database to many workers through Optuna's gRPC storage proxy (grpc://HOST:PORT)."""
    from tunelab.app.proxy import serve_forever

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    _guarded(lambda: serve_forever(storage, host, port))


@app.command()
def final(
    run_dir: Path = typer.Argument(..., help="Run folder of a finished study."),
    storage: str | None = typer.Option(None, "--storage", help="Optuna storage URL if not the run folder's."),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the test metrics as JSON."),
    trial: int | None = typer.Option(None, "--trial", help="Retrain and score this completed trial (final/trial-N/)."),
) -> None:
    """Retrain the best configuration on train+val and score it once on test (writes final/)."""
    from tunelab.app.final import run_final

    record = _guarded(lambda: run_final(run_dir, data_dir=data_dir, storage=storage, trial=trial))
    if as_json:
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        return
    where = run_dir / "final" / (f"trial-{trial}" if trial is not None else "")
    console.print(f"final model of trial #{record['trial_number']} in {where}; test split scored "
                  f"{record.get('times_test_scored', 0)} time(s) in this run folder", markup=False)
    for key, value in record.items():
        if key.startswith("test_"):
            console.print(f"  {key} = {value:.4f}")


@app.command("continue", help="Train a study's best trials further, each into a new folder linked to it.")
def continue_study(
    run_dir: Path = typer.Argument(..., help="Run folder of a study."),
    best: int = typer.Option(1, "--best", min=1, help="Continue this many of the best trials."),
    epochs: int = typer.Option(..., "--epochs", min=1, help="Epochs to train each of them further."),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    from tunelab.app.continue_study import continue_best
    console.print(_guarded(lambda: continue_best(run_dir, best=best, epochs=epochs, data_dir=data_dir)), markup=False)


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
    from tunelab.app.predict import predict_file, predict_texts

    if (input_path is None) == (not texts):
        fail("predict: give either INPUT_PATH or --text, not both" if texts else "predict: give INPUT_PATH or --text")
    if texts:
        text = _guarded(lambda: predict_texts(run_dir, texts))
    else:
        text = _guarded(lambda: predict_file(run_dir, input_path))
    if out is None:
        sys.stdout.write(text)
    else:
        from tunelab.app.predict import write_predictions

        write_predictions(out, text)
        console.print(f"wrote {out}", markup=False)


@app.command()
def init(
    path: Path = typer.Argument(Path("experiment.yaml"), help="Where to write the starter file."),
    template: str = typer.Option("digits", "--template", "-t", help=choices_help()),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter experiment that `tune` and `train` run as is; its name is the file's."""
    from tunelab.app.starters import TEMPLATES, write_template

    if template not in TEMPLATES:
        fail(f"--template: unknown template {template!r}; choose one of {', '.join(sorted(TEMPLATES))}")
    if path.exists() and not force:
        fail(f"{path} already exists; pass --force to overwrite it")
    write_template(template, path)
    console.print(f"wrote {path} (template {template}); run it with: tunelab tune {path}", markup=False)


@app.command()
def datasets(
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the built-in data sets and whether each is available here."""
    from tunelab.app.starters import list_datasets

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

    from tunelab.app.evidence import diagnose as diagnose_run

    labelled, path = _guarded(lambda: diagnose_run(run_dir))
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
    from tunelab.app.export import export_mlflow, export_tensorboard

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
    from tunelab.app.evidence import report as write_report

    path = _guarded(lambda: write_report(run_dir))
    sys.stdout.write(f"{path}\n")


def main() -> None:
    """The console script. A study leaves many small objects (tensors, figures, trial
    records) to tear down; every file is already written and closed, so the process ends at
    once instead of spending a second freeing them."""
    from tunelab.lifetime import handle_sigterm

    handle_sigterm()
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
