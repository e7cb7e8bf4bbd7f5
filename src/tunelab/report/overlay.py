"""Overlay plots: the curves of one knob's values on one axis (seed 003 put several learning rates on
one validation-loss plot), beside the small multiples that give every configuration its own panel.

One colour per value; where a value has several curves (other knobs varied, or several seeds) the
line is their mean per epoch and the band their ±1 std (clipped to the values seen), so a value is
judged by all its trials.
"""

from __future__ import annotations

import statistics

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tunelab.report.curves import finish_axis, series_xy
from tunelab.report.figures import new_figure
from tunelab.report.runinfo import Knob, ReportRun, fmt

MAX_VALUES = 10  # more values than this get no colour each; the axis plot shows them


def value_curves(run: ReportRun, knob: Knob, key: str) -> dict[str, list[dict[int, float]]]:
    """Knob value (as text, in the knob's natural order) -> one {epoch: value} curve per trial seed."""
    found: dict[str, list[dict[int, float]]] = {fmt(v): [] for v in knob.values}
    for trial in run.trials:
        value = trial.params.get(knob.path)
        if fmt(value) not in found:
            continue
        for seed in trial.seeds:
            xs, ys = series_xy(seed, key)
            if xs:
                found[fmt(value)].append(dict(zip(xs, ys, strict=True)))
    return {text: curves for text, curves in found.items() if curves}


def mean_band(curves: list[dict[int, float]]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Per epoch: the mean of the curves that reached it and its ±1 population std band, clipped to
    the values seen (a loss band never dips below the lowest curve, an accuracy band never tops 1)."""
    epochs = sorted({e for c in curves for e in c})
    means, lows, highs = [], [], []
    for epoch in epochs:
        values = [c[epoch] for c in curves if epoch in c]
        mean = statistics.fmean(values)
        std = statistics.pstdev(values) if len(values) > 1 else 0.0
        means.append(mean)
        lows.append(max(mean - std, min(values)))
        highs.append(min(mean + std, max(values)))
    return epochs, means, lows, highs


def _colours(knob: Knob, n: int) -> list[tuple[float, ...]]:
    """Ordered values (numbers) on a sequential map, so low-to-high reads as a gradient; categories in tab10."""
    if knob.numeric or n > 10:
        cmap = colormaps["viridis"]
        return [cmap(0.9 * i / max(1, n - 1)) for i in range(n)]
    cmap = colormaps["tab10"]
    return [cmap(i) for i in range(n)]


def _panel(ax: Axes, run: ReportRun, knob: Knob, key: str, name: str) -> int:
    """Draw one metric's overlay; returns how many curves it averaged at most for one value."""
    by_value = value_curves(run, knob, key)
    drawn: list[float] = []
    most = 0
    for (text, curves), colour in zip(by_value.items(), _colours(knob, len(by_value)), strict=True):
        epochs, means, lows, highs = mean_band(curves)
        most = max(most, len(curves))
        label = f"{knob.name}={text}" + (f" (mean of {len(curves)})" if len(curves) > 1 else "")
        ax.plot(epochs, means, color=colour, lw=1.8, label=label)
        if len(curves) > 1:
            ax.fill_between(epochs, lows, highs, color=colour, alpha=0.18, lw=0)
        drawn += lows + highs
    finish_axis(ax, drawn, log_ok=name == "loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {name}")
    ax.set_title(f"validation {name} per epoch, one colour per {knob.name}")
    ax.legend(fontsize=7, title=knob.name, title_fontsize=7)
    return most


def overlay_plot(run: ReportRun, knob: Knob) -> Figure | str:
    """Validation loss (and the objective's metric) per epoch, one line per value of `knob`."""
    if len(knob.values) > MAX_VALUES:
        return (f"{knob.name} took {len(knob.values)} values, too many for one colour each; "
                "its axis plot shows every trial")
    if not value_curves(run, knob, "val_loss"):
        return "no validation curves were recorded"
    metric = run.curve_metric
    fig, axes = new_figure((11.0, 4.4) if metric else (7.0, 4.5), 1, 2 if metric else 1)
    panels = [("val_loss", "loss")] + ([(metric, metric.removeprefix("val_"))] if metric else [])
    most = max(_panel(ax, run, knob, key, name) for ax, (key, name) in zip(axes[0], panels, strict=True))
    band = "; lines are means, bands ±1 std over each value's trials and seeds (within their range)" if most > 1 else ""
    fig.suptitle(f"Overlay: {knob.name} ({knob.path}){band}")
    fig.tight_layout()
    return fig
