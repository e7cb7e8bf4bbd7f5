"""`tune` draws the report's plots while the final model retrains, and the report reuses them."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path
from typing import Any

import pytest

import tunelab
from tunelab.config.load import load_experiment
from tunelab.report.plots import make_plots
from tunelab.report.render_pool import PlotPool


def test_plots_drawn_during_the_final_retrain_are_the_report_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ahead: list[Path] = []
    drawn_at_report: list[str] = []
    draw_ahead, submit = PlotPool.draw_ahead, PlotPool._submit

    def spy_ahead(self: PlotPool, run_dir: Path) -> None:
        ahead.append(run_dir)
        draw_ahead(self, run_dir)

    def spy_submit(self: PlotPool, run_dir: Path, name: str) -> Any:
        drawn_at_report.append(name)
        return submit(self, run_dir, name)

    monkeypatch.setattr(PlotPool, "draw_ahead", spy_ahead)
    monkeypatch.setattr(PlotPool, "_submit", spy_submit)
    raw = {
        "name": "ahead",
        "data": {"name": "toy_2d"},
        "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 3, "batch_size": "full", "optimizer": "sgd", "lr": 0.5, "loss": "cross_entropy",
                  "metrics": ["accuracy"], "seed": 1},
        "search": {"strategy": "grid", "space": {"train.lr": [0.1, 1.0], "train.momentum": [0.0, 0.9]}},
        "final": {"enabled": True},
    }
    out = tmp_path / "run"
    result = tunelab.tune(load_experiment(None, raw=raw), out=out)
    assert result.report == out / "report.html" and result.report.exists() and (out / "final").is_dir()
    assert ahead == [out]
    assert drawn_at_report == []  # the final model and its tables changed nothing a plot reads
    assert not multiprocessing.active_children()  # the renderers ended with the command
    fresh = tmp_path / "fresh"
    shutil.copytree(out, fresh)
    shutil.rmtree(fresh / "plots")
    make_plots(fresh)
    pngs = {p.name: p.read_bytes() for p in sorted((out / "plots").glob("*.png"))}
    assert len(pngs) >= 8
    assert pngs == {p.name: p.read_bytes() for p in sorted((fresh / "plots").glob("*.png"))}
