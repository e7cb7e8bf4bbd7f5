"""What pruning saves: the same TPE study on California housing with `pruner: none` and `pruner: asha`.

    python benchmarks/pruning.py [--trials 40] [--epochs 15] [--quick] [--data-dir DIR]

Both studies: TPE (sampler seed 0), MLP 8-64-64-1, Adam, Huber, batch 256, searching
    train.lr            log 1e-5 .. 1e-1
    model.dropout       0 .. 0.5
    train.weight_decay  log 1e-6 .. 1e-2
each into its own temp run folder through `tunelab.app.tune.tune(..., run_final=False)`
(one process, SQLite study, one torch thread). Reported side by side: epochs trained (sum of
`epochs_run` over the trial folders' result.json), wall time of the whole `tune` call, best
validation loss (the study's best value), trial states, and the ratios asha / none.

`--quick`: 10 trials of 5 epochs (under a minute on a 2-core VM).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from _common import machine, table, timed

from tunelab.app.tune import tune
from tunelab.config.load import load_experiment
from tunelab.search.results import TuneResult

PRUNERS = ("none", "asha")


def experiment(pruner: str, trials: int, epochs: int) -> Any:
    raw = {
        "name": f"pruning_{pruner}",
        "data": {
            "name": "california_housing",
            "val_fraction": 0.2,
            "test_fraction": 0.2,
            "split_seed": 42,
            "standardize": True,
        },
        "model": {"family": "mlp", "hidden_dims": [64, 64], "activation": "relu"},
        "train": {
            "epochs": epochs,
            "batch_size": 256,
            "optimizer": "adam",
            "loss": "huber",
            "metrics": ["r2"],
            "seed": 0,
            "threads": 1,
        },
        "search": {
            "strategy": "tpe",
            "sampler_seed": 0,
            "n_trials": trials,
            "pruner": pruner,
            "batch_size": 1,  # one trial at a time in both studies: the comparison is pruning alone
            "space": {
                "train.lr": {"low": 1e-5, "high": 1e-1, "log": True},
                "model.dropout": {"low": 0.0, "high": 0.5},
                "train.weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
            },
        },
        "final": {"enabled": False},
    }
    return load_experiment(None, raw=raw)


def epochs_trained(run_dir: Path) -> int:
    """Sum of epochs_run over every result.json under trials/ (seed subfolders included)."""
    return sum(
        int(json.loads(path.read_text(encoding="utf-8"))["epochs_run"])
        for path in (run_dir / "trials").rglob("result.json")
    )


def run_study(pruner: str, trials: int, epochs: int, root: Path, data_dir: str | None) -> dict[str, Any]:
    out = root / pruner
    seconds, res = timed(lambda: tune(experiment(pruner, trials, epochs), out=out, data_dir=data_dir, run_final=False))
    assert isinstance(res, TuneResult)
    return {
        "pruner": pruner,
        "wall_s": seconds,
        "epochs": epochs_trained(out),
        "best": res.best_value,
        "best_params": res.best_params,
        "complete": res.n_complete,
        "pruned": res.n_pruned,
        "failed": res.n_failed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=None, help="trials per study (default 40; --quick 10)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (default 15; --quick 5)")
    parser.add_argument("--quick", action="store_true", help="10 trials of 5 epochs (CI-sized)")
    parser.add_argument("--data-dir", default=None, help="folder holding california_housing (else auto)")
    args = parser.parse_args(argv)
    trials = args.trials or (10 if args.quick else 40)
    epochs = args.epochs or (5 if args.quick else 15)
    torch.set_num_threads(1)

    info = machine()
    print(f"# pruning.py  trials={trials} epochs={epochs} (TPE seed 0, batch 256, california_housing)")
    print(f"# {info['cpu']}, nproc={info['nproc']}, torch {info['torch']}, python {info['python']}, {info['date']}\n")
    with tempfile.TemporaryDirectory(prefix="tunelab-pruning-") as tmp:
        results = {p: run_study(p, trials, epochs, Path(tmp), args.data_dir) for p in PRUNERS}
    base, asha = results["none"], results["asha"]
    rows = [
        [
            r["pruner"],
            r["epochs"],
            f"{r['wall_s']:.1f}",
            f"{r['best']:.4f}" if r["best"] is not None else "-",
            f"{r['complete']}/{r['pruned']}/{r['failed']}",
        ]
        for r in (base, asha)
    ]
    rows.append(
        [
            "asha / none",
            f"{asha['epochs'] / base['epochs']:.2f}x",
            f"{asha['wall_s'] / base['wall_s']:.2f}x",
            f"{asha['best'] / base['best']:.3f}x" if base["best"] and asha["best"] else "-",
            "",
        ]
    )
    print(table(["pruner", "epochs trained", "wall (s)", "best val_loss", "complete/pruned/failed"], rows))
    print()
    for r in (base, asha):
        shown = {k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in r["best_params"].items()}
        print(f"best params ({r['pruner']}): {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
