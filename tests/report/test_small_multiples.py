"""The learning-curve grid on one canvas: a titled panel per trial, every curve inside its panel,
shared ticks labelled once per row and column, the best panel framed in green."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from tunelab.report.figures import style
from tunelab.report.runinfo import ReportRun
from tunelab.report.small_multiples import grid_shape, learning_curves_grid, tick_labels


def test_tick_labels_share_decimals_and_use_the_minus_sign() -> None:
    assert tick_labels([-0.5, 0.0, 0.5, 1.0], log=False) == ["\N{MINUS SIGN}0.5", "0.0", "0.5", "1.0"]
    assert tick_labels([2.0, 4.0, 6.0], log=False) == ["2", "4", "6"]
    assert tick_labels([0.01, 0.1, 1.0], log=True) == ["0.01", "0.1", "1"]


def test_grid_draws_a_framed_panel_and_title_per_trial_with_curves_inside(grid_run: Path) -> None:
    run = ReportRun(grid_run)
    trials, best = run.trials, run.best()
    assert best is not None
    with style():
        fig = learning_curves_grid(run, "val_loss", "loss")
        canvas = fig.axes[0]
        frames = [p for p in canvas.patches if isinstance(p, Rectangle)]
        texts = [t.get_text() for t in canvas.texts]
        assert len(frames) == len(trials)
        for trial in trials:
            assert any(text.startswith(f"#{trial.number} ") for text in texts), trial.number
        green = [f for f in frames if f.get_edgecolor()[:3] == (44 / 255, 160 / 255, 44 / 255)]
        assert len(green) == 1 and green[0].get_linewidth() == 2.5
        boxes = [f.get_bbox() for f in frames]
        curves = [line for line in canvas.get_lines() if len(line.get_xdata())]
        assert len(curves) == 2 * sum(len(t.seeds) for t in trials)  # train and validation per seed
        for line in curves:  # each curve lies in one panel's columns and is clipped to that panel
            xs = line.get_xdata()
            panel = next(b for b in boxes if b.x0 - 1e-9 <= min(xs) and max(xs) <= b.x1 + 1e-9)
            assert line.get_clip_box() is not None and panel is not None
        cols = grid_shape(len(trials))[1]
        assert texts.count("epoch") == min(cols, len(trials))  # under the lowest panel of each column
        labels = fig.legends[0].get_texts()
        assert [t.get_text() for t in labels] == ["train (train_loss)", "validation (val_loss)"]
        plt.close(fig)


def test_log_ticks_fall_back_to_even_values_on_a_narrow_range() -> None:
    from tunelab.report.small_multiples import _ticks

    assert _ticks(0.05, 2.0, log=True) == [0.1, 1.0]
    narrow = _ticks(0.3, 0.45, log=True, bins=4)
    assert narrow == [0.3, 0.35, 0.4, 0.45]


def test_panel_titles_end_in_an_ellipsis_when_cut_and_overlap_no_frame_or_figure_title(wide_run: Path) -> None:
    from tunelab.report.small_multiples import TITLE_LINES, panel_title

    run = ReportRun(wide_run)
    titles = [panel_title(run, t) for t in run.trials]
    full = [f"#{t.number} " + run.label(t) for t in run.trials]
    for title, whole in zip(titles, full, strict=True):
        lines = title.split("\n")
        assert len(lines) <= TITLE_LINES and not lines[-1].rstrip().endswith(",")
        if len(whole) > len(title.replace("\n", " ")) + 2:  # cut: says so
            assert lines[-1].endswith("\N{HORIZONTAL ELLIPSIS}")
    with style():
        fig = learning_curves_grid(run, "val_loss", "loss")
        renderer = fig.canvas.get_renderer()
        canvas = fig.axes[0]
        frames = [p.get_window_extent(renderer) for p in canvas.patches if isinstance(p, Rectangle)]
        drawn = [t.get_window_extent(renderer) for t in canvas.texts if t.get_text().startswith("#")]
        assert len(drawn) == len(run.trials)
        top = fig._suptitle.get_window_extent(renderer)
        for box in drawn:
            assert not box.overlaps(top)
            assert not any(box.overlaps(frame) for frame in frames)
        plt.close(fig)
