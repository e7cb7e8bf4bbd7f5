"""A vectorized group's training step with per-member dropout: where its time goes, and the
masks drawn the previous way against `MemberDropout` (train/member_dropout.py).

    python benchmarks/member_dropout.py [--rounds 9] [--steps 1.0] [--part all|masks|step]

Masks (`--part masks`): one dropout layer of 8 members (widths 256/128/64/32 twice, padded to
256; dropout 0.1-0.4; batch 64 and 256). "before" draws each member's mask as the stack did before
(a fresh tensor, `bernoulli_` with the member's generator, `div_`, `F.pad` to the padded width,
`torch.stack`, one multiply); "bernoulli_" and "uniform_" are `MemberDropout` drawing either way
into its kept buffer ("uniform_" only where `draws_match_bernoulli()`). Every arm's outputs and
generator states are checked bitwise equal to "before".

Group step (`--part step`): steps of `fit_group`'s inner loop (forward, loss, backward, gradient
gathered into the (K, P) buffer, optimizer) on California housing, 8 members, Adam, Huber, one
torch thread. "bayes": bayes.py's costliest round shape (4 members 3x128, 4 members 3x64, padded;
batch 64; dropout 0-0.45); "mixed": widths 32-256, depth 2-3, dropout 0.1-0.4, batch 256.
"before": the previous masks and the gradient gathered by reshape + cat; "after": this code.
Both arms train the same members from the same states on the same batches; their weights are
checked bitwise equal at the end. Per-phase times are each arm's median per step.

Arms run interleaved round by round; ratios are medians of per-round ratios [min-max]. Times
are CPU seconds of this process (one torch thread: less swayed by other processes' load than
wall time, which the group step part also prints).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _common import machine, table

from tunelab.config.schema import DataSection, MLPModel, TaskSection, TrainSection
from tunelab.data import load_dataset
from tunelab.models import build_model
from tunelab.train.batched_model import StackedNet, batched_loss
from tunelab.train.batched_optim import BatchedOptimizer
from tunelab.train.member_dropout import MemberDropout, draws_match_bernoulli
from tunelab.train.member_schedule import GroupSchedule, MemberSchedule
from tunelab.train.mixed import pad_models, stack_order

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WIDTHS, RATES = [256, 128, 64, 32] * 2, [0.1, 0.2, 0.3, 0.4] * 2
SCENARIOS = {
    "bayes": {"batch": 64, "dims": [[128] * 3] * 4 + [[64] * 3] * 4,
              "drops": [0.05, 0.12, 0.2, 0.27, 0.33, 0.4, 0.45, 0.0], "steps": 24},
    "mixed": {"batch": 256, "dims": [[w] * 3 for w in (256, 128, 64, 32)] + [[w] * 2 for w in (256, 128, 64, 32)],
              "drops": RATES, "steps": 6},
}
PHASES = ("forward", "dropout", "loss", "backward", "gather", "optimizer")


class PreviousMasks:
    """The stack's member dropout before `MemberDropout` (the baseline): per member a fresh
    tensor, `bernoulli_`, `div_`, `F.pad` to the padded width; then `torch.stack` and a multiply."""

    def __init__(self, rates: Sequence[float], generators: Sequence[torch.Generator],
                 widths: Sequence[int] | None) -> None:
        self.rates, self.generators, self.widths = list(rates), list(generators), widths

    def __call__(self, h: torch.Tensor, conv: bool, k: int) -> torch.Tensor:
        if not any(p > 0 for p in self.rates):
            return h
        shape = tuple(h.shape[1:])
        masks = []
        for row, (p, gen) in enumerate(zip(self.rates, self.generators, strict=True)):
            own = shape if self.widths is None else (*shape[:-1], self.widths[row])
            if p > 0:
                mask = torch.empty(own, dtype=h.dtype).bernoulli_(1 - p, generator=gen).div_(1 - p)
            else:
                mask = torch.ones(own, dtype=h.dtype)
            masks.append(mask if own == shape else F.pad(mask, (0, shape[-1] - own[-1])))
        return h * torch.stack(masks)


def _gens(k: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(100 + row) for row in range(k)]


def masks_part(rounds: int, reps: int) -> list[list[Any]]:
    """Rows of (batch, arm, ms per layer [min-max], before / arm [min-max])."""
    rows = []
    k = len(RATES)
    for batch in (64, 256):
        h = torch.randn(k, batch, max(WIDTHS), generator=torch.Generator().manual_seed(0))
        arms: dict[str, tuple[Callable[..., torch.Tensor], list[torch.Generator]]] = {}
        for name, fast in (("before", None), ("bernoulli_", False), ("uniform_", True)):
            if fast and not draws_match_bernoulli():
                continue
            gens = _gens(k)
            arms[name] = (PreviousMasks(RATES, gens, WIDTHS) if fast is None
                          else MemberDropout(RATES, gens, WIDTHS, fast=fast), gens)
        for drop, _ in arms.values():
            drop(h, False, k)  # warm-up: MemberDropout makes its buffers
        times: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(rounds):
            outs = {}
            for name, (drop, _) in arms.items():
                t0 = time.process_time()
                for _ in range(reps):
                    outs[name] = drop(h, False, k)
                times[name].append((time.process_time() - t0) / reps)
            states = {name: [g.get_state() for g in gens] for name, (_, gens) in arms.items()}
            for name in arms:  # the same masks, the streams left in the same place
                assert torch.equal(outs[name], outs["before"]), name
                assert all(map(torch.equal, states[name], states["before"])), name
        for name in arms:
            ratios = [b / a for b, a in zip(times["before"], times[name], strict=True)]
            rows.append([batch, name, _spread([t * 1e3 for t in times[name]], 2), _spread(ratios, 2)])
    return rows


def _spread(values: Sequence[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


class Arm:
    """One copy of the group (net, optimizer, schedule) and how it masks and gathers gradients."""

    def __init__(self, scenario: dict[str, Any], data: Any, before: bool) -> None:
        cfgs = [TrainSection(epochs=1, batch_size=scenario["batch"], lr=1e-3 * (1 + i % 3), weight_decay=1e-4,
                             seed=i, loss="huber", threads=1, device="cpu") for i in range(len(scenario["dims"]))]
        models, states = [], []
        for cfg, dims, p in zip(cfgs, scenario["dims"], scenario["drops"], strict=True):
            models.append(build_model(MLPModel(hidden_dims=dims, dropout=p), data.input_shape, 1, seed=cfg.seed))
            states.append(torch.get_rng_state())  # the member's dropout stream, as fit_group gets it
        order = stack_order(models)
        padded = pad_models([models[i] for i in order])
        self.net = StackedNet(padded.models, torch.device("cpu"), [states[i] for i in order], padded)
        cfgs = [cfgs[i] for i in order]
        self.opt = BatchedOptimizer(cfgs, self.net.flat, self.net.offsets)
        batches = -(-len(data.train) // scenario["batch"])
        self.recipe = GroupSchedule([MemberSchedule(c, batches) for c in cfgs], batches, self.net.flat)
        self.loss = batched_loss("huber", "regression")
        self.before = before
        net = self.net
        if before:
            net.member_dropouts = {position: PreviousMasks([row[slot] for row in net.rates], net.generators,
                                                           net.widths.get(position))
                                   for position, slot in net.drop_after.items()}
        self.flat_grad = torch.empty_like(net.flat)
        self.grad_views = net.split(self.flat_grad)
        self.phases = {name: 0.0 for name in PHASES}
        dropouts = dict(net.member_dropouts)

        def timed(position: int) -> Callable[[torch.Tensor, bool, int], torch.Tensor]:
            def drop(h: torch.Tensor, conv: bool, k: int) -> torch.Tensor:
                t0 = time.process_time()
                out = dropouts[position](h, conv, k)
                self.phases["dropout"] += time.process_time() - t0
                return out
            return drop
        net.member_dropouts = {position: timed(position) for position in dropouts}  # type: ignore[misc]

    def step(self, i: int, xb: torch.Tensor, yb: torch.Tensor) -> None:
        net, t = self.net, [time.process_time()]
        out = net.forward(xb, train=True)
        t.append(time.process_time())
        losses = self.loss(out, yb)
        t.append(time.process_time())
        grads = torch.autograd.grad(self.recipe.objective(losses), net.views)
        t.append(time.process_time())
        if self.before:
            torch.cat([g.reshape(net.k, -1) for g in grads], dim=1, out=self.flat_grad)
        else:
            for view, g in zip(self.grad_views, grads, strict=True):
                view.copy_(g)
        t.append(time.process_time())
        grad, stepping = self.recipe.accumulate(self.flat_grad, i)
        self.recipe.step(self.opt, net.flat, grad, stepping)
        t.append(time.process_time())
        for name, a, b in zip(("forward", "loss", "backward", "gather", "optimizer"), t[:-1], t[1:], strict=True):
            self.phases[name] += b - a


def step_part(name: str, rounds: int, steps_x: float, data: Any) -> tuple[list[list[Any]], list[list[Any]]]:
    """(A/B rows, phase rows) for one scenario."""
    scenario = SCENARIOS[name]
    steps = max(1, round(scenario["steps"] * steps_x))
    arms = {"before": Arm(scenario, data, before=True), "after": Arm(scenario, data, before=False)}
    n, batch = len(data.train), scenario["batch"]
    gen = torch.Generator().manual_seed(0)
    orders = torch.stack([torch.randperm(n, generator=gen) for _ in range(arms["after"].net.k)])
    t0 = time.process_time()
    xs = list(data.train.x[orders].split(batch, dim=1))[:-1]  # full batches only: one shape
    ys = list(data.train.y[orders].split(batch, dim=1))[:-1]
    indexing = (time.process_time() - t0) / (len(xs) + 1)
    times: dict[str, list[float]] = {a: [] for a in arms}
    walls: dict[str, list[float]] = {a: [] for a in arms}
    phases: dict[str, list[dict[str, float]]] = {a: [] for a in arms}
    at = 0
    for r in range(rounds + 1):  # round 0 warms up
        batch_ids = [(at + j) % len(xs) for j in range(steps)]
        at += steps
        for arm_name, arm in arms.items():
            arm.phases = {p: 0.0 for p in PHASES}
            t0, w0 = time.process_time(), time.perf_counter()
            for i in batch_ids:
                arm.step(i, xs[i], ys[i])
            if r:
                times[arm_name].append((time.process_time() - t0) / steps)
                walls[arm_name].append((time.perf_counter() - w0) / steps)
                phases[arm_name].append({p: v / steps for p, v in arm.phases.items()})
    assert torch.equal(arms["before"].net.flat, arms["after"].net.flat), "the arms' weights differ"
    ratios = [b / a for b, a in zip(times["before"], times["after"], strict=True)]
    wall_ratios = [b / a for b, a in zip(walls["before"], walls["after"], strict=True)]
    ab = [[name, a, _spread([t * 1e3 for t in times[a]], 2), _spread(ratios, 2) if a == "after" else "1",
           _spread([t * 1e3 for t in walls[a]], 2), _spread(wall_ratios, 2) if a == "after" else "1"]
          for a in arms]
    rows = []
    for a in arms:
        per_phase = {p: statistics.median(d[p] for d in phases[a]) * 1e3 for p in PHASES}
        per_phase["forward"] -= per_phase["dropout"]  # forward without its dropout masks
        total = sum(per_phase.values())
        rows.append([name, a] + [f"{v:.2f} ({100 * v / total:.0f}%)" for v in per_phase.values()]
                    + [f"{indexing * 1e3:.3f}"])
    return ab, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=float, default=1.0, help="x each shape's steps per arm per round")
    parser.add_argument("--reps", type=int, default=10, help="mask draws per arm per round (masks part)")
    parser.add_argument("--part", choices=["all", "masks", "step"], default="all")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(" ".join(f"{k}={v}" for k, v in machine().items()), f"draws_match_bernoulli={draws_match_bernoulli()}")
    if args.part in ("all", "masks"):
        print("\nOne dropout layer of 8 padded members: ms per layer, before / arm")
        print(table(["batch", "arm", "ms", "speed-up"], masks_part(args.rounds, args.reps)))
    if args.part in ("all", "step"):
        data = load_dataset(DataSection(name="california_housing"), TaskSection(),
                            data_dir=str(SHARED) if SHARED.exists() else None)
        ab_rows, phase_rows = [], []
        for name in args.scenarios:
            ab, rows = step_part(name, args.rounds, args.steps, data)
            ab_rows += ab
            phase_rows += rows
        print("\nGroup step, 8 members: CPU and wall ms per step, before / after (weights bitwise equal)")
        print(table(["shape", "arm", "CPU ms", "speed-up", "wall ms", "wall speed-up"], ab_rows))
        print("\nWhere a step's time goes: ms (share); data indexing per step (ms, amortized over an epoch)")
        print(table(["shape", "arm", *PHASES, "indexing"], phase_rows))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
