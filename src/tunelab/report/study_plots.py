"""Study-level plots: axis plots per knob, lr sweep, ablation bars, history, parallel coordinates, seeds."""

from __future__ import annotations

import math
import textwrap

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tunelab.report.cost_cells import cost_text
from tunelab.report.figures import mark_states, new_figure, robust_limits
from tunelab.report.runinfo import Knob, ReportRun, finite, fmt, position
from tunelab.runs.outcome import Outcome
from tunelab.runs.view import TrialView

BEST = {"marker": "*", "s": 220, "color": "#2ca02c", "edgecolor": "black", "zorder": 5}


def _objective_label(run: ReportRun) -> str:
    arrow = "higher is better" if run.maximize else "lower is better"
    return f"{run.metric} ({arrow})"


def _set_knob_axis(ax: Axes, knob: Knob) -> None:
    if knob.numeric:
        if knob.log:
            ax.set_xscale("log")
        ticks = [float(v) for v in knob.values]
        if len(ticks) <= 8:
            ax.set_xticks(ticks, [fmt(v) for v in knob.values])
            ax.minorticks_off()
    else:
        ax.set_xticks(range(len(knob.values)), [fmt(v) for v in knob.values], rotation=20, ha="right")
        ax.set_xlim(-0.5, len(knob.values) - 0.5)
    ax.set_xlabel(knob.path if knob.name == knob.path else f"{knob.name} ({knob.path})")


def axis_plot(run: ReportRun, knob: Knob) -> Figure:
    """The playbook's axis plot: objective against one knob, every trial, failures on the top edge."""
    fig, axes = new_figure()
    ax = axes[0][0]
    good, bad = [], []
    for t in run.trials:
        x, y = position(knob, t.params.get(knob.path)), run.value(t)
        if x is None:
            continue
        (good if y is not None else bad).append((x, y, t))
    ys = [y for _, y, _ in good]
    ax.scatter([x for x, _, _ in good], ys, s=40, color="#1f77b4", alpha=0.8, label="trial")
    best = run.best()
    for x, y, t in good:
        if best is not None and t.number == best.number:
            ax.scatter([x], [y], label=f"best ({run.metric}={y:.4g})", **BEST)
    _set_knob_axis(ax, knob)
    limits = robust_limits(ys)
    if limits:
        ax.set_ylim(*limits)
    mark_states(ax, [(x, t.state) for x, _, t in bad], ax.get_ylim()[1])
    ax.set_ylabel(_objective_label(run))
    ax.set_title(f"Axis plot: {run.metric} against {knob.name} ({len(good)} scored, {len(bad)} without a value)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _sweep_points(run: ReportRun, knob: Knob) -> list[tuple[float, float | None, float | None, TrialView]]:
    points = []
    for t in run.trials:
        lr = t.params.get(knob.path)
        if not finite(lr) or not t.first:
            continue
        vals = [float(v) for _, v in t.first.series("val_loss") if finite(v)]
        final = vals[-1] if vals and t.state == Outcome.COMPLETE else None
        points.append((float(lr), final, min(vals) if vals and t.state == Outcome.COMPLETE else None, t))
    return sorted(points, key=lambda p: p[0])


def lr_sweep(run: ReportRun) -> Figure | str | None:
    """Final and best validation loss against lr (log x), the best lr starred, an edge warning."""
    knob = next((k for k in run.knobs if k.name == "lr" or k.path.endswith(".lr")), None)
    if knob is None or not knob.numeric:
        return "lr sweep needs a numeric train.lr knob"
    points = _sweep_points(run, knob)
    fig, axes = new_figure()
    ax = axes[0][0]
    for idx, name, style in ((1, "final val_loss (last epoch)", "o-"), (2, "best val_loss (any epoch)", "s--")):
        pts = [(p[0], p[idx]) for p in points if p[idx] is not None]
        ax.plot([x for x, _ in pts], [y for _, y in pts], style, label=name, ms=9 if idx == 1 else 5,
                mfc="none" if idx == 1 else None, lw=2.5 if idx == 1 else 1.2, alpha=0.8)
    ax.set_xscale("log")
    ys = [p[i] for p in points for i in (1, 2) if p[i] is not None]
    limits = robust_limits(ys)
    if limits:
        ax.set_ylim(*limits)
    mark_states(ax, [(p[0], p[3].state) for p in points if p[1] is None], ax.get_ylim()[1])
    scored = [p for p in points if p[2] is not None]
    if scored:
        best = min(scored, key=lambda p: p[2])
        ax.scatter([best[0]], [best[2]], label=f"best lr = {fmt(best[0])}", **BEST)
        if len(points) > 2 and best[0] in (points[0][0], points[-1][0]):
            side = "lowest" if best[0] == points[0][0] else "highest"
            ax.text(0.5, 0.04, f"warning: the best lr is the {side} value tried; widen the range",
                    transform=ax.transAxes, ha="center", color="#d62728", fontsize=10, fontweight="bold",
                    bbox={"facecolor": "white", "edgecolor": "#d62728"})
    ax.set_xticks([p[0] for p in points], [fmt(p[0]) for p in points])
    ax.minorticks_off()
    ax.set_xlabel("learning rate (lr, log scale)")
    ax.set_ylabel("validation loss")
    ax.set_title("Learning-rate sweep")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _ablation_label(run: ReportRun, trial: TrialView, base: TrialView) -> str:
    changed = [f"{k.name}={fmt(trial.params.get(k.path))}" for k in run.knobs
               if fmt(trial.params.get(k.path)) != fmt(base.params.get(k.path))]
    return ", ".join(changed) or "default"


def ablation_bars(run: ReportRun) -> Figure | str:
    """One bar per ablation point (default first), mean over seeds with ±1 std error bars."""
    trials = run.trials
    if not trials:
        return "no trials to plot"
    base = trials[0]
    labels = [textwrap.shorten(_ablation_label(run, t, base), 40, placeholder="...") for t in trials]
    labels[0] = "default"
    default = ", ".join(f"{k.name}={fmt(base.params.get(k.path))}" for k in run.knobs)
    means, stds = [], []
    for t in trials:
        seeds = run.seed_values(t)
        means.append(float(np.mean(seeds)) if seeds else math.nan)
        stds.append(float(np.std(seeds)) if len(seeds) > 1 else 0.0)
    fig, axes = new_figure((7.5, max(2.5, 0.5 * len(trials) + 1.5)))
    ax = axes[0][0]
    y = np.arange(len(trials))
    colors = ["#7f7f7f" if i == 0 else "#1f77b4" for i in range(len(trials))]
    ax.barh(y, [0 if math.isnan(m) else m for m in means], xerr=stds, color=colors, capsize=4)
    for i, (m, sd, t) in enumerate(zip(means, stds, trials, strict=True)):
        text, x = (f"  {t.state}", 0.0) if math.isnan(m) else (f"  {m:.4f}" + (f" ± {sd:.4f}" if sd else ""), m + sd)
        text += f"  ({cost})" if (cost := cost_text(t)) else ""  # the cost of the change beside its effect
        ax.text(x, i, text, va="center", fontsize=8, color="#d62728" if math.isnan(m) else "black")
    if not math.isnan(means[0]):
        ax.axvline(means[0], color="#7f7f7f", ls="--", lw=1)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    finite_means = [m for m in means if not math.isnan(m) and m > 0]
    top = max((m + sd for m, sd in zip(means, stds, strict=True) if not math.isnan(m)), default=1)
    if finite_means and max(finite_means) / min(finite_means) > 20:  # a blown-up bar would hide the rest
        ax.set_xscale("log")
        ax.set_xlim(min(finite_means) / 2, top * 3)
    else:
        ax.set_xlim(0, top * (2.0 if any(cost_text(t) for t in trials) else 1.3))  # room for the cost labels
    seeds = max((len(run.seed_values(t)) for t in trials), default=1)
    log_note = ", log scale" if ax.get_xscale() == "log" else ""
    cost_note = "\n(in brackets: parameters, training time alone, memory; ~ estimated)" if any(
        cost_text(t) for t in trials) else ""
    ax.set_xlabel(f"{_objective_label(run)}, mean ± std over {seeds} seed(s){log_note}{cost_note}")
    ax.set_title("Ablation: one change from the default (grey) per bar\n"
                 + "\n".join(textwrap.wrap(f"default: {default}", 90)), fontsize=9)
    fig.tight_layout()
    return fig


def optimization_history(run: ReportRun) -> Figure | str:
    """Objective per trial number and the best value so far."""
    scored = [(t.number, v) for t in run.trials if (v := run.value(t)) is not None]
    if not scored:
        return "no trial has an objective value yet"
    fig, axes = new_figure()
    ax = axes[0][0]
    ax.scatter([n for n, _ in scored], [v for _, v in scored], s=30, label="trial")
    best, running = [], None
    for _, v in scored:
        running = v if running is None else (max(running, v) if run.maximize else min(running, v))
        best.append(running)
    ax.step([n for n, _ in scored], best, where="post", color="#d62728", label="best so far")
    limits = robust_limits([v for _, v in scored])
    if limits:
        ax.set_ylim(*limits)
    bad = [(t.number, t.state) for t in run.trials if run.value(t) is None]
    mark_states(ax, bad, ax.get_ylim()[1])
    ax.set_xlabel("trial number")
    ax.set_ylabel(_objective_label(run))
    ax.set_title("Optimization history")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _normalized(knob: Knob, value: object) -> float | None:
    pos = position(knob, value)
    if pos is None:
        return None
    if not knob.numeric:
        return pos / max(1, len(knob.values) - 1)
    lo, hi = float(knob.values[0]), float(knob.values[-1])
    if knob.log:
        pos, lo, hi = math.log10(pos), math.log10(lo), math.log10(hi)
    return (pos - lo) / (hi - lo) if hi > lo else 0.5


def parallel_coordinates(run: ReportRun) -> Figure | str:
    """Every scored trial as a line across normalized knob axes and the objective, colored by objective."""
    if len(run.knobs) < 2:
        return "parallel coordinates need at least 2 searched knobs (the axis plot shows one)"
    rows = [(t, v) for t in run.trials if (v := run.value(t)) is not None]
    if len(rows) < 2:
        return "parallel coordinates need at least 2 scored trials"
    values = [v for _, v in rows]
    vlo, vhi = min(values), max(values)
    fig, axes = new_figure((max(7.0, 2.0 * len(run.knobs) + 2.5), 4.8))
    ax = axes[0][0]
    cmap = colormaps["viridis_r" if run.maximize else "viridis"]  # the best end is dark
    xs = list(range(len(run.knobs) + 1))
    order = sorted(rows, key=lambda r: r[1], reverse=not run.maximize)  # best drawn last, on top
    for trial, v in order:
        ys = [_normalized(k, trial.params.get(k.path)) for k in run.knobs]
        ys.append((v - vlo) / (vhi - vlo) if vhi > vlo else 0.5)
        ax.plot(xs, [math.nan if y is None else y for y in ys], color=cmap((v - vlo) / (vhi - vlo or 1)),
                lw=1.4, alpha=0.85)
    for i, knob in enumerate(run.knobs):
        ax.axvline(i, color="black", lw=0.8)
        ends = (knob.values[0], knob.values[-1])
        ax.text(i, -0.06, fmt(ends[0]), ha="center", va="top", fontsize=8)
        ax.text(i, 1.04, fmt(ends[1]), ha="center", va="bottom", fontsize=8)
    ax.axvline(xs[-1], color="black", lw=0.8)
    ax.text(xs[-1], -0.06, f"{vlo:.4g}", ha="center", va="top", fontsize=8)
    ax.text(xs[-1], 1.04, f"{vhi:.4g}", ha="center", va="bottom", fontsize=8)
    names = [k.name + (" (log)" if k.log else "") for k in run.knobs] + [run.metric]
    ax.set_xticks(xs, names)
    ax.tick_params(axis="x", pad=16)
    ax.set_yticks([])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(-0.3, xs[-1] + 0.3)
    ax.grid(False)
    ax.set_ylabel("normalized value (axis min at bottom, max at top)")
    ax.set_title(f"Parallel coordinates ({len(rows)} scored trials; darker = better {run.metric})", pad=18)
    fig.tight_layout()
    return fig


def seed_spread(run: ReportRun) -> Figure | str | None:
    """Per configuration: each seed's value, the mean and ±1 std; only when seeds > 1."""
    rows = [(t, run.seed_values(t)) for t in run.trials]
    rows = [(t, s) for t, s in rows if len(s) > 1]
    if not rows:
        return None
    rows.sort(key=lambda r: float(np.mean(r[1])), reverse=run.maximize)
    fig, axes = new_figure((7.5, max(2.5, 0.45 * len(rows) + 1.5)))
    ax = axes[0][0]
    for i, (_, seeds) in enumerate(rows):
        ax.scatter(seeds, [i] * len(seeds), color="#1f77b4", s=25, alpha=0.8, label="one seed" if i == 0 else None)
        ax.errorbar([np.mean(seeds)], [i], xerr=[np.std(seeds)], fmt="D", color="#d62728", capsize=4,
                    label="mean ± std" if i == 0 else None)
    ax.set_yticks(range(len(rows)), [f"#{t.number} {run.label(t)}"[:48] for t, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel(_objective_label(run))
    ax.set_title("Seed spread per configuration (best at the top)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
