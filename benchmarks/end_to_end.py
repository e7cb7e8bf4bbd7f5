"""Seed 000's whole grid, four ways: by hand, with Optuna, with Ray Tune, and with `tunelab tune`.

    python benchmarks/end_to_end.py [--quick] [--skip-ray]

The study: California housing (split seed 42, 60/20/20, features standardized on train),
MLP 8-H-H-1 (ReLU, dropout after the first hidden layer), Huber loss, Adam, batch 64,
15 epochs; grid lr {1e-2, 1e-3, 1e-4} x hidden {32, 64, 128} x dropout {0, 0.3, 0.6} = 27
configurations, each scored by its best epoch's validation Huber loss.

  hand      the seed's way: one process, its DataLoader loop per configuration with the evidence
            it keeps (`.item()` per batch, train and validation Huber and R² every epoch in a
            metrics log, per-layer gradient norms every epoch, a checkpoint every epoch with the
            last five kept plus the best model, a test evaluation at the end, as seed 000
            describes; tunelab keeps the same kinds of evidence); the 27 runs one after another.
  optuna    an Optuna user's way: GridSampler over the same grid and the same hand loop as the
            objective, two worker processes sharing one JournalFileStorage file.
  ray       a Ray Tune user's way: `tune.grid_search` over the grid, the hand loop as a function
            trainable, one CPU per trial (two trials at once on two cores); needs the `bench`
            extra (`pip install -e .[bench]`); skipped with a note when Ray is missing.
  tunelab   `tunelab tune` on the equivalent experiment file, everything default (vectorized
            groups, one trial process per core, trial folders, checkpoints, summary, report);
            the final retrain is switched off because the others have none.

Every competitor gets one torch thread per process. Wall time includes process start-up and
data loading for all four. Prints wall seconds, the ratio of each to tunelab, and the best
configuration each found with its validation loss.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import machine, table
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

LRS = (1e-2, 1e-3, 1e-4)
HIDDEN = (32, 64, 128)
DROPOUT = (0.0, 0.3, 0.6)
BATCH = 64
ROOT = Path(__file__).resolve().parents[1]


def grid() -> list[dict[str, Any]]:
    return [{"lr": lr, "hidden": h, "dropout": d} for lr in LRS for h in HIDDEN for d in DROPOUT]


def load_data(data_dir: str | None) -> Any:
    from tunelab.config.schema import DataSection, TaskSection
    from tunelab.data import load_dataset

    section = DataSection(name="california_housing", val_fraction=0.2, test_fraction=0.2, split_seed=42)
    return load_dataset(section, TaskSection(), data_dir=data_dir)


def _r2(pred: torch.Tensor, target: torch.Tensor) -> float:
    ss_res = float(((target - pred) ** 2).sum())
    ss_tot = float(((target - target.mean()) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0


def hand_loop(
    data: Any, lr: float, hidden: int, dropout: float, epochs: int, report: Any = None, folder: Path | None = None
) -> float:
    """The loop seed 000 writes by hand, with the evidence it keeps (the same kinds tunelab
    keeps): train and validation Huber and R² every epoch in a metrics log, per-layer gradient
    norms every epoch, a checkpoint every epoch (the last five kept) plus the best model, and a
    test evaluation at the end. Returns the best epoch's validation Huber loss."""
    if folder is None:  # Optuna's and Ray's objectives: a scratch folder per trial
        with tempfile.TemporaryDirectory(prefix="hand_") as scratch:
            return hand_loop(data, lr, hidden, dropout, epochs, report, Path(scratch))
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(8, hidden), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)]
    model = nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.HuberLoss()
    train = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=BATCH, shuffle=True)
    val = DataLoader(TensorDataset(data.val.x, data.val.y), batch_size=BATCH)
    test = DataLoader(TensorDataset(data.test.x, data.test.y), batch_size=BATCH)

    def evaluate(loader: DataLoader) -> tuple[float, float]:
        model.eval()
        total, preds, targets = 0.0, [], []
        with torch.no_grad():
            for xb, yb in loader:
                out = model(xb)
                total += loss_fn(out, yb).item() * len(xb)
                preds.append(out)
                targets.append(yb)
        return total / len(loader.dataset), _r2(torch.cat(preds), torch.cat(targets))

    best = float("inf")
    with (folder / "metrics_output.log").open("w") as metrics_log, (folder / "grad_norm_output.log").open("w") as grads:
        for epoch in range(1, epochs + 1):
            model.train()
            total, preds, targets = 0.0, [], []
            for xb, yb in train:
                optimizer.zero_grad()
                out = model(xb)
                loss = loss_fn(out, yb)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(xb)
                preds.append(out.detach())
                targets.append(yb)
            for name, p in model.named_parameters():
                grads.write(f"Epoch: {epoch}, grad_norm/{name}: {p.grad.norm().item()}\n")
            train_loss, train_r2 = total / len(data.train.y), _r2(torch.cat(preds), torch.cat(targets))
            val_loss, val_r2 = evaluate(val)
            metrics_log.write(f"Epoch {epoch}:\n")
            if val_loss < best:
                best = val_loss
                torch.save(model.state_dict(), folder / "checkpoints" / "best.pt")
                metrics_log.write(f"New best model at epoch {epoch} (val_loss={val_loss:.4f})\n")
            metrics_log.write(f"Train - Huber: {train_loss:.4f}, R2-score: {train_r2:.4f}\n")
            metrics_log.write(f"Validation - Huber: {val_loss:.4f}, R2-score: {val_r2:.4f}\n")
            torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()},
                       folder / "checkpoints" / f"epoch_{epoch}.pt")
            old = folder / "checkpoints" / f"epoch_{epoch - 5}.pt"
            if old.exists():
                old.unlink()
            if report is not None:
                report(epoch, val_loss)
        test_loss, test_r2 = evaluate(test)
        metrics_log.write(f"Test - Huber: {test_loss:.4f}, R2-score: {test_r2:.4f}\n")
    return best


# ----------------------------------------------------------------------------- competitors


def run_hand(epochs: int, data_dir: str | None) -> dict[str, Any]:
    data = load_data(data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        scores = [(hand_loop(data, p["lr"], p["hidden"], p["dropout"], epochs, folder=Path(tmp) / str(i)), p)
                  for i, p in enumerate(grid())]
    value, params = min(scores, key=lambda s: s[0])
    return {"best": params, "value": value}


def optuna_worker(journal: str, epochs: int, data_dir: str | None) -> None:
    """One Optuna worker process (started by `run_optuna`)."""
    import optuna

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_data(data_dir)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    space = {"lr": list(LRS), "hidden": list(HIDDEN), "dropout": list(DROPOUT)}
    study = optuna.create_study(
        study_name="e2e", storage=storage, sampler=optuna.samplers.GridSampler(space, seed=0), load_if_exists=True
    )

    def objective(trial: optuna.trial.Trial) -> float:
        lr = trial.suggest_categorical("lr", list(LRS))
        hidden = trial.suggest_categorical("hidden", list(HIDDEN))
        dropout = trial.suggest_categorical("dropout", list(DROPOUT))
        return hand_loop(data, lr, hidden, dropout, epochs)

    study.optimize(objective, n_trials=len(grid()))


def run_optuna(epochs: int, data_dir: str | None, tmp: Path) -> dict[str, Any]:
    import optuna

    journal = str(tmp / "optuna.journal")
    cmd = [sys.executable, __file__, "--optuna-worker", journal, "--epochs", str(epochs)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, env=env) for _ in range(2)]
    if any(p.wait() for p in procs):
        raise RuntimeError("an optuna worker failed")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.load_study(study_name="e2e", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return {"best": study.best_params, "value": study.best_value, "trials": len(done)}


def run_ray(epochs: int, data_dir: str | None, tmp: Path) -> dict[str, Any]:
    import ray
    from ray import tune

    def trainable(config: dict[str, Any]) -> None:
        torch.set_num_threads(1)
        data = load_data(config["data_dir"])
        best = hand_loop(data, config["lr"], config["hidden"], config["dropout"], config["epochs"],
                         report=lambda epoch, value: tune.report({"val_loss": value}))
        tune.report({"val_loss": best, "done": True})

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={
                "lr": tune.grid_search(list(LRS)),
                "hidden": tune.grid_search(list(HIDDEN)),
                "dropout": tune.grid_search(list(DROPOUT)),
                "epochs": epochs,
                "data_dir": data_dir,
            },
            tune_config=tune.TuneConfig(metric="val_loss", mode="min"),
            run_config=tune.RunConfig(storage_path=str(tmp / "ray"), verbose=0),
        )
        results = tuner.fit()
        best = results.get_best_result(metric="val_loss", mode="min", scope="all")
        frame = best.metrics_dataframe
        return {
            "best": {k: best.config[k] for k in ("lr", "hidden", "dropout")},
            "value": float(frame["val_loss"].min()),
            "trials": len(results),
        }
    finally:
        ray.shutdown()


def experiment_yaml(epochs: int) -> str:
    return f"""name: e2e_seed000
data: {{name: california_housing, val_fraction: 0.2, test_fraction: 0.2, split_seed: 42}}
model: {{family: mlp, hidden_dim: 64, num_layers: 2, activation: relu}}
train: {{epochs: {epochs}, batch_size: {BATCH}, optimizer: adam, lr: 0.0001, loss: huber, seed: 0}}
search:
  strategy: grid
  space:
    train.lr: {list(LRS)}
    model.hidden_dim: {list(HIDDEN)}
    model.dropout: {list(DROPOUT)}
  objective: {{metric: val_loss}}
final: {{enabled: false}}
"""


def run_tunelab(epochs: int, data_dir: str | None, tmp: Path) -> dict[str, Any]:
    path = tmp / "e2e.yaml"
    path.write_text(experiment_yaml(epochs), encoding="utf-8")
    cmd = [sys.executable, "-m", "tunelab", "tune", str(path), "--out", str(tmp / "tunelab"), "--quiet", "--json"]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    result = json.loads(out.stdout)
    best = result["best_params"]
    return {"best": {"lr": best["train.lr"], "hidden": best["model.hidden_dim"], "dropout": best["model.dropout"]},
            "value": result["best_value"], "trials": result["n_complete"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 epochs instead of 15")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--data-dir", default=os.environ.get("TUNELAB_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--optuna-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    epochs = args.epochs or (3 if args.quick else 15)
    if args.optuna_worker:
        optuna_worker(args.optuna_worker, epochs, args.data_dir)
        return
    torch.set_num_threads(1)
    info = machine()
    print(f"# end_to_end.py  seed 000 grid: 27 configurations, batch {BATCH}, {epochs} epochs")
    print(f"# {info['cpu']}, nproc={info['nproc']}, torch {info['torch']}, python {info['python']}, {info['date']}")
    print()
    runs: dict[str, tuple[float, dict[str, Any] | None, str]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        competitors = {
            "hand (sequential DataLoader loop)": lambda: run_hand(epochs, args.data_dir),
            "optuna (GridSampler, 2 procs, journal file)": lambda: run_optuna(epochs, args.data_dir, tmp),
            "ray tune (grid_search, 1 CPU per trial)": lambda: run_ray(epochs, args.data_dir, tmp),
            "tunelab tune": lambda: run_tunelab(epochs, args.data_dir, tmp),
        }
        for name, fn in competitors.items():
            if name.startswith("ray") and args.skip_ray:
                runs[name] = (float("nan"), None, "skipped (--skip-ray)")
                continue
            t0 = time.perf_counter()
            try:
                result: dict[str, Any] | None = fn()
                note = ""
            except ImportError as exc:
                result, note = None, f"skipped: {exc.name} is not installed (pip install -e .[bench])"
            runs[name] = (time.perf_counter() - t0, result, note)
    ours = runs["tunelab tune"][0]
    rows = []
    for name, (wall, result, note) in runs.items():
        if result is None:
            rows.append([name, "-", "-", note, "-"])
            continue
        best = result["best"]
        config = f"lr {best['lr']:g}, hidden {best['hidden']}, dropout {best['dropout']:g}"
        rows.append([name, f"{wall:.1f}", f"{wall / ours:.2f}x", config, f"{result['value']:.4f}"])
    print(table(["competitor", "wall s", "wall / tunelab", "best configuration", "best val Huber"], rows))
    print()
    hand = runs["hand (sequential DataLoader loop)"][0]
    others = [runs[n][0] for n in runs if not n.startswith(("hand", "tunelab")) and runs[n][1] is not None]
    print(f"tunelab vs hand: {hand / ours:.2f}x faster (target >= 5x)")
    if others:
        print(f"tunelab vs fastest of Optuna/Ray: {min(others) / ours:.2f}x faster (target >= 2.5x)")


if __name__ == "__main__":
    main()
