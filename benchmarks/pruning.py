"""What pruning saves: the same TPE study on California housing with `pruner: none`, `pruner: asha`
one trial at a time, and `pruner: asha` in batched rounds (vectorized groups, each member reporting
to its own trial and leaving its group when pruned).

    python benchmarks/pruning.py [--trials 40] [--epochs 15] [--batch 8] [--quick] [--data-dir DIR]

Both studies: TPE (sampler seed 0), MLP 8-64-64-1, Adam, Huber, batch 256, searching
    train.lr            log 1e-5 .. 1e-1
    model.dropout       0 .. 0.5
    train.weight_decay  log 1e-6 .. 1e-2
each into its own temp run folder through `tunelab.app.tune.tune(..., run_final=False)`
(one process, SQLite study, one torch thread). Reported side by side: epochs trained (sum of
`epochs_run` over the trial folders' result.json), wall time of the whole `tune` call, best
validation loss (the study's best value), trial states, and the ratios of each pruned study to
`none` and of batched to one-at-a-time pruning. The batched study asks `--batch` trials per round
(`search.batch_size`) and trains them as one vectorized group (`search.vectorize`).

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

STUDIES = (("none", 1), ("asha", 1), ("asha", 0))  # (pruner, trials per round); 0: --batch


def label(pruner: str, batch: int) -> str:
    return pruner if batch == 1 else f"{pruner} batched x{batch}"


def experiment(pruner: str, trials: int, epochs: int, batch: int = 1) -> Any:
    raw = {
        "name": f"pruning_{pruner}_{batch}",
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
            "batch_size": batch,  # trials asked per round
            "vectorize": batch if batch > 1 else "off",  # a round trains as one vectorized group
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


def run_study(pruner: str, batch: int, trials: int, epochs: int, root: Path, data_dir: str | None) -> dict[str, Any]:
    out = root / f"{pruner}-{batch}"
    exp = experiment(pruner, trials, epochs, batch)
    seconds, res = timed(lambda: tune(exp, out=out, data_dir=data_dir, run_final=False))
    assert isinstance(res, TuneResult)
    return {
        "pruner": label(pruner, batch),
        "wall_s": seconds,
        "epochs": epochs_trained(out),
        "best": res.best_value,
        "best_params": res.best_params,
        "complete": res.n_complete,
        "pruned": res.n_pruned,
        "diverged": res.n_diverged,
        "failed": res.n_failed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=None, help="trials per study (default 40; --quick 10)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (default 15; --quick 5)")
    parser.add_argument("--batch", type=int, default=8, help="trials per round in the batched study (default 8)")
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
        results = [run_study(p, b or args.batch, trials, epochs, Path(tmp), args.data_dir) for p, b in STUDIES]
    base, asha, batched = results
    rows = [
        [r["pruner"], r["epochs"], f"{r['wall_s']:.1f}", f"{r['best']:.4f}" if r["best"] is not None else "-",
         f"{r['complete']}/{r['pruned']}/{r['failed']}"]
        for r in results
    ]
    for top, bottom in ((asha, base), (batched, base), (batched, asha)):
        rows.append([
            f"{top['pruner']} / {bottom['pruner']}",
            f"{top['epochs'] / bottom['epochs']:.2f}x",
            f"{top['wall_s'] / bottom['wall_s']:.2f}x",
            f"{top['best'] / bottom['best']:.3f}x" if top["best"] and bottom["best"] else "-",
            "",
        ])
    print(table(["pruner", "epochs trained", "wall (s)", "best val_loss", "complete/pruned/failed"], rows))
    print()
    for r in results:
        shown = {k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in r["best_params"].items()}
        print(f"best params ({r['pruner']}): {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
