"""Damaged run folders give one clear line, never a traceback.

The commands run in this process (the `cli` fixture, no torch import per call): what is checked is
the command's exit code and stderr, which the app itself writes; a real process adds nothing here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunelab.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed004_lr_sweep.yaml"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """One finished sweep the tests only copy: run in this process, with the example's quick budget."""
    out = tmp_path_factory.mktemp("sweep") / "run"
    result = CliRunner().invoke(app, ["tune", str(EXAMPLE), "--quick", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_a_corrupted_study_db_copy_is_one_line_and_exit_2(sweep, tmp_path, cli):
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    (copy / "study.db").write_bytes((sweep / "study.db").read_bytes()[:5000])
    for args in (("tune", str(EXAMPLE), "--quick", "--out", str(copy), "--quiet"), ("final", str(copy))):
        res = cli(*args)
        assert res.exit_code == 2, res.output
        assert isinstance(res.exception, SystemExit)  # not some other exception caught by the runner
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "malformed" in lines[0]
        assert "Traceback" not in res.stderr


def test_a_trial_without_params_json_still_reports_and_diagnoses(sweep, tmp_path, cli):
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    for params in copy.glob("trials/*/params.json"):
        params.unlink()
    res = cli("report", str(copy))
    assert res.exit_code == 0, res.stderr
    assert (copy / "report.html").stat().st_size > 1000
    res = cli("diagnose", str(copy), "--json")
    assert res.exit_code == 0 and res.stdout.startswith("[")


def test_a_folder_that_is_not_a_run_folder_is_one_line(tmp_path, cli):
    res = cli("report", str(tmp_path))
    assert res.exit_code == 2
    assert res.stderr.strip() == f"error: {tmp_path} is not a tunelab run folder (no experiment.yaml)"
