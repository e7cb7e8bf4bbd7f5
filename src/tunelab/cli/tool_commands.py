"""The commands that read or set up a run folder: init, datasets, diagnose, export, report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from tunelab.app.starters import choices_help
from tunelab.cli.common import DATA_DIR_HELP, app, console, fail, guarded


@app.command()
def init(
    path: Path = typer.Argument(Path("experiment.yaml"), help="Where to write the starter file."),
    template: str = typer.Option("digits", "--template", "-t", help=choices_help()),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter experiment that `tune` and `train` run as is; its name is the file's."""
    from tunelab.app.starters import TEMPLATES, shell_path, write_template

    if template not in TEMPLATES:
        fail(f"--template: unknown template {template!r}; choose one of {', '.join(sorted(TEMPLATES))}")
    if path.exists() and not force:
        fail(f"{path} already exists; pass --force to overwrite it")
    write_template(template, path)
    console.print(f"wrote {path} (template {template}); run it with: tunelab tune {shell_path(path)}", markup=False)


@app.command()
def datasets(
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the built-in data sets and whether each is available here."""
    from tunelab.app.starters import list_datasets

    rows = guarded(lambda: list_datasets(data_dir))
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

    labelled, path = guarded(lambda: diagnose_run(run_dir))
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
            res = guarded(lambda job=job, target=target: job(run_dir, target))
            sys.stdout.write(f"{res.target}: {len(res.written)} runs written, {len(res.skipped)} already there\n")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="Run folder (made by tunelab tune or tunelab train)."),
) -> None:
    """Rebuild plots/ and report.html from a run folder alone (no retraining); prints the page's path."""
    from tunelab.app.evidence import report as write_report

    path = guarded(lambda: write_report(run_dir))
    sys.stdout.write(f"{path}\n")
