"""Plots: every expected PNG per kind of run folder, skipped plots say why."""

from __future__ import annotations

from pathlib import Path

from tunelab.report.plots import make_plots, write_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _names(paths: list[Path]) -> set[str]:
    return {p.name for p in paths}


def _assert_pngs(paths: list[Path]) -> None:
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, path


def test_lr_sweep_folder_gets_sweep_axis_history_and_curves(lr_sweep_run: Path) -> None:
    paths = write_plots(lr_sweep_run)
    assert _names(paths) == {
        "learning_curves.png", "metric_curves.png", "learning_curves_best.png", "grad_norms.png",
        "lr_sweep.png", "axis_lr.png", "overlay_lr.png", "optimization_history.png",
    }
    assert all(p.parent == lr_sweep_run / "plots" for p in paths)
    _assert_pngs(paths)


def test_one_knob_skips_importance_and_parallel_coordinates_with_a_note(lr_sweep_run: Path) -> None:
    notes = {p.name: p.note for p in make_plots(lr_sweep_run) if p.path is None}
    assert "2 searched params" in notes["parameter_importance"]
    assert "at least 2 searched knobs" in notes["parallel_coordinates"]


def test_grid_folder_gets_an_axis_plot_per_knob_importance_and_parallel_coordinates(grid_run: Path) -> None:
    plots = make_plots(grid_run)
    assert [p.note for p in plots if p.path is None] == []
    assert {p.name for p in plots} == {
        "learning_curves", "metric_curves", "learning_curves_best", "grad_norms", "axis_lr", "axis_momentum",
        "overlay_lr", "overlay_momentum", "optimization_history", "parameter_importance", "parallel_coordinates",
    }
    _assert_pngs([p.path for p in plots if p.path])


def test_ablation_with_seeds_gets_bars_and_seed_spread(ablation_run: Path) -> None:
    names = _names(write_plots(ablation_run))
    assert {"ablation.png", "seed_spread.png"} <= names


def test_train_folder_gets_learning_curves_and_grad_norms(train_run: Path) -> None:
    paths = write_plots(train_run)
    assert _names(paths) == {"learning_curves.png", "grad_norms.png"}
    _assert_pngs(paths)


def test_plots_are_byte_identical_when_drawn_again(grid_run: Path) -> None:
    first = {p.name: p.read_bytes() for p in write_plots(grid_run)}
    second = {p.name: p.read_bytes() for p in write_plots(grid_run)}
    assert first == second


def test_a_stale_plot_from_an_earlier_report_is_removed(lr_sweep_run: Path) -> None:
    stale = lr_sweep_run / "plots" / "axis_dropout.png"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"old")
    keep = lr_sweep_run / "plots" / "my_own_figure.png"
    keep.write_bytes(b"mine")
    write_plots(lr_sweep_run)
    assert not stale.exists() and keep.exists()
    keep.unlink()
