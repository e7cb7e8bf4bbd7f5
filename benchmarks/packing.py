"""Does a trial's value depend on how its round was packed? One configuration, every packing.

    python benchmarks/packing.py [--data california_housing] [--epochs 15] [--seeds 5] [--only A B]

Each target configuration (from benchmarks/bayes.py's space: lr, width, depth, dropout, weight
decay; seed 0 as bayes.py trains every trial) trains, in float32 and in float64:
  - alone (`fit`);
  - in same-shape stacks: with one other member, and with three others (another position);
  - in padded stacks (train/mixed.py): with wider members, and with narrower ones (other
    widths or depths, as `padding.pad_stacks` may pack them).
Printed per target: for each packing the best val_loss (the trial's objective), the largest
relative gap of the per-epoch val_loss from alone's, and in float64 the largest relative gap of
the final weights. Float64 rounds 1e-9 x finer than float32: a packing that is exact there
(~1e-10) shares everything with the lone trial but the summation order. Then two yardsticks:
the lone trial with one output weight moved by one float32 ulp ("nudged": how far training
carries a last-bit difference without any stacking), and the best val_loss alone under
`--seeds` seeds (the noise a study already lives with). No trial folders are written; torch runs
on one thread (as a trial process does).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

import torch
from _common import machine, table
from exactness import Trace, alone, as_dtype, grouped, rel

from tunelab.config.load import load_experiment
from tunelab.config.schema import Experiment
from tunelab.data import load_dataset

# name -> (hidden_dim, num_layers, lr, dropout, weight_decay): spread over bayes.py's space
TARGETS = {
    "A": (128, 3, 3e-3, 0.3, 1e-3),
    "B": (64, 2, 1e-3, 0.1, 1e-4),
    "C": (32, 1, 5e-3, 0.0, 1e-2),
    "D": (64, 3, 8e-3, 0.45, 1e-6),
}
# Companions: (hidden_dim, num_layers) relative to the target, with their own lr / dropout / decay.
RECIPES = [(1e-3, 0.2, 1e-5), (5e-3, 0.0, 1e-2), (2e-4, 0.5, 1e-3)]
WIDER = {32: 64, 64: 128, 128: 128}
NARROWER = {32: 32, 64: 32, 128: 64}


def experiment(data: str, epochs: int, width: int, depth: int, lr: float, dropout: float, decay: float,
               seed: int = 0) -> Experiment:
    return load_experiment(None, raw={
        "data": {"name": data, "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 42, "standardize": True},
        "model": {"family": "mlp", "hidden_dim": width, "num_layers": depth, "activation": "relu",
                  "dropout": dropout},
        "train": {"epochs": epochs, "batch_size": 64, "optimizer": "adam", "loss": "huber", "seed": seed,
                  "lr": lr, "weight_decay": decay, "device": "cpu"},
    })


def packings(data: str, epochs: int, target: tuple) -> dict[str, list[Experiment]]:
    """Each packing's members, the target first where it is listed first (fit_group reorders
    members of different depths by `stack_order`: the target's row changes with it)."""
    width, depth, *recipe = target
    me = experiment(data, epochs, width, depth, *recipe)

    def others(w: int, d: int, n: int) -> list[Experiment]:
        return [experiment(data, epochs, w, d, *RECIPES[i % len(RECIPES)]) for i in range(n)]

    wider_depth = depth if WIDER[width] > width else depth + 1 if depth < 3 else depth - 1
    if NARROWER[width] < width:
        narrower = (NARROWER[width], depth)
    else:  # the narrowest: beside deeper members (it passes its output through their layers)
        narrower = (width, depth + 1)
    return {
        "same x2": [me, *others(width, depth, 1)],
        "same x4 (last)": [*others(width, depth, 3), me],
        f"padded, wider {WIDER[width]}x{wider_depth}": [me, *others(WIDER[width], wider_depth, 3)],
        f"padded, narrower {narrower[0]}x{narrower[1]}": [*others(*narrower, 3), me],
    }


def position(pack: list[Experiment], me: Experiment) -> int:
    return next(i for i, e in enumerate(pack) if e is me)


def best(trace: Trace) -> float:
    return min(trace.val)


def curve_gap(a: Trace, b: Trace) -> float:
    return max(rel(x, y) for x, y in zip(a.val, b.val, strict=True))


def run_target(name: str, target: tuple, args: argparse.Namespace, datas: dict[torch.dtype, Any]) -> None:
    width, depth, lr, dropout, decay = target
    me_of = {}
    lone = {dtype: alone(experiment(args.data, args.epochs, *target), data, dtype) for dtype, data in datas.items()}
    rows = [["alone", "-", f"{best(lone[torch.float32]):.6f}", "0", f"{best(lone[torch.float64]):.6f}", "0", "0"]]
    for label, pack in packings(args.data, args.epochs, target).items():
        me = pack[0] if "last" not in label and "narrower" not in label else pack[-1]
        me_of[label] = position(pack, me)
        traces = {dtype: grouped(pack, data, dtype)[me_of[label]] for dtype, data in datas.items()}
        t32, t64 = traces[torch.float32], traces[torch.float64]
        rows.append([label, f"{len(pack)}", f"{best(t32):.6f}", f"{curve_gap(t32, lone[torch.float32]):.1e}",
                     f"{best(t64):.6f}", f"{curve_gap(t64, lone[torch.float64]):.1e}",
                     f"{rel(t64.weights[-1], lone[torch.float64].weights[-1]):.1e}"])
    exp = experiment(args.data, args.epochs, *target)
    nudged = alone(exp, datas[torch.float32], torch.float32, nudge=True)
    rows.append(["alone, nudged 1 ulp", "-", f"{best(nudged):.6f}", f"{curve_gap(nudged, lone[torch.float32]):.1e}",
                 "", "", ""])
    print(f"\n{name}: {width}x{depth}, lr {lr}, dropout {dropout}, weight decay {decay} ({args.data}, "
          f"{args.epochs} epochs, batch 64, Adam, Huber, seed 0)")
    print(table(["packing", "members", "f32 best val", "f32 max epoch gap", "f64 best val", "f64 max epoch gap",
                 "f64 weights gap"], rows))
    seeded = [best(lone[torch.float32])] + [
        best(alone(experiment(args.data, args.epochs, *target, seed=seed), datas[torch.float32], torch.float32))
        for seed in range(1, args.seeds)]
    packed = [float(r[2]) for r in rows[:-1]]
    print(f"f32 best val over packings: spread {max(packed) - min(packed):.5f} "
          f"({(max(packed) - min(packed)) / min(packed):.2%}); alone under seeds 0-{args.seeds - 1}: "
          f"{', '.join(f'{v:.5f}' for v in seeded)} (sd {statistics.stdev(seeded) if len(seeded) > 1 else 0:.5f}, "
          f"range {max(seeded) - min(seeded):.5f})")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="california_housing")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=list(TARGETS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = experiment(args.data, args.epochs, 32, 1, 1e-3, 0.0, 0.0)
    data32 = load_dataset(base.data, base.task)
    datas = {torch.float32: data32, torch.float64: as_dtype(data32, torch.float64)}
    print(machine(), f"train rows {len(data32.train)}, val rows {len(data32.val)}")
    for name in args.only:
        run_target(name, TARGETS[name], args, datas)


if __name__ == "__main__":
    main()
