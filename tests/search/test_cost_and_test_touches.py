"""Issue 16 items 1-2 end to end: cost columns per row, every validation metric in the summary,
`final --trial N` in its own folder, and the count of test scorings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import tunelab
from fixtures.no_report import without_report
from tunelab.config.load import load_experiment


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cost") / "run"
    raw = {
        "name": "cost_diabetes",
        "data": {"name": "diabetes"},
        "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 2, "batch_size": 32, "device": "cpu"},
        "search": {"strategy": "grid", "vectorize": "auto", "n_jobs": 1,
                   "space": {"train.lr": [0.01, 0.001], "model.hidden_dims": [[4], [256, 256]]}},
    }
    with without_report():  # the one test that reads report.html writes it itself (`tunelab report`)
        res = tunelab.tune(load_experiment(None, raw=raw), out=out, run_final=False)
    assert res.finished and res.n_complete == 4
    return out


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "summary.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_summary_has_every_validation_metric(regression_run: Path) -> None:
    header = (regression_run / "summary.md").read_text(encoding="utf-8").split("\n| #")[1].splitlines()[0]
    assert "val_r2" in header and "val_mae" in header
    for row in _rows(regression_run):
        assert float(row["val_r2"]) < 1.0 and float(row["val_mae"]) > 0


def test_grouped_rows_carry_their_own_estimated_cost(regression_run: Path) -> None:
    rows = _rows(regression_run)
    by_params = {int(r["n_params"]): r for r in rows}
    assert set(by_params) == {10 * 4 + 4 + 4 + 1, 10 * 256 + 256 + 256 * 256 + 256 + 256 + 1}
    small, wide = by_params[min(by_params)], by_params[max(by_params)]
    assert {r["train_time_kind"] for r in rows} == {"estimated"}  # every trial trained in a group of two
    assert all(float(r["train_time_alone_s"]) > 0 for r in rows)  # no timing comparison: the host is shared
    assert float(wide["config_mem_mb"]) > 10 * float(small["config_mem_mb"])
    for row in rows:
        assert float(row["latency_ms_b1"]) > 0 and float(row["latency_ms_b256"]) > 0
        cost = json.loads(next((regression_run / "trials").glob(f"{row['number']}-*/cost.json")).read_text())
        assert cost["n_params"] == int(row["n_params"])
    assert "| ~" in (regression_run / "summary.md").read_text(encoding="utf-8")  # estimates are marked


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_a_trial_that_trained_alone_has_its_measured_time(tmp_path: Path) -> None:
    raw = {
        "name": "cost_alone",
        "data": {"name": "diabetes"},
        "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 1, "device": "cpu"},
        "search": {"strategy": "grid", "space": {"train.lr": [0.01]}},
    }
    tunelab.tune(load_experiment(None, raw=raw), out=tmp_path / "run", run_final=False)
    (row,) = _rows(tmp_path / "run")
    assert row["train_time_kind"] == "measured"
    assert float(row["train_time_alone_s"]) == pytest.approx(float(row["train_time_s"]), abs=1e-3)


def test_final_of_a_chosen_trial_has_its_folder_and_counts_test_touches(regression_run: Path, cli) -> None:
    assert cli("final", regression_run).exit_code == 0
    winner = (regression_run / "final" / "test_metrics.json").read_text(encoding="utf-8")
    assert json.loads(winner)["times_test_scored"] == 1
    chosen = next(int(r["number"]) for r in _rows(regression_run)[1:])
    result = cli("final", regression_run, "--trial", str(chosen))
    assert result.exit_code == 0, result.stderr
    record = json.loads((regression_run / "final" / f"trial-{chosen}" / "test_metrics.json").read_text())
    assert record["trial_number"] == chosen and record["times_test_scored"] == 2
    assert (regression_run / "final" / f"trial-{chosen}" / "model.pt").is_file()
    assert (regression_run / "final" / "test_metrics.json").read_text(encoding="utf-8") == winner  # the winner's stays
    assert json.loads((regression_run / "test_touches.json").read_text())["count"] == 2
    md = (regression_run / "summary.md").read_text(encoding="utf-8")
    assert "Test split scored 2 time(s)" in md
    row = next(r for r in _rows(regression_run) if int(r["number"]) == chosen)
    assert float(row["test_r2"]) == pytest.approx(record["test_r2"])
    assert cli("report", regression_run).exit_code == 0
    assert "times test was scored" in (regression_run / "report.html").read_text(encoding="utf-8")


def test_final_of_an_unknown_trial_is_refused_in_one_line(regression_run: Path, cli) -> None:
    result = cli("final", regression_run, "--trial", "99")
    assert result.exit_code == 2
    assert "--trial 99: no such trial; completed trials: 0, 1, 2, 3" in result.stderr
    assert not (regression_run / "final" / "trial-99").exists()
