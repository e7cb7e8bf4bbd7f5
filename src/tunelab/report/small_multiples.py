"""Learning curves of every configuration as small multiples: one panel per trial on shared axes.

Drawn on one axes-free canvas measured in inches, not as one matplotlib Axes per trial: 27 Axes
cost ~0.6 s of CPU per figure (each builds, lays out and draws its own ticks, tick labels and
title), the largest part of a report drawn after the last trial. Here each panel is a frame, its
curves are clipped to it, the grid lines of all panels are one collection, and the shared ticks
are labelled once: y on the left column, x under the lowest panel of each column, as with shared
Axes. Same content, about a quarter of the time.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable

from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import LogLocator, MaxNLocator
from matplotlib.transforms import Bbox, TransformedBbox

from tunelab.report.curves import TRAIN_COLOR, VAL_COLOR, series_xy, use_log
from tunelab.report.figures import FIXED_LAYOUT, new_figure, robust_limits
from tunelab.report.runinfo import ReportRun
from tunelab.runs.outcome import Outcome
from tunelab.runs.view import TrialView

# Margins and gaps in inches (left, right, top, bottom) and in panel sizes (between columns, rows).
LEFT, RIGHT, BOTTOM, WSPACE, HSPACE = 0.7, 0.15, 0.85, 0.08, 0.55  # inches, spaces as fractions of a panel
PANEL_H = 1.25  # inches: a panel's height
SUPTITLE_TOP, SUPTITLE_H = 0.12, 0.42  # inches: the figure title's gap from the top, and all it takes
TITLE_GAP, LINE_H = 0.08, 0.12  # inches: a panel title's gap above its frame, and one 7-point line
TITLE_CHARS, TITLE_LINES = 30, 4  # a panel title's wrap width and most lines
GRID = {"colors": "#b0b0b0", "linewidths": 0.8, "alpha": 0.3}
TICK = 0.05  # inches: tick marks and the gap to their labels


def grid_shape(n: int) -> tuple[int, int]:
    cols = n if n <= 4 else min(6, math.ceil(math.sqrt(n * 1.4)))
    return math.ceil(n / cols), cols


Curve = tuple[TrialView, int, str, str, list[int], list[float]]  # trial, seed index, key, line name, x, y


def _curves(run: ReportRun, key: str) -> list[Curve]:
    """Every drawable curve: train (the key's train twin) and validation, per seed of every trial."""
    train_key = run.train_key(key)
    out: list[Curve] = []
    for trial in run.trials:
        for i, seed in enumerate(trial.seeds):
            for k, line in ((train_key, "train"), (key, "validation")):
                if k is not None:
                    out.append((trial, i, k, line, *series_xy(seed, k)))
    return out


def _limits(curves: list[Curve], log_ok: bool) -> tuple[tuple[float, float], tuple[float, float], bool]:
    """Shared x (epochs, 5% margins as matplotlib's) and y limits (robust to a blown-up curve), log y or not."""
    xs = [x for c in curves for x in c[4]] or [1]
    values = [v for c in curves for v in c[5]]
    log = log_ok and use_log(values)
    span = (max(xs) - min(xs)) or 1
    ylim = robust_limits(values, log=log) or (0.0, 1.0)
    if ylim[0] == ylim[1]:
        ylim = (ylim[0] - 1.0, ylim[1] + 1.0)
    return (min(xs) - 0.05 * span, max(xs) + 0.05 * span), ylim, log


def _ticks(lo: float, hi: float, log: bool, bins: int | None = None) -> list[float]:
    """Tick values inside [lo, hi]: `bins` as matplotlib's automatic locator would pick for the panel's
    length (linear y), None for whole epochs (the epoch axes' `MaxNLocator(integer=True)`)."""
    if log:  # decades; less than two shown: 1, 2, 5 of each; a narrow range (0.3 to 0.45): even values
        for log_locator, most in ((LogLocator(), None), (LogLocator(subs=(1.0, 2.0, 5.0)), (bins or 9) + 1)):
            ticks = [t for t in log_locator.tick_values(lo, hi) if lo <= t <= hi]
            if len(ticks) >= 2 and (most is None or len(ticks) <= most):
                return ticks
    locator = MaxNLocator(integer=True) if bins is None else MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10])
    return [t for t in locator.tick_values(lo, hi) if lo <= t <= hi]


def tick_labels(ticks: list[float], log: bool) -> list[str]:
    """Linear ticks with one number of decimals (0.2, 0.4, ... 1.0, as matplotlib's), log ticks as they are."""
    if log or any("e" in f"{t:g}" for t in ticks):
        texts = [f"{t:g}" for t in ticks]
    else:
        decimals = max((len(f"{t:g}".partition(".")[2]) for t in ticks), default=0)
        texts = [f"{t:.{decimals}f}" for t in ticks]
    return [text.replace("-", "\N{MINUS SIGN}") for text in texts]  # matplotlib's minus (axes.unicode_minus)


def learning_curves_grid(run: ReportRun, key: str, name: str) -> Figure:
    """Small multiples: one panel per configuration, shared axes, the best one framed in green."""
    trials = run.trials
    rows, cols = grid_shape(len(trials))
    titles = {t.number: panel_title(run, t) for t in trials}
    title_h = TITLE_GAP + LINE_H * max((t.count("\n") + 1 for t in titles.values()), default=1)
    top, gap = SUPTITLE_H + title_h, max(HSPACE * PANEL_H, title_h + TITLE_GAP)  # inches: no title overlaps
    width, height = max(7.0, cols * 2.3), top + rows * PANEL_H + (rows - 1) * gap + BOTTOM
    fig, axes = new_figure((width, height))
    fig.set_label(FIXED_LAYOUT)
    canvas = axes[0][0]
    canvas.set_position((0.0, 0.0, 1.0, 1.0))
    canvas.set_axis_off()
    canvas.set_xlim(0, width)
    canvas.set_ylim(0, height)
    pw = (width - LEFT - RIGHT) / (cols + (cols - 1) * WSPACE)
    ph = PANEL_H
    curves = _curves(run, key)
    (x0, x1), (y0, y1), log = _limits(curves, log_ok=name == "loss")
    scale: Callable[[float], float] = math.log10 if log else float
    s0, s1 = scale(y0), scale(y1)
    xticks, yticks = _ticks(x0, x1, False), _ticks(y0, y1, log, bins=max(1, min(9, int(ph * 72 / (2 * 7)))))
    boxes = {t.number: (LEFT + (i % cols) * pw * (1 + WSPACE), height - top - (i // cols) * (ph + gap) - ph)
             for i, t in enumerate(trials)}
    lowest = {t.number for t in trials[max(0, len(trials) - cols):]}  # lowest panel of each column
    best = run.best()
    segments = []
    for i, trial in enumerate(trials):
        left, bottom = boxes[trial.number]
        segments += [[(left + (x - x0) / (x1 - x0) * pw, bottom), (left + (x - x0) / (x1 - x0) * pw, bottom + ph)]
                     for x in xticks]
        levels = [bottom + (scale(y) - s0) / (s1 - s0) * ph for y in yticks]
        segments += [[(left, at), (left + pw, at)] for at in levels]
        framed = best is not None and trial.number == best.number
        canvas.add_patch(Rectangle((left, bottom), pw, ph, fill=False, zorder=3, lw=2.5 if framed else 0.8,
                                   edgecolor="#2ca02c" if framed else "black"))
        canvas.text(left + pw / 2, bottom + ph + TITLE_GAP, titles[trial.number], ha="center", va="bottom", fontsize=7,
                    color="#d62728" if trial.state in (Outcome.DIVERGED, "failed") else "black")
        if i % cols == 0:
            for text, at in zip(tick_labels(yticks, log), levels, strict=True):
                segments.append([(left - TICK, at), (left, at)])
                canvas.text(left - 1.5 * TICK, at, text, ha="right", va="center", fontsize=7)
        if trial.number in lowest:
            for x, text in zip(xticks, tick_labels(xticks, False), strict=True):
                at = left + (x - x0) / (x1 - x0) * pw
                segments.append([(at, bottom - TICK), (at, bottom)])
                canvas.text(at, bottom - 1.5 * TICK, text, ha="center", va="top", fontsize=7)
            canvas.text(left + pw / 2, bottom - 0.22, "epoch", ha="center", va="top")
    canvas.add_collection(LineCollection(segments, **GRID))
    handles = _draw_curves(canvas, curves, boxes, (x0, x1), (s0, s1), scale, (pw, ph))
    fig.legend(handles, [h.get_label() for h in handles], loc="lower center", fontsize=8, ncol=2)
    fig.suptitle(f"{name} per epoch, every configuration (shared axes; best framed in green)",
                 y=1 - SUPTITLE_TOP / height, va="top")
    fig.supylabel(name)
    return fig


def panel_title(run: ReportRun, trial: TrialView) -> str:
    """`#7 lr=0.01, hidden_dim=32` wrapped to the panel; a title too long for TITLE_LINES ends in an
    ellipsis (never a dangling comma), and a trial that did not complete says its state."""
    lines = textwrap.wrap(f"#{trial.number} " + run.label(trial), TITLE_CHARS)
    if len(lines) > TITLE_LINES:
        lines = [*lines[:TITLE_LINES - 1], lines[TITLE_LINES - 1].rstrip(",") + " \N{HORIZONTAL ELLIPSIS}"]
    title = "\n".join(lines)
    return title if trial.state == Outcome.COMPLETE else f"{title} ({trial.state})"


def _draw_curves(canvas: Axes, curves: list[Curve], boxes: dict[int, tuple[float, float]],
                 xlim: tuple[float, float], slim: tuple[float, float], scale: Callable[[float], float],
                 size: tuple[float, float]) -> list[Line2D]:
    """Each curve in its panel, clipped to the panel's frame; returns one legend handle per line kind."""
    (x0, x1), (s0, s1), (pw, ph) = xlim, slim, size
    handles: dict[str, Line2D] = {}
    for trial, seed, key, line, xs, ys in curves:
        left, bottom = boxes[trial.number]
        points = [(left + (x - x0) / (x1 - x0) * pw, bottom + (scale(y) - s0) / (s1 - s0) * ph)
                  for x, y in zip(xs, ys, strict=True) if y > 0 or scale is float]
        alpha = 1.0 if len(trial.seeds) == 1 else 0.6
        drawn = canvas.plot([p[0] for p in points], [p[1] for p in points],
                            "-" if line == "train" else "--", color=TRAIN_COLOR if line == "train" else VAL_COLOR,
                            lw=1.1, alpha=alpha, label=f"{line} ({key})")[0]
        drawn.set_clip_box(TransformedBbox(Bbox.from_bounds(left, bottom, pw, ph), canvas.transData))
        if seed == 0:
            handles.setdefault(line, drawn)
    return [handles[line] for line in ("train", "validation") if line in handles]
