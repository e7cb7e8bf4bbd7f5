"""Per-epoch plots: learning curves of one configuration and gradient norms (every configuration's
curves: small_multiples.py)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tunelab.report.figures import BAND, new_figure, robust_limits
from tunelab.report.runinfo import ReportRun, finite
from tunelab.runs.view import SeedRun, TrialView

TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"
MAX_LAYERS = 12


def series_xy(seed: SeedRun, key: str) -> tuple[list[int], list[float]]:
    pairs = [(e, float(v)) for e, v in seed.series(key) if finite(v)]
    return [e for e, _ in pairs], [v for _, v in pairs]


def _draw_pair(ax: Axes, trial: TrialView, val_key: str, train_key: str | None, lw: float = 1.4) -> list[float]:
    """Train (solid) and validation (dashed) curves of every seed of a trial; returns the values drawn."""
    drawn: list[float] = []
    alpha = 1.0 if len(trial.seeds) == 1 else 0.6
    for i, seed in enumerate(trial.seeds):
        lines = ((train_key, TRAIN_COLOR, "-", "train"), (val_key, VAL_COLOR, "--", "validation"))
        for key, color, dash, name in lines:
            if key is None:
                continue
            x, y = series_xy(seed, key)
            ax.plot(x, y, dash, color=color, lw=lw, alpha=alpha, label=f"{name} ({key})" if i == 0 else None)
            drawn += y
    return drawn


def use_log(values: Sequence[float]) -> bool:
    pos = [v for v in values if v > 0]
    return len(pos) == len(values) and bool(pos) and max(pos) / min(pos) >= 20


def epoch_axis(ax: Axes) -> None:
    """An x axis of whole epochs: a 2-epoch run shows ticks 1 and 2, not 1.0, 1.2, ... 2.0."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def finish_axis(ax: Axes, values: Sequence[float], log_ok: bool) -> None:
    log = log_ok and use_log(values)
    if log:
        ax.set_yscale("log")
    limits = robust_limits(values, log=log)
    if limits:
        ax.set_ylim(*limits)


def learning_curves_single(run: ReportRun, trial: TrialView) -> Figure:
    """Loss and metric of one configuration, the best epoch marked."""
    metric = run.curve_metric
    fig, axes = new_figure((10.0, 4.2) if metric else (7.0, 4.5), 1, 2 if metric else 1)
    panels = [("val_loss", "loss")] + ([(metric, metric.removeprefix("val_"))] if metric else [])
    best_epoch = trial.first.result.get("best_epoch") if trial.first else None
    for ax, (key, name) in zip(axes[0], panels, strict=True):
        values = _draw_pair(ax, trial, key, run.train_key(key))
        finish_axis(ax, values, log_ok=name == "loss")
        if finite(best_epoch):
            ax.axvline(best_epoch, color="#2ca02c", lw=1, ls=":", label=f"best epoch ({best_epoch})")
        epoch_axis(ax)
        ax.set_ylabel(name)
        ax.set_title(f"{name} per epoch")
        ax.legend(fontsize=8)
    fig.suptitle(f"Learning curves: {run.label(trial) if run.knobs else run.view.name}")
    fig.tight_layout()
    return fig


def _layer_series(seed: SeedRun) -> dict[str, tuple[list[int], list[float]]]:
    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in seed.grad_norms:
        for layer, value in (record.get("norms") or {}).items():
            if finite(value) and value > 0:
                xs, ys = series.setdefault(layer, ([], []))
                xs.append(record["epoch"])
                ys.append(float(value))
    if len(series) > MAX_LAYERS:  # many layers: weights only, else the legend buries the plot
        series = {k: v for k, v in series.items() if not k.endswith(".bias")}
    return dict(list(series.items())[:MAX_LAYERS * 2])


def _band(ax: Axes) -> None:
    ax.axhspan(*BAND, color="#2ca02c", alpha=0.08, label="healthy band 1e-2..10")
    for edge in BAND:
        ax.axhline(edge, color="#2ca02c", lw=0.8, ls="--")
    ax.set_yscale("log")
    epoch_axis(ax)
    ax.set_ylabel("gradient L2 norm")


def grad_norms(run: ReportRun, trial: TrialView) -> Figure | str:
    """Per-layer gradient norms of the best (or only) trial; beside it, every trial's total norm."""
    seed = trial.first
    series = _layer_series(seed) if seed else {}
    if not series:
        return "no gradient norms were logged (grad_norms.jsonl is empty or missing)"
    many = len(run.trials) > 1
    fig, axes = new_figure((13.0, 4.6) if many else (8.5, 4.6), 1, 2 if many else 1)
    ax = axes[0][0]
    for layer, (xs, ys) in series.items():
        ax.plot(xs, ys, lw=1.3, label=layer)
    _band(ax)
    ax.set_title(f"Per layer: #{trial.number} {run.label(trial)}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if many:
        _totals(run, axes[0][1], trial)
    fig.tight_layout()
    return fig


def _totals(run: ReportRun, ax: Axes, best: TrialView) -> None:
    for trial in run.trials:
        if not trial.first:
            continue
        pairs = [(r["epoch"], r.get("total")) for r in trial.first.grad_norms]
        pairs = [(e, float(v)) for e, v in pairs if finite(v) and v > 0]
        is_best = trial.number == best.number
        ax.plot([e for e, _ in pairs], [v for _, v in pairs], lw=2.0 if is_best else 0.9,
                color="#2ca02c" if is_best else "#7f7f7f", alpha=1.0 if is_best else 0.5, zorder=3 if is_best else 2,
                label=f"best #{best.number}" if is_best else None)
    _band(ax)
    ax.set_title("Total norm, every configuration (best in green)")
    ax.legend(fontsize=7)
