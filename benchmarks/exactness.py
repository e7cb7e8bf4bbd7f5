"""How exact a vectorized member is, on seed 000's grid: the member against the same trial alone.

    python benchmarks/exactness.py [--epochs 15] [--width 128] [--lr 0.01] [--dropouts 0 0.6] [--seeds 5]
    python benchmarks/exactness.py --cost [--members 32] [--repeats 5]

The grid's group for one width (lr x dropout, 9 members, as `tunelab tune` packs it) trains
once with `fit_group`; each chosen configuration (lr, every dropout in `--dropouts`) also
trains alone with `fit`. Printed per epoch, side by side:
  - float32: the member's and the lone trial's val_loss and their relative gap;
  - float64 (the same group and trials with float64 weights and data): the largest relative gap
    between the member's and the lone trial's weights. Float64 rounds 1e-9 x finer than float32,
    so what is left there is what is not rounding (initial weights, batch order, dropout masks,
    optimizer): the lone trial and the member agree to ~1e-12, or something else differs;
  - "nudged": the lone trial against itself with one weight of its output layer moved by one
    float32 ulp: how far training carries a last-bit difference without any vectorization;
  - the best val_loss of the same configuration alone under `--seeds` seeds (0, 1, ...): the
    spread a study's selection already lives with.
`--cost` prices the exact optimizer instead: one epoch of `fit_group` (width 64, batch 32) whose
members each have their own lr, with Adam as torch's kernel per member (today) against one lr=1
kernel call for all scaled per member (the way before 2026-12-01, kept off the CPU), interleaved
round by round; prints the median time ratio and its range.
No trial folders are written; torch runs on one thread (as a trial process does).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from _common import interleaved, machine, table, timed

from tunelab.config.load import load_experiment
from tunelab.config.schema import Experiment
from tunelab.config.space_paths import apply_params
from tunelab.data import Dataset, load_dataset
from tunelab.data.dataset import Split
from tunelab.train import vectorized
from tunelab.train.batched_optim import BatchedOptimizer
from tunelab.train.hooks import Hook
from tunelab.train.loop import fit
from tunelab.train.trial import model_for
from tunelab.train.vectorized import fit_group

GRID = Path(__file__).resolve().parents[1] / "examples" / "seed000_grid.yaml"


class Trace(Hook):
    """Each epoch's val_loss and a copy of the weights (hooks see a member's current weights)."""

    def __init__(self) -> None:
        self.val: list[float] = []
        self.weights: list[torch.Tensor] = []

    def on_epoch_end(self, ctx: Any, record: dict[str, Any]) -> None:
        self.val.append(record["val_loss"])
        self.weights.append(torch.cat([p.detach().reshape(-1).clone() for p in ctx.model.parameters()]))


def as_dtype(data: Dataset, dtype: torch.dtype) -> Dataset:
    splits = {name: Split(getattr(data, name).x.to(dtype), getattr(data, name).y.to(dtype))
              for name in ("train", "val")}
    return Dataset(name=data.name, task=data.task, train=splits["train"], val=splits["val"], test=None,
                   input_shape=data.input_shape, output_dim=data.output_dim, target_scaler=data.target_scaler)


def alone(exp: Experiment, data: Dataset, dtype: torch.dtype, nudge: bool = False) -> Trace:
    model = model_for(exp, data).to(dtype)
    if nudge:
        with torch.no_grad():
            w = model[-1].weight
            w[0, 0] = torch.nextafter(w[0, 0], torch.tensor(float("inf"), dtype=dtype))
    trace = Trace()
    fit(model, data, exp.train, loss_name=exp.train.loss, metrics=[], hooks=[trace])
    return trace


def grouped(exps: list[Experiment], data: Dataset, dtype: torch.dtype) -> list[Trace]:
    models, states = [], []
    for exp in exps:
        models.append(model_for(exp, data).to(dtype))
        states.append(torch.get_rng_state())  # each member's dropout stream, as `fit` draws it
    traces = [Trace() for _ in exps]
    fit_group(models, data, [e.train for e in exps], loss_name=exps[0].train.loss, metrics=[],
              layouts=[None] * len(exps), identities=[{} for _ in exps], hooks=[[t] for t in traces],
              rng_states=states)
    return traces


def rel(a: float | torch.Tensor, b: float | torch.Tensor) -> float:
    if isinstance(a, torch.Tensor):
        return float((a - b).abs().max() / b.abs().max())  # type: ignore[operator]
    return abs(a - b) / abs(b)  # type: ignore[operator]


def cost(data: Dataset, base: Experiment, members: int, repeats: int) -> None:
    """Seconds of one fit_group epoch with the per-member kernel calls and with the one call."""
    exps = [apply_params(base, {"train.lr": 1e-4 * 100 ** (i / members), "model.hidden_dim": 64,
                                "model.dropout": 0.0, "train.batch_size": 32, "train.epochs": 1, "train.seed": i})
            for i in range(members)]

    def run(one_call: bool) -> float:
        original = vectorized.BatchedOptimizer

        def patched(*args: Any) -> BatchedOptimizer:
            opt = original(*args)
            opt.one_call = one_call
            return opt

        vectorized.BatchedOptimizer = patched  # type: ignore[assignment,misc]
        try:
            models = [model_for(e, data) for e in exps]
            seconds, _ = timed(lambda: fit_group(models, data, [e.train for e in exps], loss_name="huber", metrics=[],
                                                 layouts=[None] * members, identities=[{} for _ in exps]))
        finally:
            vectorized.BatchedOptimizer = original  # type: ignore[misc]
        return seconds

    run(False), run(True)  # warm-up: first calls pay one-time costs
    times = interleaved({"per member": lambda: run(False), "one call": lambda: run(True)}, repeats)[0]
    ratios = [a / b for a, b in zip(times["per member"], times["one call"], strict=True)]
    print(f"{members} members, each its own lr, 1 epoch: per-member kernel calls / one call = "
          f"{statistics.median(ratios):.3f} (range {min(ratios):.3f}..{max(ratios):.3f}, {repeats} rounds; "
          f"per member {statistics.median(times['per member']):.2f} s, "
          f"one call {statistics.median(times['one call']):.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--dropouts", type=float, nargs="+", default=[0.0, 0.6])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cost", action="store_true", help="time the exact optimizer against one call")
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load_experiment(GRID, [f"train.epochs={args.epochs}"])
    data32 = load_dataset(base.data, base.task)
    if args.cost:
        print(machine())
        cost(data32, base, args.members, args.repeats)
        return
    data64 = as_dtype(data32, torch.float64)
    exps = [apply_params(base, {"train.lr": lr, "model.hidden_dim": args.width, "model.dropout": p})
            for lr in (0.01, 0.001, 0.0001) for p in (0.0, 0.3, 0.6)]
    group32, group64 = grouped(exps, data32, torch.float32), grouped(exps, data64, torch.float64)
    print(machine())
    for i, exp in enumerate(exps):
        if exp.train.lr != args.lr or exp.model.dropout not in args.dropouts:
            continue
        lone32, lone64 = alone(exp, data32, torch.float32), alone(exp, data64, torch.float64)
        nudged = alone(exp, data32, torch.float32, nudge=True)
        rows = [[epoch + 1, f"{lone32.val[epoch]:.8f}", f"{group32[i].val[epoch]:.8f}",
                 f"{rel(group32[i].val[epoch], lone32.val[epoch]):.1e}",
                 f"{rel(group64[i].weights[epoch], lone64.weights[epoch]):.1e}",
                 f"{nudged.val[epoch]:.8f}", f"{rel(nudged.val[epoch], lone32.val[epoch]):.1e}"]
                for epoch in range(args.epochs)]
        print(f"\nlr {exp.train.lr}, width {args.width}, dropout {exp.model.dropout} "
              f"(member {i} of a group of {len(exps)})")
        print(table(["epoch", "val alone", "val member", "gap", "f64 weights gap", "val nudged", "nudge gap"], rows))
        print(f"best val: alone {min(lone32.val):.4f}, member {min(group32[i].val):.4f}, nudged {min(nudged.val):.4f}")
        seeded = [min(lone32.val)] + [
            min(alone(exp.model_copy(update={"train": exp.train.model_copy(update={"seed": seed})}), data32,
                      torch.float32).val) for seed in range(1, args.seeds)]
        print(f"best val alone under seeds 0-{args.seeds - 1}: {', '.join(f'{v:.4f}' for v in seeded)} "
              f"(mean {statistics.fmean(seeded):.4f}, sd {statistics.stdev(seeded) if len(seeded) > 1 else 0.0:.4f})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
