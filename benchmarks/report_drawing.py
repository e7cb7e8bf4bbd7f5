"""The report's plots after the last trial: drawing CPU per plot and the report phase, two source trees.

    cd benchmarks; PYTHONPATH=<src> python report_drawing.py RUN_DIR [RUN_DIR ...] --before-src OLD/src
        [--pairs 3] [--reps 3]

For finished run folders (seed 000's grid, a 40-trial TPE study: make them with `tunelab tune`),
alternates the two trees (`--before-src`, then this process's PYTHONPATH), each in fresh
processes, `--pairs` times:

  warm    every plot drawn in one process after a warm-up round (imports, fonts, the renderers'
          `_warm`), `time.process_time` per plot, median of `--reps` rounds
  cold    the first parameter-importance plot of a process that has `tune`'s imports and has read
          the study from study.db (a renderer forked after the last trial when no core was idle:
          it warms up inside the report)
  phase   what `tune` does after the last trial when a core was idle: `PlotPool.warm_up()`, 3 s,
          then `draw_ahead` + `write_evidence(render)`, wall seconds (writes the folder's report)

Prints one table per folder: medians of the pairs, before / after and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _warm(folder: str, reps: int) -> dict[str, float]:
    import gc

    from tunelab.report import render_pool
    from tunelab.report.plots import page_drafts, render_one
    from tunelab.report.runinfo import ReportRun

    render_pool._warm()
    gc.freeze()  # as the renderers do
    seconds: dict[str, list[float]] = {}
    for round_ in range(reps + 1):
        for name, _, draw in page_drafts(ReportRun(folder)):
            t0 = time.process_time()
            render_one(name, draw)
            if round_:  # round 0 warms up (records read, first figure of each kind)
                seconds.setdefault(name, []).append(time.process_time() - t0)
    return {name: statistics.median(values) for name, values in seconds.items()}


def _cold(folder: str) -> dict[str, float]:
    import optuna

    from tunelab.app import tune  # noqa: F401 - what a renderer forked from `tune` has imported
    from tunelab.report.plots import page_drafts, render_one
    from tunelab.report.runinfo import ReportRun

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{Path(folder, 'study.db')}")  # `tune` ran the study on it
    optuna.load_study(study_name=storage.get_all_studies()[0].study_name, storage=storage).get_trials()
    drafts = {name: draw for name, _, draw in page_drafts(ReportRun(folder))}
    t0 = time.process_time()
    render_one("parameter_importance", drafts["parameter_importance"])
    return {"cold importance": time.process_time() - t0}


def _phase(folder: str) -> dict[str, float]:
    from tunelab.app.evidence import write_evidence
    from tunelab.report.render_pool import PlotPool

    with PlotPool() as pool:
        pool.warm_up()
        time.sleep(3.0)  # the study trains while the renderers warm up
        t0 = time.perf_counter()
        pool.draw_ahead(Path(folder))
        write_evidence(Path(folder), pool.render)
        return {"report phase wall": time.perf_counter() - t0}


def _worker(mode: str, folder: str, reps: int) -> None:
    found = {"warm": lambda: _warm(folder, reps), "cold": lambda: _cold(folder), "phase": lambda: _phase(folder)}
    print(json.dumps(found[mode]()))


def _run(src: str, mode: str, folder: str, reps: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", mode, folder, "--reps", str(reps)],
                         env=env, capture_output=True, text=True, check=True, cwd=HERE).stdout
    return json.loads(out.strip().splitlines()[-1])


def _side(src: str, folder: str, reps: int) -> dict[str, float]:
    found = _run(src, "warm", folder, reps)
    found["all plots, warm CPU"] = sum(found.values())
    found.update(_run(src, "cold", folder, reps))
    found.update(_run(src, "phase", folder, reps))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--before-src", help="the other tree's src/ (required unless --worker)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--worker", choices=["warm", "cold", "phase"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.folders[0], args.reps)
        return
    if not args.before_src:
        parser.error("--before-src is required")
    from _common import machine, table

    after_src = os.environ.get("PYTHONPATH", "")
    print(json.dumps(machine()))
    for folder in args.folders:
        runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        for pair in range(args.pairs):
            for side, src in (("before", args.before_src), ("after", after_src)):
                load = os.getloadavg()[0]
                runs[side].append(_side(src, folder, args.reps))
                last = runs[side][-1]
                print(f"{folder} pair {pair + 1} {side}: load {load:.2f}, warm CPU "
                      f"{last['all plots, warm CPU']:.3f} s, cold importance {last['cold importance']:.3f} s, "
                      f"phase {last['report phase wall']:.3f} s", flush=True)
        print(f"\n{folder}: medians of {args.pairs} pairs (CPU s; the phase in wall s)\n")
        print(table(["", "before", "after", "after / before"], _rows(runs)))
        print()


def _rows(runs: dict[str, list[dict[str, float]]]) -> list[list[Any]]:
    rows = []
    names = sorted(runs["before"][0], key=lambda n: -statistics.median(r[n] for r in runs["before"]))
    for name in names:
        before = statistics.median(r[name] for r in runs["before"])
        after = statistics.median(r.get(name, 0.0) for r in runs["after"])
        rows.append([name, f"{before:.3f}", f"{after:.3f}", f"{after / before:.2f}" if before else "-"])
    return rows


if __name__ == "__main__":
    main()
