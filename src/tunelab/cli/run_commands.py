"""The commands that train: train, tune, worker, proxy, final, continue, predict."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer

from tunelab.cli.common import DATA_DIR_HELP, QUICK_HELP, SET_HELP, app, console, fail, guarded, print_study_result
from tunelab.cli_errors import finite


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

    res = guarded(run, experiment, set_)
    if as_json:
        sys.stdout.write(
            json.dumps({"run_dir": str(res.run_dir), "trial_dir": str(res.trial_dir), **res.result.to_dict(),
                        "cost": res.cost}) + "\n"
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

    print_study_result(guarded(run, experiment, set_), as_json)


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

    print_study_result(guarded(run), as_json)


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
    guarded(lambda: serve_forever(storage, host, port))


@app.command()
def final(
    run_dir: Path = typer.Argument(..., help="Run folder of a finished study."),
    storage: str | None = typer.Option(None, "--storage", help="Optuna storage URL if not the run folder's."),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the test metrics as JSON."),
    trial: int | None = typer.Option(None, "--trial", help="Retrain and score this completed trial (final/trial-N/)."),
) -> None:
    """Retrain the best configuration on train+val and score it once on test (writes final/)."""
    from tunelab.app.final import final_dir, run_final

    record = guarded(lambda: run_final(run_dir, data_dir=data_dir, storage=storage, trial=trial))
    if as_json:
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        return
    where = final_dir(run_dir, trial)
    which = "the combined winners" if record["trial_number"] is None else f"trial #{record['trial_number']}"
    console.print(f"final model of {which} in {where}; test split scored "
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
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per continued trial, a line each."),
) -> None:
    from tunelab.app.continue_study import continue_best

    done = guarded(lambda: continue_best(run_dir, best=best, epochs=epochs, data_dir=data_dir))
    if as_json:
        sys.stdout.write("".join(json.dumps(c.to_dict(), default=str) + "\n" for c in done))
        return
    console.print(done, markup=False)


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="Run folder with a final/ model, or one tunelab train made."),
    input_path: Path | None = typer.Argument(
        None, help="CSV with the feature columns; text runs: a CSV with a text column or a .txt file, one text a line."
    ),
    texts: list[str] = typer.Option([], "--text", help="Text runs: predict this text (repeatable) instead of a file."),
    out: Path | None = typer.Option(None, "--out", help="Write predictions here (default: stdout)."),
) -> None:
    """Predict rows of a CSV (or typed texts) with the final model, or a train run's best epoch."""
    from tunelab.app.predict import predict_file, predict_texts

    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    if (input_path is None) == (not texts):
        fail("predict: give either INPUT_PATH or --text, not both" if texts else "predict: give INPUT_PATH or --text")
    if texts:
        text = guarded(lambda: predict_texts(run_dir, texts))
    else:
        text = guarded(lambda: predict_file(run_dir, input_path))
    if out is None:
        sys.stdout.write(text)
    else:
        from tunelab.app.predict import write_predictions

        write_predictions(out, text)
        console.print(f"wrote {out}", markup=False)
