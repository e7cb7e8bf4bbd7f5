"""How much of a study's wall time tunelab spends outside training: seed 000's grid and a TPE study.

    python benchmarks/search_overhead.py [--quick] [--epochs 15] [--tpe-trials 40]

Runs seed 000's grid (California housing, lr x hidden x dropout, batch 64, Huber, Adam, 15
epochs, final retrain off) with `tunelab.tune` in this process, one trial process (n_jobs 1)
so every second is attributed here, twice: trials vectorized (the default) and one at a time
(`vectorize: off`). Then a 40-trial TPE study of the same MLP (bayes.py's space: lr, width, depth,
dropout, weight decay; `search.batch_size: auto`, n_jobs 1). `--quick`: 3 epochs, 16 TPE trials.
Timers wrap the library's own functions:

  training     time inside `fit` / `fit_group` minus the file and study writes made from inside
               them (checkpoints, epoch records, learning-curve reports)
  checkpoints  `save_checkpoint` + `prune_checkpoints`
  records      metrics.jsonl / grad_norms.jsonl / metrics.log / result.json writes
  study        ask, tell and trial-attribute writes (Optuna storage, SQLite in the run folder)
  outputs      summary.csv/md, optimization_history.json
  report       decisions.md, plots and report.html
  other        everything else: loading data, opening the study, trial folders, params.json

The overhead is wall minus training; the target is < 5% of the wall. "spare-core helpers" says
whether `tune` found a core idle for its cost-timing helper and warm plot renderers. The first study of the
process (the vectorized grid) also pays the process's one-time costs, which the later studies
find done: the `torch._dynamo` import (the first model-size check on the meta device, or the
first torch optimizer, triggers it), Optuna's first storage set-up, and the cost timings of each
shape (train/cost.py caches them per process; taken by search/cost_ahead.py's helper while the
groups train, where a core is spare). That is most of why its "other" is larger than one at a
time's (2026-12-01: ~1 s of CPU in the first `prepare`, ~2.3 s of timings, against ~0 later).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import machine, table
from bayes import SPACE as TPE_SPACE

ROOT = Path(__file__).resolve().parents[1]
TIMES: dict[str, float] = defaultdict(float)
_DEPTH: dict[str, int] = defaultdict(int)
SPARE: list[bool] = []  # per study: did tune find a core idle for its helpers (search/cost_ahead.py)
HELPERS: list[bool] = []  # [True] once the code under test has them


def timer(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, adding its wall time to TIMES[label] (outermost main-thread call only)."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return fn(*args, **kwargs)  # the background artifact writer: overlapped, not on the clock
        _DEPTH[label] += 1
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _DEPTH[label] -= 1
            if _DEPTH[label] == 0:
                TIMES[label] += time.perf_counter() - t0

    return wrapped


def install_timers() -> None:
    import optuna

    from tunelab.app import tune as tune_module
    from tunelab.runs.recorder import TrialRecorder
    from tunelab.search import group_run, study_run, trial_run, trial_writes
    from tunelab.search import summary_tables as outputs
    from tunelab.train import checkpoint
    from tunelab.train import trial as trial_module

    trial_module.fit = timer("fit", trial_module.fit)
    group_run.fit_group = timer("fit", group_run.fit_group)
    checkpoint.save_checkpoint = timer("checkpoints", checkpoint.save_checkpoint)
    checkpoint.prune_checkpoints = timer("checkpoints", checkpoint.prune_checkpoints)
    for name in ("epoch", "finish", "truncate_after"):
        setattr(TrialRecorder, name, timer("records", getattr(TrialRecorder, name)))
    trial_run.OptunaPruning.on_epoch_end = timer("study_in_fit", trial_run.OptunaPruning.on_epoch_end)
    for module in (trial_writes, trial_run, study_run):
        module.write_trial = timer("study", module.write_trial)
    study_run._ask_round = timer("study", study_run._ask_round)
    optuna.Study.tell = timer("study", optuna.Study.tell)
    outputs.write_outputs = timer("outputs", outputs.write_outputs)
    tune_module.write_evidence = timer("report", tune_module.write_evidence)
    spare = getattr(tune_module, "spare_core", None)  # absent before search/cost_ahead.py
    if spare is not None:
        def noted(*args: Any) -> bool:
            SPARE.append(spare(*args))
            return SPARE[-1]

        tune_module.spare_core = noted
        HELPERS.append(True)


def experiment(epochs: int, vectorize: str, search: dict[str, Any] | None = None) -> Any:
    """Seed 000's grid; `search` replaces its search section."""
    from tunelab.config.schema import Experiment

    return Experiment.model_validate({
        "name": f"overhead_{vectorize}",  # tpe: the TPE study
        "data": {"name": "california_housing", "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 42},
        "model": {"family": "mlp", "hidden_dim": 64, "num_layers": 2, "activation": "relu"},
        "train": {"epochs": epochs, "batch_size": 64, "optimizer": "adam", "lr": 1e-4, "loss": "huber",
                  "metrics": ["r2"], "seed": 0},
        "search": search or {"strategy": "grid", "n_jobs": 1, "vectorize": vectorize, "space": {
            "train.lr": [0.01, 0.001, 0.0001], "model.hidden_dim": [32, 64, 128], "model.dropout": [0.0, 0.3, 0.6],
        }},
        "final": {"enabled": False},
    })


def tpe_experiment(epochs: int, trials: int) -> Any:
    """The grid's MLP searched by TPE in rounds (`batch_size: auto`)."""
    return experiment(epochs, "tpe", {"strategy": "tpe", "sampler_seed": 0, "n_trials": trials, "batch_size": "auto",
                                      "n_jobs": 1, "space": TPE_SPACE})


def measure(exp: Any, trials: int, data_dir: str, out: Path) -> dict[str, float]:
    from tunelab.app.tune import tune

    TIMES.clear()
    SPARE.clear()
    t0 = time.perf_counter()
    result = tune(exp, out=out, data_dir=data_dir)
    wall = time.perf_counter() - t0
    assert result.n_complete == trials, result
    parts = dict(TIMES)
    inside = parts.get("checkpoints", 0.0) + parts.get("records", 0.0) + parts.get("study_in_fit", 0.0)
    parts["training"] = parts.pop("fit", 0.0) - inside
    parts["study"] = parts.get("study", 0.0) + parts.pop("study_in_fit", 0.0)
    parts["other"] = wall - sum(parts.values())
    parts["wall"] = wall
    if HELPERS:
        parts["helpers"] = float(any(SPARE))
    return parts


def print_table(runs: dict[str, dict[str, float]]) -> None:
    labels = ["training", "checkpoints", "records", "study", "outputs", "report", "other", "wall"]
    rows = []
    for label in labels:
        row = [label]
        for parts in runs.values():
            row += [f"{parts.get(label, 0.0):.2f}", f"{100 * parts.get(label, 0.0) / parts['wall']:.1f}%"]
        rows.append(row)
    print(table(["part", *(h for name in runs for h in (f"{name} s", "share"))], rows))
    print()
    for name, parts in runs.items():
        share = 100 * (parts["wall"] - parts["training"]) / parts["wall"]
        helpers = "" if "helpers" not in parts else "; spare-core helpers " + (
            "on" if parts["helpers"] else "off (no core measured idle)")
        print(f"{name}: {share:.1f}% of the wall outside training (target < 5%){helpers}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 epochs, 16 TPE trials")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--tpe-trials", type=int, default=None, help="trials of the TPE study (40; --quick 16)")
    parser.add_argument("--data-dir", default=os.environ.get("TUNELAB_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    args = parser.parse_args()
    epochs = args.epochs or (3 if args.quick else 15)
    tpe_trials = args.tpe_trials or (16 if args.quick else 40)
    torch.set_num_threads(1)
    install_timers()
    info = machine()
    print(f"# search_overhead.py  seed 000 grid: 27 trials, batch 64, {epochs} epochs, n_jobs 1; "
          f"TPE: {tpe_trials} trials, batch_size auto")
    print(f"# {info['cpu']}, nproc={info['nproc']}, torch {info['torch']}, python {info['python']}, {info['date']}")
    print()
    with tempfile.TemporaryDirectory() as tmp:
        grid = {name: measure(experiment(epochs, v), 27, args.data_dir, Path(tmp) / v)
                for name, v in (("vectorized", "auto"), ("one at a time", "off"))}
        tpe = {f"tpe {tpe_trials}": measure(tpe_experiment(epochs, tpe_trials), tpe_trials, args.data_dir,
                                            Path(tmp) / "tpe")}
    print_table(grid)
    print_table(tpe)


if __name__ == "__main__":
    main()
