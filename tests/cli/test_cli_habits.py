"""What a practitioner expects of a CLI: --version, a starter that tune accepts, --quick that never
silently runs the full budget, whole lines in pipes, and readable trial folder names."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from tunelab.config.load import NO_QUICK_BLOCK
from tunelab.runs.naming import trial_name
from tunelab.templates import TEMPLATES

SRC = Path(__file__).resolve().parents[2] / "src"


def test_version_prints_the_installed_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"tunelab {version('tunelab')}\n"


def test_init_help_lists_every_template() -> None:
    from typer.testing import CliRunner

    from tunelab.cli import app

    result = CliRunner().invoke(app, ["init", "--help"], terminal_width=400)
    assert result.exit_code == 0
    assert all(f"{name} (" in result.stdout for name in TEMPLATES)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_init_starter_is_named_after_its_file_and_tune_runs_it_as_is(template, tmp_path, cli) -> None:
    path = tmp_path / f"probe_{template}.yaml"

    result = cli("init", path, "--template", template)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"wrote {path} (template {template}); run it with: tunelab tune {path}\n"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert raw["name"] == f"probe_{template}"
    assert raw["search"]["strategy"] == "grid" and raw["search"]["space"] and raw["quick"]
    out = tmp_path / "run"
    tuned = cli("tune", path, "--quick", "--out", out, "--quiet")
    assert tuned.exit_code == 0, tuned.stderr
    n_configs = 1
    for values in raw["search"]["space"].values():
        n_configs *= len(values)
    assert len(list((out / "trials").iterdir())) == n_configs
    # the starter's own first command ends without an error-level finding (val/test noise of a smoke run)
    findings = json.loads((out / "evidence.json").read_text(encoding="utf-8"))["findings"]
    assert [f["rule"] for f in findings if f["severity"] == "error"] == []


def test_init_quotes_a_file_name_yaml_would_misread(tmp_path, cli) -> None:
    path = tmp_path / "yes: no.yaml"
    result = cli("init", path)
    assert result.exit_code == 0
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["name"] == "yes: no"
    assert result.stdout.endswith(f"run it with: tunelab tune '{path}'\n")  # pastes into a shell as is


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_init_starter_comments_name_the_file_in_their_commands(template, tmp_path, cli, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("init", "cifar_probe.yaml", "--template", template).exit_code == 0

    text = (tmp_path / "cifar_probe.yaml").read_text(encoding="utf-8")
    assert "FILE" not in text
    assert "# Run:  tunelab tune cifar_probe.yaml " in text
    assert "tunelab tune cifar_probe.yaml --quick" in text


@pytest.mark.parametrize("command", ["tune", "train"])
def test_quick_on_a_file_without_a_quick_block_is_one_line_exit_2(command, tmp_path, cli) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("name: plain\ndata:\n  name: toy_2d\ntrain:\n  epochs: 1\n", encoding="utf-8")

    result = cli(command, path, "--quick", "--out", tmp_path / "run", "--quiet")

    assert result.exit_code == 2
    assert result.stderr == f"error: {path} --quick: {NO_QUICK_BLOCK}\n"
    assert not (tmp_path / "run").exists()


def test_output_to_a_pipe_keeps_every_line_whole(tmp_path: Path) -> None:
    folder = tmp_path / ("a-data-folder-with-a-name-long-enough-to-pass-any-terminal-width-" * 2)
    folder.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "tunelab", "datasets", "--data-dir", str(folder)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    usps = [line for line in proc.stdout.splitlines() if " usps " in line]
    assert len(usps) == 1, proc.stdout
    assert f"not found (searched: {folder})" in usps[0] and "USPS 16x16 handwritten digits, 10 classes" in usps[0]
    assert "…" not in proc.stdout


@pytest.mark.parametrize(
    ("params", "name"),
    [
        (
            {
                "train.lr": 0.0013312,
                "model.dropout": 0.47523,
                "model.hidden_dims": [32],
                "train.weight_decay": 4.2123e-6,
            },
            "lr0.00133_do0.475_hd32_wd4.21e-06",
        ),
        ({"train.lr": 0.01, "model.dropout": 0.0, "train.batch_size": 64}, "lr0.01_do0_bs64"),
        ({"model.hidden_dims": [128, 64], "model.activation": "gelu"}, "hd128x64_actgelu"),
        ({}, "base"),
    ],
)
def test_trial_names_round_floats_to_three_significant_digits(params, name) -> None:
    assert trial_name(params) == name


@pytest.mark.parametrize("command", ["report", "diagnose", "predict"])
def test_an_experiment_file_given_for_a_run_folder_names_the_folder(command, tmp_path, cli) -> None:
    exp = tmp_path / "my_exp.yaml"
    exp.write_text("name: renamed\ndata: {name: toy_2d}\n", encoding="utf-8")
    args = [command, exp] + ([tmp_path / "rows.csv"] if command == "predict" else [])
    result = cli(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"error: {exp} is an experiment file, not a run folder; give the folder its run "
                             f"wrote ({Path('runs') / 'renamed'} by default, printed as 'run folder')\n")
