"""A TPE study on California housing: the Optuna user's way against tunelab, one at a time and batched.

    python benchmarks/bayes.py [--trials 64] [--epochs 15] [--seeds 3] [--quick] [--skip-ray] [--tunelab-only]

Seed 000's MLP (Huber loss, Adam, batch 64); searched: lr (log 1e-4..1e-2), width (32, 64,
128), depth (1..3), dropout (0..0.5) and weight decay (log 1e-6..1e-2). The objective is the
best validation Huber loss over the epochs, on the same standardized tensors for everyone.

  optuna (2 procs)     what an Optuna user runs: TPESampler (Optuna 5's constant liar for trials in
                       flight), two processes sharing a JournalStorage file, each training its
                       trials with its own DataLoader loop (seed 000's hand-written loop)
  tunelab 1-at-a-time  `tunelab tune` with search.batch_size 1 (one process, one trial per ask)
  tunelab batched      `tunelab tune` with search.batch_size auto (rounds trained in vectorized
                       groups across the trial processes)

  ray tune (2 trials)  what a Ray Tune user runs: OptunaSearch with the same TPE seed, two concurrent
                       trials of the same hand-written loop (`--skip-ray` leaves it out)

Per sampler seed: wall time, best value, and the wall time each needed to reach the one-at-a-time
run's final best (from each trial's completion time; "-" when it never did). Mean +- std over the
seeds; ratios against the Optuna user's wall time (with `--tunelab-only`, which runs tunelab's two
competitors alone, against tunelab one at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine, table

SPACE = {
    "train.lr": {"low": 1e-4, "high": 1e-2, "log": True},
    "model.hidden_dim": [32, 64, 128],
    "model.num_layers": {"low": 1, "high": 3},
    "model.dropout": {"low": 0.0, "high": 0.5},
    "train.weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
}
DATA = {"name": "california_housing", "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 42, "standardize": True}
BATCH = 64


def experiment(name: str, trials: int, epochs: int, seed: int, batch_size: str | int) -> Any:
    from tunelab.config.load import load_experiment

    return load_experiment(None, raw={
        "name": name,
        "data": DATA,
        "model": {"family": "mlp", "hidden_dim": 64, "num_layers": 2, "activation": "relu"},
        "train": {"epochs": epochs, "batch_size": BATCH, "optimizer": "adam", "loss": "huber", "seed": 0,
                  "checkpoints": {"keep_last": 1, "keep_best": False}},
        "search": {"strategy": "tpe", "sampler_seed": seed, "n_trials": trials, "batch_size": batch_size,
                   "n_jobs": 1 if batch_size == 1 else "auto", "space": SPACE},
        "final": {"enabled": False},
    })


def run_tunelab(trials: int, epochs: int, seed: int, batch_size: str | int, root: Path) -> dict[str, Any]:
    import optuna

    from tunelab.app.tune import tune

    name = f"bayes_{batch_size}_{seed}"
    t0 = time.time()
    tune(experiment(name, trials, epochs, seed, batch_size), out=root / name, write_outputs=False)
    wall = time.time() - t0
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{root / name / 'study.db'}")
    return {"wall": wall, "curve": _curve(study, t0)}


def _curve(study: Any, t0: float) -> list[tuple[float, float]]:
    """(seconds since start, value) of every complete trial, in completion order."""
    done = [t for t in study.get_trials(deepcopy=False) if t.value is not None and t.datetime_complete]
    return sorted((t.datetime_complete.timestamp() - t0, float(t.value)) for t in done)


def hand_trial(data: Any, p: dict[str, Any], epochs: int, report: Any = None) -> float:
    """Seed 000's hand-written DataLoader loop for one configuration: the best validation Huber loss."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    layers: list[nn.Module] = []
    width_in = data.train.x.shape[1]
    for _ in range(p["num_layers"]):
        layers += [nn.Linear(width_in, p["hidden_dim"]), nn.ReLU(), nn.Dropout(p["dropout"])]
        width_in = p["hidden_dim"]
    model = nn.Sequential(*layers, nn.Linear(width_in, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    loss_fn = nn.HuberLoss()
    train = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=BATCH, shuffle=True)
    val = DataLoader(TensorDataset(data.val.x, data.val.y), batch_size=BATCH)
    best = float("inf")
    for _ in range(epochs):
        model.train()
        for xb, yb in train:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
        model.eval()
        total = 0.0
        with torch.no_grad():
            for xb, yb in val:
                total += loss_fn(model(xb), yb).item() * len(xb)
        best = min(best, total / len(data.val.y))
        if report is not None:
            report(best)
    return best


def optuna_worker(journal: str, name: str, trials: int, epochs: int, seed: int) -> None:
    """Child mode: one of the Optuna user's two processes."""
    import optuna
    import torch

    from tunelab.config.schema import DataSection, TaskSection
    from tunelab.data import load_dataset

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_dataset(DataSection(**DATA), TaskSection())
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.TPESampler(seed=seed))

    def objective(trial: optuna.Trial) -> float:
        return hand_trial(data, {
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "hidden_dim": trial.suggest_categorical("hidden_dim", [32, 64, 128]),
            "num_layers": trial.suggest_int("num_layers", 1, 3),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        }, epochs)

    study.optimize(objective, n_trials=trials)


def run_optuna(trials: int, epochs: int, seed: int, root: Path) -> dict[str, Any]:
    import optuna

    journal, name = str(root / f"optuna_{seed}.log"), f"optuna_{seed}"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    optuna.create_study(study_name=name, storage=storage, sampler=optuna.samplers.TPESampler(seed=seed))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.time()
    halves = [trials // 2, trials - trials // 2]  # n_trials per process; each process seeds its own sampler
    procs = [subprocess.Popen([sys.executable, __file__, "--optuna-worker", journal, name, str(n), str(epochs),
                               str(seed * 2 + i)], env=env) for i, n in enumerate(halves)]
    for proc in procs:
        if proc.wait() != 0:
            raise RuntimeError(f"optuna worker exited with {proc.returncode}")
    wall = time.time() - t0
    return {"wall": wall, "curve": _curve(optuna.load_study(study_name=name, storage=storage), t0)}


def run_ray(trials: int, epochs: int, seed: int, root: Path) -> dict[str, Any]:
    """What a Ray Tune user runs: OptunaSearch (TPE, same seed) and two concurrent trials of the hand loop."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    def trainable(config: dict[str, Any]) -> None:
        import torch

        from tunelab.config.schema import DataSection, TaskSection
        from tunelab.data import load_dataset

        torch.set_num_threads(1)
        data = load_dataset(DataSection(**DATA), TaskSection())
        hand_trial(data, config, epochs, report=lambda best: tune.report({"val_loss": best}))

    space = {"lr": tune.loguniform(1e-4, 1e-2), "hidden_dim": tune.choice([32, 64, 128]),
             "num_layers": tune.randint(1, 4), "dropout": tune.uniform(0.0, 0.5),
             "weight_decay": tune.loguniform(1e-6, 1e-2)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        t0 = time.time()
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space=space,
            tune_config=tune.TuneConfig(
                metric="val_loss", mode="min", num_samples=trials, max_concurrent_trials=2,
                search_alg=OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed))),
            run_config=tune.RunConfig(storage_path=str(root / f"ray_{seed}"), verbose=0),
        )
        results = tuner.fit()
        wall = time.time() - t0
        curve = sorted((float(r.metrics["timestamp"]) - t0, float(r.metrics_dataframe["val_loss"].min()))
                       for r in results if r.metrics and "val_loss" in r.metrics)
        return {"wall": wall, "curve": curve}
    finally:
        ray.shutdown()


def _reach(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, v in curve if v <= target + 1e-12), None)


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} +- {std:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3, help="sampler seeds (mean +- std over them)")
    parser.add_argument("--quick", action="store_true", help="16 trials of 3 epochs, one seed")
    parser.add_argument("--skip-ray", action="store_true", help="leave out the Ray Tune competitor")
    parser.add_argument("--tunelab-only", action="store_true",
                        help="only tunelab one at a time and batched (ratios against one at a time)")
    parser.add_argument("--optuna-worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.optuna_worker:
        journal, name, n, epochs, seed = args.optuna_worker
        optuna_worker(journal, name, int(n), int(epochs), int(seed))
        return 0
    trials, epochs, seeds = (16, 3, 1) if args.quick else (args.trials, args.epochs, args.seeds)
    info = machine()
    print(f"# bayes.py  trials={trials} epochs={epochs} seeds={seeds}")
    print(f"# {info['cpu']}, nproc={info['nproc']}, torch {info['torch']}, {info['date']}")
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for seed in range(seeds):
            if not args.tunelab_only:
                runs.setdefault("optuna (2 procs)", []).append(run_optuna(trials, epochs, seed, root))
            if not args.skip_ray and not args.tunelab_only:
                runs.setdefault("ray tune (2 trials)", []).append(run_ray(trials, epochs, seed, root))
            runs.setdefault("tunelab 1-at-a-time", []).append(run_tunelab(trials, epochs, seed, 1, root))
            runs.setdefault("tunelab batched", []).append(run_tunelab(trials, epochs, seed, "auto", root))
    rows = []
    base_name = "tunelab 1-at-a-time" if args.tunelab_only else "optuna (2 procs)"
    base_wall = [r["wall"] for r in runs[base_name]]
    for name, per_seed in runs.items():
        walls = [r["wall"] for r in per_seed]
        bests = [min(v for _, v in r["curve"]) for r in per_seed]
        reach = []
        for seed, r in enumerate(per_seed):
            target = min(v for _, v in runs["tunelab 1-at-a-time"][seed]["curve"])
            reach.append(_reach(r["curve"], target))
        reached = [t for t in reach if t is not None]
        ratio = statistics.median(b / w for b, w in zip(base_wall, walls, strict=True))
        rows.append([name, f"{statistics.mean(walls):.1f}", f"{ratio:.2f}x", _mean_std(bests),
                     f"{statistics.mean(reached):.1f} ({len(reached)}/{len(reach)})" if reached else "-"])
    speed = "speed vs 1-at-a-time" if args.tunelab_only else "speed vs optuna"
    print(table(["competitor", "wall s (mean)", speed, "best val Huber (mean +- std)",
                 "s to reach 1-at-a-time best (reached)"], rows))
    print(json.dumps({name: [r["wall"] for r in v] for name, v in runs.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
