"""Natural order of categories, titles that fit their figure, readable gradient legends, overlay plots."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from tunelab.report import plots
from tunelab.report.curves import grad_norms, learning_curves_single
from tunelab.report.figures import fit_titles, new_figure, style
from tunelab.report.overlay import mean_band, overlay_plot
from tunelab.report.runinfo import ReportRun, natural_key, position


@pytest.mark.parametrize(("values", "expected"), [
    ([[128], [64], [64, 32]], [[64], [64, 32], [128]]),
    ([10, 2, 1.5], [1.5, 2, 10]),
    (["10", "2"], ["2", "10"]),
    (["relu", "gelu", "elu"], ["elu", "gelu", "relu"]),
    (["h10", "h2", "H1"], ["H1", "h2", "h10"]),
    (["adam", 3, [1]], [3, [1], "adam"]),
])
def test_natural_order(values: list, expected: list) -> None:
    assert sorted(values, key=natural_key) == expected


def test_knob_values_and_summary_sort_keys_follow_natural_order(wide_run: Path) -> None:
    run = ReportRun(wide_run)
    dims = next(k for k in run.knobs if k.name == "hidden_dims")
    assert dims.values == ([8], [8, 4], [16])
    assert [position(dims, v) for v in ([16], [8])] == [2.0, 0.0]


def test_long_titles_are_wrapped_inside_the_figure() -> None:
    with style():
        fig, axes = new_figure((7.0, 4.5), 1, 2)
        axes[0][0].set_title("Axis plot: val_balanced_accuracy against model.encoder_head_hidden_dims_ratio "
                             "(120 scored, 3 without a value)")
        fig.suptitle("a suptitle long enough to run past both edges of a seven inch figure " * 2)
        fig.tight_layout()
        titles = fit_titles(fig)
        renderer = fig.canvas.get_renderer()
        for title in titles:
            box = title.get_window_extent(renderer)
            assert 0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, title.get_text()
        assert "\n" in titles[0].get_text()


def test_every_plot_of_a_wide_run_keeps_its_titles_inside(wide_run: Path) -> None:
    run = ReportRun(wide_run)
    drafts = list(plots.page_drafts(run))
    assert any(name.startswith("overlay_") for name, _, _ in drafts)
    with style():
        for name, _, draw in drafts:
            fig = draw()
            if fig is None or isinstance(fig, str):
                continue
            renderer = fig.canvas.get_renderer()
            for title in fit_titles(fig):
                box = title.get_window_extent(renderer)
                assert box.x0 >= -1 and box.x1 <= fig.bbox.x1 + 1 and box.y1 <= fig.bbox.y1 + 1, (name, title)
            plt.close(fig)


def test_gradient_legend_names_layers(grid_run: Path) -> None:
    run = ReportRun(grid_run)
    with style():
        fig = grad_norms(run, run.best())
        labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"hidden 1 Linear.weight", "output Linear.bias"} <= set(labels)
    assert not any(label[0].isdigit() for label in labels)


def test_epoch_axes_tick_whole_epochs(grid_run: Path) -> None:
    run = ReportRun(grid_run)  # 3 epochs: matplotlib's default ticks would be 1.00, 1.25, ... 3.00
    with style():
        figures = [grad_norms(run, run.best()), learning_curves_single(run, run.best())]
        for fig in figures:
            fig.canvas.draw()
            for ax in fig.axes:
                ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
                assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)
            plt.close(fig)


def test_overlay_mean_and_band() -> None:
    epochs, means, lows, highs = mean_band([{1: 1.0, 2: 0.5}, {1: 3.0}, {1: 2.0}])
    assert epochs == [1, 2] and means == [2.0, 0.5] and highs[1] == lows[1] == 0.5
    assert lows[0] == pytest.approx(2.0 - (2 / 3) ** 0.5) and highs[0] == pytest.approx(2.0 + (2 / 3) ** 0.5)
    _, _, lows, highs = mean_band([{1: 0.0}, {1: 0.0}, {1: 0.0}, {1: 1.0}])  # std 0.433 past the lowest value
    assert lows == [0.0] and highs == [pytest.approx(0.25 + 0.75 ** 0.5 / 2)]


def test_overlay_draws_one_line_per_value_with_bands(wide_run: Path) -> None:
    run = ReportRun(wide_run)
    knob = next(k for k in run.knobs if k.name == "lr")
    with style():
        fig = overlay_plot(run, knob)
        ax = fig.axes[0]
        labels = ax.get_legend_handles_labels()[1]
        assert labels[0] == "lr=0.05 (mean of 2)"  # one trial, two seeds; natural order: 0.05 before 0.5
        assert labels[1].startswith("lr=0.5 (mean of ") and labels[1] != "lr=0.5 (mean of 2)"  # the default: many
        assert len(ax.lines) == 2 and len(ax.collections) >= 1  # a band where a value has several curves


def test_report_lists_overlay_plots(wide_run: Path) -> None:
    names = [p.name for p in plots.make_plots(wide_run) if p.path is not None]
    assert "overlay_lr" in names and "overlay_hidden_dims" in names
    assert (wide_run / "plots" / "overlay_lr.png").stat().st_size > 10_000
