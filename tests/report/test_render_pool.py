"""Plots drawn ahead by the warm renderer pool: the same files as drawn at the end, redrawn when a trial changed."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import wait as wait_futures
from multiprocessing.connection import wait
from pathlib import Path

import pytest

from tunelab.report.plots import make_plots
from tunelab.report.render_pool import PlotPool, costliest_first, folder_digest


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    shutil.rmtree(to / "plots")
    return to


def _pngs(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run / "plots").glob("*.png"))}


def _counting(pool: PlotPool) -> list[str]:
    """Names the pool draws at report time (a figure drawn ahead and still valid is not among them)."""
    drawn: list[str] = []
    submit = pool._submit

    def counted(run_dir: Path, name: str):  # type: ignore[no-untyped-def]
        drawn.append(name)
        return submit(run_dir, name)

    pool._submit = counted  # type: ignore[method-assign]
    return drawn


def _drawn_ahead(pool: PlotPool, run: Path) -> None:
    pool.draw_ahead(run)
    assert pool._ahead, "two renderers were asked for; the pool must have started"
    wait_futures(list(pool._ahead.values()), timeout=120)


def test_drawn_ahead_report_is_the_same_files_as_drawn_at_the_end(grid_run: Path, tmp_path: Path) -> None:
    at_end = _copy(grid_run, tmp_path / "end")
    ahead = _copy(grid_run, tmp_path / "ahead")
    make_plots(at_end)
    with PlotPool(workers=2) as pool:
        _drawn_ahead(pool, ahead)
        drawn_now = _counting(pool)
        plots = make_plots(ahead, pool.render)
    assert drawn_now == []  # every figure came from the drawing ahead
    assert len(plots) >= 8
    assert _pngs(ahead) == _pngs(at_end)  # same names, same bytes
    assert not list((ahead / "plots").glob(".*"))  # no temp files left behind


def test_a_trial_changed_after_drawing_is_redrawn(grid_run: Path, tmp_path: Path) -> None:
    run = _copy(grid_run, tmp_path / "run")
    with PlotPool(workers=2) as pool:
        _drawn_ahead(pool, run)
        before = folder_digest(run)
        metrics = sorted(run.glob("trials/*/metrics.jsonl"))[0]
        records = [json.loads(line) for line in metrics.read_text().splitlines()]
        for record in records:
            record["val_loss"] = record["val_loss"] * 3 + 1
        metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
        assert folder_digest(run) != before
        drawn_now = _counting(pool)
        make_plots(run, pool.render)
    assert "learning_curves" in drawn_now and "overlay_lr" in drawn_now
    redrawn = _pngs(run)
    fresh = _copy(run, tmp_path / "fresh")
    make_plots(fresh)
    assert redrawn == _pngs(fresh)  # the report shows the changed trial, as drawn at the end


def test_digest_ignores_what_no_plot_reads(grid_run: Path, tmp_path: Path) -> None:
    run = _copy(grid_run, tmp_path / "run")
    before = folder_digest(run)
    (run / "final").mkdir(exist_ok=True)
    (run / "final" / "test_metrics.json").write_text("{}")
    (run / "report.html").write_text("<p>old</p>")
    (run / ".tunelab.lock").write_text("123")
    assert folder_digest(run) == before
    (run / "experiment.yaml").write_text((run / "experiment.yaml").read_text() + "\n# edited\n")
    assert folder_digest(run) != before


@pytest.mark.parametrize("abort", [False, True])
def test_closing_the_pool_leaves_no_renderer(abort: bool) -> None:
    pool = PlotPool(workers=2)
    started = pool._start()
    assert started is not None and started.submit(int).result() == 0
    procs = list(started._processes.values())  # type: ignore[attr-defined]
    assert procs
    pool.close(abort=abort)
    for proc in procs:
        # The sentinel is ready once the renderer has exited. `is_alive` would race the executor's own
        # thread, which reaps the same processes: the loser of two `waitpid` calls reads "still running".
        assert wait([proc.sentinel], timeout=30), f"renderer {proc.pid} still running 30 s after close"
        assert _exits(proc.pid, within=30.0), f"renderer {proc.pid} closed its pipes but did not exit"


def _exits(pid: int, within: float) -> bool:
    """The process is gone or only its zombie entry is left, within `within` seconds. A killed process
    closes its pipes (the sentinel) before the kernel marks it exited, so this is polled briefly."""
    deadline = time.monotonic() + within
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def test_the_costliest_plots_are_asked_for_first() -> None:
    names = ["learning_curves", "metric_curves", "learning_curves_best", "grad_norms", "axis_lr", "overlay_lr",
             "overlay_width", "optimization_history", "parameter_importance", "seed_spread"]
    assert costliest_first(names) == [
        "grad_norms", "parameter_importance", "learning_curves", "metric_curves", "overlay_lr", "overlay_width",
        "learning_curves_best", "axis_lr", "optimization_history", "seed_spread"]
    assert costliest_first(names, warm=False)[:3] == ["parameter_importance", "grad_norms", "learning_curves"]


def _imported(module: str) -> bool:
    import sys

    return module in sys.modules


def test_renderers_warmed_before_the_study_draw_the_same_files(grid_run: Path, tmp_path: Path) -> None:
    at_end, warm = _copy(grid_run, tmp_path / "end"), _copy(grid_run, tmp_path / "warm")
    make_plots(at_end)
    with PlotPool(workers=2) as pool:
        pool.warm_up()
        assert pool._pool is not None and len(pool._pool._processes) == 2  # type: ignore[attr-defined]
        assert all(pool._pool.submit(_imported, "optuna.importance").result() for _ in range(4))
        pool.draw_ahead(warm)
        plots = make_plots(warm, pool.render)
    assert len(plots) >= 8
    assert _pngs(warm) == _pngs(at_end)


def _logged_warm_up(log: Path, gate: Path):  # type: ignore[no-untyped-def]
    """A renderer's warm-up that notes when it starts and ends, and lasts until `gate` exists."""
    import os

    def warm() -> None:
        with log.open("a") as out:
            out.write(f"start {time.monotonic()} {os.getpid()}\n")
        while not gate.exists():
            time.sleep(0.01)
        with log.open("a") as out:
            out.write(f"end {time.monotonic()} {os.getpid()}\n")

    return warm


def _lines(log: Path, kind: str, count: int) -> list[list[str]]:
    deadline = time.monotonic() + 60
    while True:
        lines = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
        found = [line for line in lines if line[0] == kind]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def test_renderers_warm_up_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tune` warms them on one idle core: two at once would take half of a core that trains."""
    from tunelab.report import render_pool

    log, gate = tmp_path / "warm.log", tmp_path / "gate"
    monkeypatch.setattr(render_pool, "_warm", _logged_warm_up(log, gate))
    with PlotPool(workers=2) as pool:
        pool.warm_up()
        first = _lines(log, "start", 1)
        assert len(first) == 1
        gate.touch()
        ends = _lines(log, "end", 2)
        starts = _lines(log, "start", 2)
    assert len(starts) == len(ends) == 2 and starts[0][2] != starts[1][2]  # both renderers warmed up
    (_, _, first), (_, second_start, _) = starts
    first_end = next(float(t) for _, t, pid in ends if pid == first)
    assert first_end <= float(second_start)  # the second began after the first had finished


def test_a_renderer_still_waiting_for_its_turn_draws_cold_once_plots_are_asked_for(
    grid_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tunelab.report import render_pool

    log, gate = tmp_path / "warm.log", tmp_path / "gate"
    run = _copy(grid_run, tmp_path / "run")
    monkeypatch.setattr(render_pool, "_warm", _logged_warm_up(log, gate))
    with PlotPool(workers=2) as pool:
        pool.warm_up()
        assert len(_lines(log, "start", 1)) == 1  # one renderer warms up (until the gate), the other waits
        pool.draw_ahead(run)
        gate.touch()
        wait_futures(list(pool._ahead.values()), timeout=120)
        assert len({job.result()[0] for job in pool._ahead.values()}) == 1  # every plot drawn, from one folder
    assert len(_lines(log, "start", 1)) == 1  # the waiting one skipped its warm-up and drew
