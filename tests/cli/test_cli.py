"""The `tunelab` command end to end: init, datasets, train (fresh, rerun, clash) and its exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import torch
import yaml

TEMPLATE_NAMES = ("digits", "regression", "toy")
DATASET_NAMES = (
    "digits",
    "diabetes",
    "toy_2d",
    "california_housing",
    "usps",
    "house_prices",
    "query_wellformedness",
)
FILE_BASED = ("california_housing", "usps", "house_prices", "query_wellformedness")
TOY = "name: toy\ndata:\n  name: toy_2d\nmodel:\n  hidden_dims: [8]\ntrain:\n  epochs: 2\n  batch_size: full\n"
INIT_BROKEN = (
    "src bug: src/tunelab/templates.py is shadowed by the package src/tunelab/templates/, "
    "so `tunelab init` raises ImportError"
)


@pytest.fixture
def toy_file(tmp_path: Path) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text(TOY, encoding="utf-8")
    return path


def train_json(cli, *args) -> dict:
    result = cli("train", *args, "--quiet", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return json.loads(result.stdout)


def metric_lines(trial_dir: Path) -> int:
    return len((trial_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines())


# --------------------------------------------------------------------------- init


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_init_writes_the_shipped_template_under_the_files_name(template, tmp_path, cli):
    """Byte for byte the shipped file but its name line and the FILE placeholder of its run commands,
    so the next test's training covers it too."""
    path = tmp_path / f"{template}.yaml"

    result = cli("init", path, "--template", template)

    assert result.exit_code == 0, result.output
    shipped = (resources.files("tunelab.templates") / f"{template}.yaml").read_text(encoding="utf-8")
    written = path.read_text(encoding="utf-8")
    assert written.splitlines()[1:] != [] and yaml.safe_load(written)["name"] == template
    assert [line for line in written.splitlines() if not line.startswith("name:")] == [
        line.replace("FILE", str(path)) for line in shipped.splitlines() if not line.startswith("name:")
    ]


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_shipped_template_trains_as_is(template, tmp_path, cli):
    shipped = resources.files("tunelab.templates") / f"{template}.yaml"
    path = tmp_path / f"{template}.yaml"
    path.write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")

    out = train_json(cli, path, "--out", tmp_path / "run", "--set", "train.epochs=2")

    assert out["state"] == "complete"
    assert out["epochs_run"] == 2


def test_init_refuses_to_overwrite_without_force(tmp_path, cli):
    path = tmp_path / "experiment.yaml"
    path.write_text("name: mine\n", encoding="utf-8")

    result = cli("init", path)

    assert result.exit_code == 2
    assert result.stderr == f"error: {path} already exists; pass --force to overwrite it\n"
    assert path.read_text(encoding="utf-8") == "name: mine\n"


def test_init_with_force_overwrites(tmp_path, cli):
    path = tmp_path / "experiment.yaml"
    path.write_text("name: mine\n", encoding="utf-8")

    result = cli("init", path, "--template", "toy", "--force")

    assert result.exit_code == 0, result.output
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["name"] == "experiment"  # from the file name


def test_init_with_unknown_template_exits_2_and_writes_nothing(tmp_path, cli):
    path = tmp_path / "experiment.yaml"

    result = cli("init", path, "--template", "resnet")

    assert result.exit_code == 2
    assert result.stderr == "error: --template: unknown template 'resnet'; choose one of digits, regression, toy\n"
    assert not path.exists()


# --------------------------------------------------------------------------- datasets


def test_datasets_json_lists_every_data_set_with_availability(cli, mini_data_env):
    result = cli("datasets", "--json")

    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(DATASET_NAMES) <= set(rows)
    for name in DATASET_NAMES:
        assert rows[name]["task"] in ("regression", "classification")
        assert rows[name]["available"] is True, rows[name]
    assert rows["digits"]["task"] == "classification"
    assert rows["diabetes"]["task"] == "regression"


def test_datasets_json_marks_file_based_sets_missing_in_an_empty_data_dir(tmp_path, cli):
    result = cli("datasets", "--json", "--data-dir", tmp_path)

    assert result.exit_code == 0, result.output
    available = {row["name"]: row["available"] for row in json.loads(result.stdout)}
    assert {name: available[name] for name in FILE_BASED} == dict.fromkeys(FILE_BASED, False)
    assert available["digits"] is available["diabetes"] is available["toy_2d"] is True


def test_python_dash_m_tunelab_help_lists_the_commands():
    proc = subprocess.run([sys.executable, "-m", "tunelab", "--help"], capture_output=True, text=True, timeout=120)

    assert proc.returncode == 0, proc.stderr
    for command in ("train", "init", "datasets"):
        assert command in proc.stdout


# --------------------------------------------------------------------------- train


def test_train_json_reports_a_complete_run_and_writes_the_run_folder(toy_file, tmp_path, cli):
    out_dir = tmp_path / "run"

    out = train_json(cli, toy_file, "--out", out_dir)

    assert out["state"] == "complete"
    assert out["epochs_run"] == 2
    assert Path(out["run_dir"]) == out_dir
    trial = Path(out["trial_dir"])
    assert trial.parent == out_dir / "trials"
    assert (out_dir / "experiment.yaml").is_file()
    assert metric_lines(trial) == 2
    assert [json.loads(line)["epoch"] for line in (trial / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    cost = out["cost"]  # the same cost columns a study's row has, written beside the trial
    assert cost == json.loads((trial / "cost.json").read_text())
    params = sum(v.numel() for k, v in torch.load(trial / "checkpoints" / "best.pt", weights_only=True)[
        "model"].items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert cost["n_params"] == params
    assert cost["train_time_kind"] == "measured" and cost["train_time_alone_s"] == pytest.approx(
        out["train_time_s"], abs=1e-3)
    assert cost["config_mem_mb"] > 0 and cost["latency_ms_b1"] > 0


def test_train_summary_prints_the_cost_line(toy_file, tmp_path, cli):
    result = cli("train", toy_file, "--out", tmp_path / "run", "--quiet")

    assert result.exit_code == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("cost"))
    cost = json.loads(next((tmp_path / "run" / "trials").iterdir()).joinpath("cost.json").read_text())
    assert f"{cost['n_params']:,} parameters" in line and "time alone" in line and "ms/sample at batch 1" in line


def test_rerunning_a_finished_train_command_does_not_retrain(toy_file, tmp_path, cli):
    args = (toy_file, "--out", tmp_path / "run", "--set", "train.lr=0.5")
    first = train_json(cli, *args)
    trial = Path(first["trial_dir"])
    lines_before = metric_lines(trial)
    yaml_before = (tmp_path / "run" / "experiment.yaml").read_text(encoding="utf-8")

    second = train_json(cli, *args)

    assert second["state"] == "complete"
    assert second["trial_dir"] == first["trial_dir"]
    assert second["epochs_run"] == first["epochs_run"] == 2
    assert second["best_epoch"] == first["best_epoch"]
    assert second["best_value"] == first["best_value"]
    assert metric_lines(trial) == lines_before == 2
    assert (tmp_path / "run" / "experiment.yaml").read_text(encoding="utf-8") == yaml_before
    assert sorted(p.name for p in (tmp_path / "run" / "trials").iterdir()) == [trial.name]


def test_train_into_a_folder_holding_another_experiment_exits_2(toy_file, tmp_path, cli):
    out_dir = tmp_path / "run"
    train_json(cli, toy_file, "--out", out_dir, "--set", "train.lr=0.5")
    yaml_before = (out_dir / "experiment.yaml").read_text(encoding="utf-8")

    result = cli("train", toy_file, "--out", out_dir, "--set", "train.lr=0.01", "--quiet")

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {out_dir} holds a different experiment: train.lr is 0.5 there, 0.01 here; "
        "use another --out or remove that folder\n"
    )
    assert (out_dir / "experiment.yaml").read_text(encoding="utf-8") == yaml_before


def test_train_with_a_word_for_epochs_prints_the_exact_override_error(toy_file, tmp_path, cli):
    result = cli("train", toy_file, "--out", tmp_path / "run", "--set", "train.epochs=ten", "--quiet")

    assert result.exit_code == 2
    assert result.stderr == "error: --set train.epochs=ten: expected an integer, got 'ten'\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_train_on_cuda_without_a_gpu_exits_2_and_writes_nothing(toy_file, tmp_path, cli):
    result = cli("train", toy_file, "--out", tmp_path / "run", "--set", "train.device=cuda", "--quiet")

    assert result.exit_code == 2
    assert result.stderr == "error: --set train.device=cuda: cuda requested but no GPU is visible; use auto or cpu\n"
    assert not (tmp_path / "run").exists()
