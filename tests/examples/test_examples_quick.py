"""Every experiment in examples/ runs end to end with its `quick:` budget, through the CLI.

`tunelab tune EXAMPLE --quick` (or `tunelab train` for a file without a search) must exit 0 and
leave a run folder with its summary and report; a search leaves one summary row per trial.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import Result

from fixtures.real_data import real_data_dir
from tunelab.config.load import load_experiment
from tunelab.config.space import parse_space
from tunelab.data import BUILTINS
from tunelab.search.strategies import STRATEGIES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
MISSING_PACKAGE = re.compile(r"pip install|No module named|needs the `?[\w-]+`? package", re.IGNORECASE)


def _summary_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "summary.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _trial_folders(folder: Path) -> list[Path]:
    return sorted(p for p in (folder / "trials").iterdir() if p.is_dir())


def _needs_real_data(example: Path) -> bool:
    name = (yaml.safe_load(example.read_text()).get("data") or {}).get("name", "digits")
    return name in BUILTINS and BUILTINS[name].file_based


def _skip_if_optional_dependency_missing(example: Path, result: Result) -> None:
    """Outside CI, an example whose optional package is not installed is skipped, saying which."""
    message = (result.stderr or "").strip()
    if result.exit_code != 0 and MISSING_PACKAGE.search(message) and not os.environ.get("CI"):
        pytest.skip(f"{example.name} needs an optional package that is not installed: {message}")


def _image_folder_overrides(example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An image_folder example gets its folder rendered first (scripts/usps_to_image_folder.py, small copy)."""
    data = yaml.safe_load(example.read_text()).get("data") or {}
    if data.get("name") != "image_folder":
        return []
    data_dir = real_data_dir()  # skips without a data folder, fails when CI=true
    spec = importlib.util.spec_from_file_location("usps_to_image_folder", ROOT / "scripts" / "usps_to_image_folder.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    if not (data_dir / "usps" / "zip.train.gz").is_file() and not os.environ.get("CI"):
        pytest.skip(f"{example.name} renders USPS, which is not under {data_dir}")
    folder = tmp_path / "images"
    monkeypatch.setenv("TUNELAB_CACHE_DIR", str(tmp_path / "cache"))  # the decoded copy stays in the test
    script.render(script.find_usps(str(data_dir)), folder, per_class=40)
    return ["--set", f"data.path={folder}"]


def test_every_example_has_a_quick_block() -> None:
    missing = [p.name for p in EXAMPLES if not isinstance(yaml.safe_load(p.read_text()).get("quick"), dict)]
    assert EXAMPLES and not missing, f"examples without a quick: block: {missing}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_with_its_quick_budget(
    example: Path, tmp_path: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    if _needs_real_data(example):  # skips without a data folder, fails when CI=true
        monkeypatch.setenv("TUNELAB_DATA_DIR", str(real_data_dir()))
    search = yaml.safe_load(example.read_text()).get("search") or {}
    command = "train" if search.get("strategy", "none") == "none" else "tune"
    out = tmp_path / example.stem
    extra = _image_folder_overrides(example, tmp_path, monkeypatch)
    result = cli(command, example, "--quick", "--out", out, "--quiet", *extra)
    _skip_if_optional_dependency_missing(example, result)
    assert result.exit_code == 0, f"tunelab {command} {example.name} --quick failed: {result.stderr}"
    exp = load_experiment(example, extra[1:], quick=True)
    assert (out / "experiment.yaml").is_file()
    assert (out / "report.html").is_file()

    if command == "train":
        (trial,) = _trial_folders(out)
        assert json.loads((trial / "result.json").read_text())["state"] == "complete"
        return
    if exp.search.strategy == "staged":
        stages = json.loads((out / "stages.json").read_text())["stages"]
        assert stages and all(stage["finished"] for stage in stages)
        for stage in stages:
            folder = out / stage["run_dir"]
            assert len(_summary_rows(folder)) == len(_trial_folders(folder)) >= 1
        return
    expected = STRATEGIES[exp.search.strategy](exp, parse_space(exp)).n_trials
    rows = _summary_rows(out)
    assert len(rows) == len(_trial_folders(out)) == expected
    assert all(row["state"] in ("complete", "pruned", "diverged") for row in rows), rows
    assert all(float(row["epoch_time_s"]) > 0 for row in rows if row["state"] == "complete")
    metric = exp.search.objective.metric
    if exp.train.eval_train and metric.startswith("val_"):  # the seed tables' train column beside val
        train_key = f"train_eval_{metric[4:]}"
        assert all(row[train_key] for row in rows if row["state"] == "complete"), train_key
    if exp.final.enabled:
        assert (out / "final" / "test_metrics.json").is_file()
