"""A round of mixed shapes: one padded stack against one vectorized stack per width, and seed
001's heads of mixed shapes stacked against trained one after another.

    python benchmarks/padding.py [--epochs 1] [--repeats 5] [--per-width 4] [--part all|widths|heads]
        [--heads 8] [--rows 17500] [--batch 8 32]

Seed 000's shape (MLP 8-w-w-1 on California housing, Adam, Huber, batch 32, one torch thread,
no trial folders); a round holds `--per-width` trials of each width (lr, weight decay and seed
vary). "separate" trains one `fit_group` per width, one after another (today's packing);
"padded" trains the whole round as one `fit_group` of zero-padded members (train/padding.py).
Both run interleaved round by round; the speed-up is the median of the per-round ratios. The
padding ratio is the planner's measure (padded FLOPs / the members' own; it pads at <= the
limit printed). The last column is the largest |val_loss| difference between a member trained
padded and the same member in its own width's stack (exactness).

Heads (`--part heads`): a round of `--heads` frozen encoder heads drawn from seed 001's shape
knobs (num_layers 1-3, hidden_dim_ratio 0.25/0.5/0.75 halving, activation, layer_norm, and
max_length 64/128/256 as three different 384-d inputs of the same rows; dropout, lr, decay and
seed vary), AdamW, MSE, `--rows` training rows (seed 001: 17,500) and 3,750 validation rows of
generated embeddings, one epoch, one torch thread. "alone" trains each head with `fit`, one after
another (a round today); "by rule" trains the stacks `pad_stacks` forms (the padding-waste rule),
each as one `fit_group` and any stack of one with `fit`; "one stack" trains all of them as one
`fit_group` (train/mixed.py) with each member's own inputs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from _common import interleaved, machine, median_ratio, table

from tunelab.config.schema import DataSection, EncoderHeadModel, Experiment, MLPModel, TaskSection, TrainSection
from tunelab.data import Dataset, load_dataset
from tunelab.data.dataset import Split
from tunelab.models import build_model
from tunelab.models.encoder_head import EncoderHead, head_widths
from tunelab.train.grouping import group_key
from tunelab.train.loop import fit
from tunelab.train.padding import PAD_FLOPS_LIMIT, pad_stacks, padding_ratio
from tunelab.train.vectorized import fit_group

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ROUNDS = {"8-{48,56,64}x2-1": [[48, 48], [56, 56], [64, 64]], "8-{32,48,64}-1": [[32], [48], [64]],
          "8-{40,48,56,64}x2-1": [[w, w] for w in range(40, 72, 8)]}


def configs(n: int, epochs: int) -> list[TrainSection]:
    return [TrainSection(epochs=epochs, batch_size=32, lr=1e-4 * (1 + i % 4), weight_decay=(0.0, 1e-4)[i % 2],
                         seed=i, loss="huber", metrics=["r2"], threads=1, device="cpu") for i in range(n)]


def train(data: Dataset, widths: list[list[int]], cfgs: list[TrainSection]) -> list[float]:
    models = [build_model(MLPModel(hidden_dims=w), data.input_shape, data.output_dim, seed=c.seed)
              for w, c in zip(widths, cfgs, strict=True)]
    results = fit_group(models, data, cfgs, loss_name="huber", metrics=["r2"], layouts=[None] * len(cfgs),
                        identities=[{}] * len(cfgs))
    return [r.last_record["val_loss"] for r in results]


def compare(data: Dataset, shapes: list[list[int]], per_width: int, epochs: int, repeats: int) -> list[str]:
    widths = [w for w in shapes for _ in range(per_width)]
    cfgs = configs(len(widths), epochs)

    def separate() -> list[float]:
        out: list[float] = []
        for i in range(len(shapes)):
            part = slice(i * per_width, (i + 1) * per_width)
            out += train(data, widths[part], cfgs[part])
        return out

    times, results = interleaved({"separate": separate, "padded": lambda: train(data, widths, cfgs)}, repeats)
    diff = max(abs(a - b) for a, b in zip(results["separate"][0], results["padded"][0], strict=True))
    ratio = padding_ratio([(per_width, [8, *w, 1]) for w in shapes])
    work = len(widths) * epochs
    rate = {name: work / statistics.median(seconds) for name, seconds in times.items()}
    return [f"{len(widths)} ({len(shapes)} widths)", f"{ratio:.2f}", f"{rate['separate']:.2f}", f"{rate['padded']:.2f}",
            f"{median_ratio(times['separate'], times['padded']):.2f}x", f"{diff:.1e}"]


SHAPE = ("num_layers", "hidden_dim_ratio", "activation", "layer_norm", "max_length")  # seed 001's shape knobs


def seed001_heads(k: int, seed: int = 0) -> list[dict[str, Any]]:
    """`k` heads drawn from seed 001's shape knobs (and its per-member ones)."""
    rng = random.Random(seed)
    return [{"num_layers": rng.randint(1, 3), "hidden_dim_ratio": rng.choice([0.25, 0.5, 0.75]),
             "activation": rng.choice(["relu", "gelu", "tanh", "leaky_relu"]), "layer_norm": rng.random() < 0.5,
             "max_length": rng.choice([64, 128, 256]), "dropout": rng.choice([0.0, 0.1, 0.2, 0.3]),
             "lr": 10 ** rng.uniform(-4, -3), "weight_decay": rng.choice([0.0, 0.01]), "seed": i} for i in range(k)]


def embeddings(rows: int, width: int = 384) -> dict[int, Dataset]:
    """Generated sentence-embedding-like inputs (unit norm) of `rows` + 3,750 rows, one per
    max_length (the same rows, slightly different vectors), with one 0..1 target."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(rows + 3750, width, generator=gen)
    y = torch.sigmoid(base[:, :8].sum(1, keepdim=True) / 3 + torch.tanh(base[:, 8:16]).prod(1, keepdim=True))
    out = {}
    for length in (64, 128, 256):
        x = base + 0.05 * torch.randn(base.shape, generator=gen)
        x = x / x.norm(dim=1, keepdim=True)
        out[length] = Dataset(name="embeddings", task="regression", train=Split(x[:rows], y[:rows]),
                              val=Split(x[rows:], y[rows:]), test=None, input_shape=(width,), output_dim=1,
                              data_hash="generated")
    return out


def _head(h: dict[str, Any], width: int) -> tuple[EncoderHead, torch.Tensor]:
    cfg = EncoderHeadModel(head_layout="halving", dropout=h["dropout"], **{k: h[k] for k in SHAPE})
    torch.manual_seed(h["seed"])
    return EncoderHead(cfg, width, 1), torch.get_rng_state()


def _cfg(h: dict[str, Any], batch: int) -> TrainSection:
    return TrainSection(epochs=1, batch_size=batch, lr=h["lr"], weight_decay=h["weight_decay"], seed=h["seed"],
                        optimizer="adamw", loss="mse", threads=1, device="cpu")


def train_heads(heads: list[dict[str, Any]], datas: dict[int, Dataset], batch: int, how: str) -> list[float]:
    """Each head's final val_loss, trained `how`: "alone" (fit each), or as one `fit_group`."""
    if how == "alone" or len(heads) == 1:
        out = []
        for h in heads:
            model, state = _head(h, 384)
            torch.set_rng_state(state)
            out.append(fit(model, datas[h["max_length"]], _cfg(h, batch), loss_name="mse", metrics=[],
                           layout=None).last_record["val_loss"])
        return out
    built = [_head(h, 384) for h in heads]
    own = [datas[h["max_length"]] for h in heads]
    results = fit_group([m for m, _ in built], own[0], [_cfg(h, batch) for h in heads], loss_name="mse", metrics=[],
                        layouts=[None] * len(heads), identities=[{}] * len(heads), rng_states=[s for _, s in built],
                        member_data=own)
    return [r.last_record["val_loss"] for r in results]


def by_rule(heads: list[dict[str, Any]], datas: dict[int, Dataset]) -> list[list[int]]:
    """The stacks `pad_stacks` forms from the heads' group keys (indices into `heads`)."""
    keys = []
    for h in heads:
        exp = Experiment.model_validate({"data": {"name": "query_wellformedness"}, "train": {"loss": "mse"},
                                         "model": {"family": "encoder_head", "head_layout": "halving",
                                                   **{k: h[k] for k in SHAPE}}})
        keys.append(group_key(exp, datas[h["max_length"]]))
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1  # type: ignore[index]
    stack_of = pad_stacks(counts)
    stacks: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        stacks.setdefault(stack_of[key], []).append(i)  # type: ignore[index]
    return list(stacks.values())


def compare_heads(datas: dict[int, Dataset], k: int, batch: int, repeats: int) -> list[str]:
    heads = seed001_heads(k)
    stacks = by_rule(heads, datas)

    def rule() -> list[float]:
        out = [0.0] * k
        for stack in stacks:
            for i, loss in zip(stack, train_heads([heads[i] for i in stack], datas, batch, "stack"), strict=True):
                out[i] = loss
        return out

    times, results = interleaved({"alone": lambda: train_heads(heads, datas, batch, "alone"), "by rule": rule,
                                  "one stack": lambda: train_heads(heads, datas, batch, "stack")}, repeats)
    dims = [[384, *head_widths(EncoderHeadModel(head_layout="halving", num_layers=h["num_layers"],
                                                hidden_dim_ratio=h["hidden_dim_ratio"]), 384), 1] for h in heads]
    diff = max(abs(a - b) for a, b in zip(results["alone"][0], results["one stack"][0], strict=True))
    alone = statistics.median(times["alone"])
    shapes = {tuple(h[key] for key in SHAPE) for h in heads}
    return [str(batch), f"{k} ({len(shapes)} shapes)", f"{padding_ratio([(1, d) for d in dims]):.2f}",
            "+".join(str(len(s)) for s in sorted(stacks, key=len, reverse=True)),
            f"{alone:.1f}", f"{median_ratio(times['alone'], times['by rule']):.2f}x",
            f"{median_ratio(times['alone'], times['one stack']):.2f}x", f"{diff:.1e}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-width", type=int, default=4)
    parser.add_argument("--data-dir", default=None, help="folder holding california_housing")
    parser.add_argument("--part", choices=["all", "widths", "heads"], default="all")
    parser.add_argument("--heads", type=int, default=8, help="heads in the seed 001 round")
    parser.add_argument("--rows", type=int, default=17_500, help="training rows of the generated embeddings")
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args(argv)
    data_dir = args.data_dir or (str(SHARED) if SHARED.is_dir() else None)
    torch.set_num_threads(1)
    info = machine()
    print(f"# padding.py  epochs={args.epochs} repeats={args.repeats} per_width={args.per_width} "
          f"(padding limit {PAD_FLOPS_LIMIT}x)")
    print(f"# {info['cpu']}, nproc={info['nproc']}, torch {info['torch']}, python {info['python']}, {info['date']}")
    if args.part in ("all", "widths"):
        housing = load_dataset(DataSection(name="california_housing"), TaskSection(), data_dir=data_dir)
        train(housing, [[8], [16]], configs(2, 1))  # warm-up
        rows = [[name, *compare(housing, shapes, args.per_width, args.epochs, args.repeats)]
                for name, shapes in ROUNDS.items()]
        headers = ["MLP", "trials", "padded FLOPs / own", "separate trial-epochs/s", "padded trial-epochs/s",
                   "padded speed-up", "max |val_loss diff|"]
        print(table(headers, rows))
    if args.part in ("all", "heads"):
        datas = embeddings(args.rows)
        print(f"# seed 001 heads: {args.heads} per round, {args.rows} train rows, 384-d, 1 epoch, AdamW, MSE")
        rows = [compare_heads(datas, args.heads, batch, args.repeats) for batch in args.batch]
        headers = ["batch", "heads", "one stack FLOPs / own", "stacks by rule", "alone s", "by rule speed-up",
                   "one stack speed-up", "max |val_loss diff|"]
        print(table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
