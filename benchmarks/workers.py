"""Shared-study throughput: 1, 2 and 4 `tunelab worker` processes on one PostgreSQL study.

1. Real objective: a 16-point grid (8 with --quick) on the built-in diabetes data, each trial
   about a second of training (150 epochs at batch 8, `vectorize: off` so every trial is one
   unit of work). For N in 1, 2, 4, N worker processes drain the same study; the first starts
   alone (it creates the study and queues the grid), the rest join ~2 s later. Reports wall
   time (process start-up included), steady-state trials/s (trials started once every worker was
   training, over the time from then to the last trial's end, from the study's own timestamps)
   and the speedup over N=1 of both. Each run's study
   is deleted afterwards.
2. Coordination overhead: plain Optuna ask/tell around `time.sleep(0.05)`, on PostgreSQL and on
   SQLite; overhead per trial = (wall - n * 0.05) / n.

    python benchmarks/workers.py [--quick] [--storage postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
from _common import machine, table

from tunelab.search.storage import make_storage

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SLEEP_S = 0.05
STARTUP_GAP_S = 2.0


def experiment_yaml(name: str, lrs: list[float]) -> str:
    lr_list = ", ".join(str(lr) for lr in lrs)
    return f"""name: {name}
data:
  name: diabetes
  standardize: true
  standardize_target: true
model:
  family: mlp
  hidden_dims: [32]
  activation: relu
train:
  epochs: 150
  batch_size: 8
  optimizer: adam
  lr: 0.001
  loss: huber
  seed: 0
search:
  strategy: grid
  vectorize: "off"
  n_jobs: 1
  space:
    train.lr: [{lr_list}]
    model.hidden_dims: [[16], [32]]
    model.activation: [relu, tanh]
  objective:
    metric: val_loss
final:
  enabled: false
"""


def run_workers(n_workers: int, url: str, lrs: list[float], tmp: Path) -> tuple[float, float]:
    """Wall seconds for `n_workers` worker processes to drain a fresh grid study, and the
    steady-state time per grid: seconds per trial while all of them were training (from the moment
    every worker had started a trial to the last trial's end), times the grid size."""
    name = f"bench_workers_{n_workers}_{uuid.uuid4().hex[:8]}"
    exp = tmp / f"{name}.yaml"
    exp.write_text(experiment_yaml(name, lrs))
    out = tmp / name
    cmd = [sys.executable, "-m", "tunelab", "worker", str(exp), "--storage", url, "--out", str(out), "--quiet"]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL)]
    if n_workers > 1:
        time.sleep(STARTUP_GAP_S)
        procs += [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(n_workers - 1)]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - t0
    window = float("nan")
    try:
        study = optuna.load_study(study_name=name, storage=make_storage(url))
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        done = len(complete)
        if complete:
            # steady state: from the moment every worker has started a trial to the last trial end
            firsts = {}
            for t in sorted(complete, key=lambda t: t.datetime_start):
                firsts.setdefault(t.user_attrs.get("pid"), t.datetime_start)
            all_in = max(firsts.values())
            end = max(t.datetime_complete for t in complete)
            inside = sum(1 for t in complete if t.datetime_start >= all_in)
            window = (end - all_in).total_seconds() / max(inside, 1) * len(complete)
        optuna.delete_study(study_name=name, storage=make_storage(url))
    except KeyError:
        done = 0
    if any(codes) or done != 2 * 2 * len(lrs):
        print(f"warning: N={n_workers} exit codes {codes}, {done} complete trials", file=sys.stderr)
    return wall, window


def sleep_overhead_ms(storage: optuna.storages.BaseStorage, n_trials: int) -> float:
    """Milliseconds per trial spent outside the objective's sleep (ask + tell + study creation)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"bench_sleep_{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    study = optuna.create_study(study_name=name, storage=storage)
    for _ in range(n_trials):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        time.sleep(SLEEP_S)
        study.tell(trial, x)
    wall = time.perf_counter() - t0
    optuna.delete_study(study_name=name, storage=storage)
    return (wall - n_trials * SLEEP_S) / n_trials * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8-point grid, 20 sleep trials")
    parser.add_argument("--storage", default=DEFAULT_URL)
    args = parser.parse_args()

    lrs = [0.01, 0.003] if args.quick else [0.03, 0.01, 0.003, 0.001]
    n_grid = 4 * len(lrs)
    n_sleep = 20 if args.quick else 50
    info = machine()
    print(f"# workers.py  grid={n_grid} sleep_trials={n_sleep} storage={args.storage}")
    print(f"# {info['cpu']}, nproc={info['nproc']}, torch {info['torch']}, python {info['python']}, {info['date']}")
    print("# diabetes MLP, epochs 150, batch 8, vectorize off, final disabled; N workers = 1 first, rest 2 s later")
    print()

    with tempfile.TemporaryDirectory() as tmp:
        runs = {n: run_workers(n, args.storage, lrs, Path(tmp)) for n in (1, 2, 4)}
        walls = {n: wall for n, (wall, _) in runs.items()}
        windows = {n: window for n, (_, window) in runs.items()}
        rows = [
            [n, n_grid, f"{walls[n]:.1f}", f"{walls[1] / walls[n]:.2f}x", f"{windows[n]:.1f}",
             f"{n_grid / windows[n]:.2f}", f"{windows[1] / windows[n]:.2f}x"]
            for n in (1, 2, 4)
        ]
        print(table(["workers", "trials", "wall s", "wall speedup", "steady s per grid", "trials/s",
                     "trials/s speedup"], rows))
        print()

        pg_ms = sleep_overhead_ms(make_storage(args.storage), n_sleep)
        sqlite_ms = sleep_overhead_ms(make_storage(f"sqlite:///{tmp}/sleep.db"), n_sleep)
    print(
        table(
            ["storage", "sleep trials", "overhead ms/trial"],
            [["postgresql", n_sleep, f"{pg_ms:.1f}"], ["sqlite (temp file)", n_sleep, f"{sqlite_ms:.1f}"]],
        )
    )
    print()
    print(f"2 workers: {windows[1] / windows[2]:.2f}x the trials/s of 1 (target >= 1.8x on 2 cores); "
          f"wall with start-up {walls[1] / walls[2]:.2f}x")


if __name__ == "__main__":
    main()
