"""Every plot of a run folder as PNG files in `plots/`, drawn from the folder alone."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import re
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from tunelab.lifetime import die_with_parent
from tunelab.report import curves, small_multiples, study_plots
from tunelab.report.figures import png_bytes, style
from tunelab.report.importance import importance_plot
from tunelab.report.overlay import overlay_plot
from tunelab.report.runinfo import ReportRun
from tunelab.runs.layout import RunLayout
from tunelab.runs.records import write_bytes_atomic

log = logging.getLogger(__name__)
FIXED_NAMES = ("learning_curves", "learning_curves_best", "metric_curves", "grad_norms", "lr_sweep", "ablation",
               "optimization_history", "parameter_importance", "parallel_coordinates", "seed_spread")
Drawing = Figure | str | None  # a figure, a note saying why there is none, or None: not applicable


@dataclass(frozen=True)
class Plot:
    """One plot of the report: its file (None when skipped) and a note to show with it."""

    name: str
    title: str
    path: Path | None
    note: str = ""


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def page_drafts(run: ReportRun) -> Iterator[tuple[str, str, Callable[[], Drawing]]]:
    """(file stem, title, draw) for every plot this folder supports, in page order."""
    trials, best = run.trials, run.best()
    focus = best or (trials[0] if trials else None)
    if focus is None:
        yield "learning_curves", "Learning curves", lambda: "no trial folder with records yet"
    elif len(trials) == 1:
        yield "learning_curves", "Learning curves", lambda: curves.learning_curves_single(run, focus)
    else:
        yield "learning_curves", "Learning curves: loss, every configuration", \
            lambda: small_multiples.learning_curves_grid(run, "val_loss", "loss")
        if run.curve_metric:
            metric = run.curve_metric
            yield "metric_curves", f"Learning curves: {metric}, every configuration", \
                lambda: small_multiples.learning_curves_grid(run, metric, metric.removeprefix("val_"))
        yield "learning_curves_best", f"Learning curves of the best configuration (#{focus.number})", \
            lambda: curves.learning_curves_single(run, focus)
    if focus is not None:
        yield "grad_norms", "Gradient norms", lambda: curves.grad_norms(run, focus)
    if not run.is_study or len(trials) < 2:
        return
    if run.view.strategy == "lr_sweep":
        yield "lr_sweep", "Learning-rate sweep", lambda: study_plots.lr_sweep(run)
    if run.view.strategy == "ablation":
        yield "ablation", "Ablation", lambda: study_plots.ablation_bars(run)
    for knob in run.knobs:
        yield f"axis_{_safe(knob.name)}", f"Axis plot: {knob.name}", \
            lambda knob=knob: study_plots.axis_plot(run, knob)
    for knob in run.knobs:
        yield f"overlay_{_safe(knob.name)}", f"Overlay: validation curves by {knob.name}", \
            lambda knob=knob: overlay_plot(run, knob)
    yield "optimization_history", "Optimization history", lambda: study_plots.optimization_history(run)
    yield "parameter_importance", "Parameter importance", lambda: importance_plot(run)
    yield "parallel_coordinates", "Parallel coordinates", lambda: study_plots.parallel_coordinates(run)
    yield "seed_spread", "Seed spread", lambda: study_plots.seed_spread(run)


def make_plots(run_dir: str | Path, renderer: Renderer | None = None) -> list[Plot]:
    """Draw and write every plot; a plot that cannot be drawn becomes a note, never a crash of the report.
    `renderer`: who draws them (`render_pool.PlotPool.render`: figures drawn ahead are reused)."""
    run = ReportRun(run_dir)
    layout = run.view.layout
    drafts = list(page_drafts(run))
    rendered = renderer(run.root, drafts) if renderer is not None else _render_all(drafts)
    plots: list[Plot] = []
    for (name, title, _), (kind, payload) in zip(drafts, rendered, strict=True):
        if kind == "skip":
            continue
        if kind == "note":
            plots.append(Plot(name, title, None, str(payload)))
            continue
        path = layout.plot(name)
        write_bytes_atomic(path, payload)  # type: ignore[arg-type]
        plots.append(Plot(name, title, path))
    _remove_stale(layout, {p.path for p in plots if p.path})
    return plots


Draft = tuple[str, str, Callable[[], Drawing]]
Rendered = tuple[str, bytes | str | None]  # ("png", bytes) | ("note", text) | ("skip", None)
Renderer = Callable[[Path, list[Draft]], list[Rendered]]
_DRAFTS: list[Draft] = []  # what forked renderers draw from (closures cannot be pickled)
PARALLEL_FROM = 4  # plots; fewer are not worth a process pool


def _render(index: int) -> Rendered:
    name, _, draw = _DRAFTS[index]
    return render_one(name, draw)


def render_one(name: str, draw: Callable[[], Drawing]) -> Rendered:
    """One draft as PNG bytes, a note, or a skip; a failure becomes a note. The cycle collector
    waits until the figure is done: a figure makes thousands of small objects (ticks, texts, paths)
    and each automatic collection walks them all again, ~25% of a report's drawing CPU."""
    with style(), _collector_paused():
        try:
            drawing = draw()
        except Exception as exc:  # one broken plot must not cost the user the whole report
            log.warning("plot %s failed", name, exc_info=True)
            return "note", f"could not draw this plot: {type(exc).__name__}: {exc}"
        if drawing is None:
            return "skip", None
        if isinstance(drawing, str):
            return "note", drawing
        return "png", png_bytes(drawing)


@contextmanager
def _collector_paused() -> Iterator[None]:
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _render_all(drafts: list[Draft]) -> list[Rendered]:
    """Render every draft; on a multi-core machine in forked processes (drawing and PNG encoding
    are most of a report's time), else one after another."""
    _DRAFTS[:] = drafts
    try:
        cores = os.cpu_count() or 1
        if cores > 1 and len(drafts) >= PARALLEL_FROM and "fork" in multiprocessing.get_all_start_methods():
            try:
                context = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(max_workers=min(cores, 4), mp_context=context, initializer=die_with_parent,
                                         initargs=(signal.SIGKILL, os.getpid())) as pool:  # none outlives us
                    return list(pool.map(_render, range(len(drafts))))
            except (OSError, BrokenProcessPool) as exc:
                log.debug("parallel plotting unavailable (%s); drawing one by one", exc)
        return [_render(i) for i in range(len(drafts))]
    finally:
        _DRAFTS.clear()


def _remove_stale(layout: RunLayout, kept: set[Path]) -> None:
    """Plots an earlier report wrote that this one did not (a knob no longer searched, say)."""
    for path in layout.plot_files():
        if path not in kept and (path.stem in FIXED_NAMES or path.stem.startswith(("axis_", "overlay_"))):
            path.unlink(missing_ok=True)


def write_plots(run_dir: str | Path) -> list[Path]:
    """Write the run folder's plots to `plots/` and return their paths, in page order."""
    return [p.path for p in make_plots(run_dir) if p.path is not None]
