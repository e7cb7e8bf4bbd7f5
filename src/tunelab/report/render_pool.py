"""Plots drawn ahead of the report by forked renderers, kept by what they were drawn from.

`tunelab tune` asks for every plot as soon as the last trial's results are written: while the final
model retrains (no plot reads `final/`), or else while the diagnosis rules run. Where the study
leaves a core idle, `tune` forks the renderers before its first trial and they warm up there
(imports, fonts, a first figure), so none of that waits after the last trial. The costliest
plots are asked for first, so the renderers finish together. The report takes
each figure drawn from the folder as it still is (`folder_digest`) and draws the rest, so a trial
that changed after drawing is drawn again. The renderers are forked when first needed, from a
process that has imported everything a plot needs; figures come back to the report process, which
alone writes `plots/`: a crash or Ctrl-C leaves no half-written plot, and the renderers die with it.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from tunelab.lifetime import die_with_parent
from tunelab.report.plots import Draft, Rendered, page_drafts, render_one
from tunelab.report.runinfo import ReportRun
from tunelab.runs.layout import RunLayout, TrialLayout

log = logging.getLogger(__name__)
# What no plot reads: the report's own outputs, the final model, the tables and the Optuna database
# (the trials the importance plot reads from it are in optimization_history.json too).
_RUN, _TRIAL = RunLayout(Path()), TrialLayout(Path())
NOT_READ = frozenset(path.name for path in (_RUN.plots, _RUN.final, _RUN.report_html, _RUN.decisions_md,
                                            _RUN.evidence_json, _RUN.summary_csv, _RUN.summary_md, _TRIAL.checkpoints))
Drawn = tuple[str, str, Rendered]  # (folder digest before drawing, title, rendering)


def folder_digest(run_dir: str | Path) -> str:
    """A hash of the contents of every file the plots read (trial records, params, results, history,
    experiment.yaml): equal digests, equal figures. Hidden files (locks, temp files) are skipped."""
    root = Path(run_dir)
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in NOT_READ and not d.startswith("."))
        for name in sorted(files):
            if name in NOT_READ or name.startswith((".", _RUN.study_db.name)):
                continue
            path = Path(folder, name)
            try:
                data = path.read_bytes()
            except OSError:  # removed between listing and reading
                continue
            digest.update(f"{path.relative_to(root)}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


# Asked for first, in this order (the costliest, measured on seed 000's 27-trial grid: gradient norms
# 0.27 s of CPU, the importance forest 0.19 s, each grid of every trial 0.18 s); the rest in page order.
COSTLIEST = ("grad_norms", "parameter_importance", "learning_curves", "metric_curves")


def costliest_first(names: list[str], warm: bool = True) -> list[str]:
    """`names` in the order to draw them on a few processes: the long plots first (the longest-job-first
    rule), so no renderer starts a long plot when the others are done. In a renderer that has not
    warmed up the importance plot is the longest (it imports scikit-learn first): it goes first."""
    order = COSTLIEST if warm else ("parameter_importance", *(n for n in COSTLIEST if n != "parameter_importance"))
    rank = {name: i for i, name in enumerate(order)}
    later = len(rank) + 1  # overlays (a curve per trial) before the small plots; sorted() keeps page order within
    return sorted(names, key=lambda n: rank.get(n, later - n.startswith("overlay_")))


def _init_renderer(parent: int, warm: bool, turn: Any = None, drawing: Any = None) -> None:
    """`warm`: warm up first, one renderer at a time (`turn`, a lock): `tune` warms them on one idle
    core, so two at once would take half of a training core; none waits once `drawing` is set."""
    die_with_parent(signal.SIGKILL, parent)
    if warm and _my_turn(turn, drawing):
        try:
            _warm()
        except Exception as exc:  # a renderer that did not warm up still draws (a failed initializer would not)
            log.debug("renderer warm-up failed: %s", exc)
        finally:
            turn.release()
    # What the renderer inherited from `tune` (torch, the study) and its warm-up are never garbage here:
    # out of the collector's sight, so a collection walks only what the plots make (and pages stay shared).
    gc.freeze()


def _my_turn(turn: Any, drawing: Any) -> bool:
    """The warm-up lock, taken unless the plots are asked for first (then this renderer draws cold)."""
    while not drawing.is_set():
        if turn.acquire(timeout=0.05):
            if not drawing.is_set():
                return True
            turn.release()
    return False


def _warm() -> None:
    """What a renderer's first plots would otherwise pay for: the importance module (sklearn's
    forest) and a first figure with text, a legend and a log axis rendered to PNG (fonts, caches)."""
    import optuna.importance

    # the importance plot's first study.db read pays SQLAlchemy's first engine and ORM set-up (~0.4 s)
    optuna.storages.RDBStorage("sqlite:///:memory:").get_all_studies()
    from tunelab.report.figures import new_figure, png_bytes, style

    with style():
        fig, axes = new_figure((3.0, 2.0))
        axes[0][0].plot([1, 2, 3], [1.0, 10.0, 100.0], "--", label="warm-up")
        axes[0][0].set_yscale("log")
        axes[0][0].legend(fontsize=7)
        axes[0][0].set_title("warm-up")
        fig.tight_layout()
        png_bytes(fig)


_LAST_RUN: dict[tuple[str, str], ReportRun] = {}  # a renderer's folder, read once per digest (records are cached)


def _draw(run_dir: str, name: str) -> Drawn:
    """In a renderer: the digest, then the named plot drawn from the folder as it is."""
    digest = folder_digest(run_dir)
    run = _LAST_RUN.get((run_dir, digest))
    if run is None:
        _LAST_RUN.clear()
        run = _LAST_RUN[(run_dir, digest)] = ReportRun(run_dir)
    for draft_name, title, draw in page_drafts(run):
        if draft_name == name:
            return digest, title, render_one(name, draw)
    return digest, "", ("skip", None)


class PlotPool:
    """Forked renderers for one run folder's plots: `draw_ahead`, then `render` (the report's renderer)."""

    def __init__(self, workers: int | None = None) -> None:
        self._workers = workers or min(os.cpu_count() or 1, 4)
        self._pool: ProcessPoolExecutor | None = None
        self._ahead: dict[str, Future[Drawn]] = {}
        self._started = False
        self._warm = False  # the renderers warmed up (`warm_up`)
        self._drawing: Any = None  # set once a plot is asked for: a renderer still waiting skips its warm-up

    def _start(self, warm: bool = False) -> ProcessPoolExecutor | None:
        """The renderers, forked on first use (one core or no fork: None, the report draws in-process);
        `warm`: each warms up as it starts (`warm_up`)."""
        if self._started:
            return self._pool
        self._started = True
        if self._workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
            return None
        context = multiprocessing.get_context("fork")
        try:
            self._drawing = context.Event()
            self._pool = ProcessPoolExecutor(self._workers, mp_context=context, initializer=_init_renderer,
                                             initargs=(os.getpid(), warm, context.Lock(), self._drawing))
        except OSError as exc:
            log.debug("plot renderers unavailable (%s); drawing in this process", exc)
        return self._pool

    def warm_up(self) -> None:
        """Fork the renderers now and let them warm up, one at a time, while the study trains (on a
        core it leaves idle: `tune` calls this only then, or when its own trials are done and the last
        ones train elsewhere); drawing itself still waits for `draw_ahead`."""
        pool = self._start(warm=True)
        self._warm = pool is not None
        if pool is None:
            return
        try:
            pool.submit(int)  # with fork the executor starts every renderer at the first submit
        except (BrokenProcessPool, RuntimeError) as exc:
            log.debug("renderers not warmed: %s", exc)

    def __enter__(self) -> PlotPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        self.close(abort=kind is not None)

    def draw_ahead(self, run_dir: Path) -> None:
        """Start drawing every plot of the folder as it is now; `render` reuses what still matches."""
        pool = self._start()
        if pool is None:
            return
        self._drawing.set()
        try:
            for name in costliest_first([name for name, _, _ in page_drafts(ReportRun(run_dir))], self._warm):
                self._ahead[name] = pool.submit(_draw, str(run_dir), name)
        except (BrokenProcessPool, RuntimeError) as exc:
            log.debug("drawing ahead failed: %s", exc)

    def render(self, run_dir: Path, drafts: list[Draft]) -> list[Rendered]:
        """Every draft, in order: a figure drawn ahead from this same folder content, else drawn now."""
        digest = folder_digest(run_dir)
        ahead = {name: self._ahead.pop(name) for name, _, _ in drafts if name in self._ahead}
        self._ahead.clear()
        missed = costliest_first([name for name, _, _ in drafts if name not in ahead], self._warm)
        jobs = {name: self._submit(run_dir, name) for name in missed}  # misses start first
        kept: dict[str, Rendered] = {}
        for name, title, _ in drafts:
            if name in ahead:
                drawn = self._result(ahead[name])
                if drawn is not None and drawn[:2] == (digest, title):
                    kept[name] = drawn[2]
                else:  # drawn from a folder that has changed since
                    jobs[name] = self._submit(run_dir, name)
        out: list[Rendered] = []
        for name, _, draw in drafts:
            drawn = None if name in kept else self._result(jobs.get(name))
            out.append(kept[name] if name in kept else drawn[2] if drawn is not None else render_one(name, draw))
        return out

    def _submit(self, run_dir: Path, name: str) -> Future[Drawn] | None:
        pool = self._start()
        if pool is None:
            return None
        self._drawing.set()
        try:
            return pool.submit(_draw, str(run_dir), name)
        except (BrokenProcessPool, RuntimeError):
            return None

    def _result(self, job: Future[Drawn] | None) -> Drawn | None:
        if job is None:
            return None
        try:
            return job.result()
        except BrokenProcessPool as exc:  # a renderer died (out of memory, killed): this process draws
            log.debug("plot renderer lost: %s", exc)
            self._pool = None
            return None

    def close(self, abort: bool = False) -> None:
        """Stop the renderers; `abort` (an error or Ctrl-C in `tune`) kills them without waiting."""
        pool, self._pool = self._pool, None
        self._ahead.clear()
        if pool is None:
            return
        # A snapshot: the executor's own thread empties `_processes` once it sees a renderer die.
        renderers = list((getattr(pool, "_processes", None) or {}).values()) if abort else []
        for proc in renderers:
            proc.kill()
        pool.shutdown(wait=not abort, cancel_futures=True)
