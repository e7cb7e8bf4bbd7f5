"""Rounds of mixed shapes: padded stacks against separate stacks or training one at a time.

    python benchmarks/padding.py [--epochs 1] [--repeats 5] [--per-width 4] [--part all|widths|mlp|heads]
        [--heads 8] [--rows 17500] [--batch 8 32] [--mlp-batch 32 256]

Widths (`--part widths`): seed 000's shape (MLP 8-w-w-1 on California housing, Adam, Huber,
batch 32, one torch thread, no trial folders); a round holds `--per-width` trials of each width
(lr, weight decay and seed vary). "separate" trains one `fit_group` per width, one after another;
"padded" trains the whole round as one `fit_group` of zero-padded members (train/mixed.py). Both
run interleaved round by round; the speed-up is the median of the per-round ratios. The padding
ratio is the planner's measure (padded FLOPs / the members' own; it pads at <= the limit
printed). The last column is the largest |val_loss| difference between a member trained padded
and the same member in its own width's stack (exactness).

MLPs (`--part mlp`) and seed 001's heads (`--part heads`): rounds of `--heads` members that
differ more and more (widths, max_length, activation, depth, LayerNorm; "seed 001 draw" draws
each head's num_layers 1-3, hidden_dim_ratio 0.25/0.5/0.75 halving, activation, layer_norm and
max_length from seed 001's space, with dropout, lr, decay and seed). Heads train on generated
384-d unit-norm embeddings, `--rows` training rows (seed 001: 17,500) and 3,750 validation rows,
one per max_length (the same rows, other vectors), AdamW, MSE; MLPs on California housing, Adam,
Huber; one epoch, one torch thread. "alone" trains each member with `fit`, one after another (a
round of mixed shapes before this branch); "by key" one `fit_group` per exact group key (same
shape; a key of one member with `fit`); "by rule" the stacks `pad_stacks` forms (the waste rule:
FLOPs and layer plans), each as one `fit_group` and any stack of one with `fit`;
"one stack" trains all of them as one `fit_group`. Speed-ups are alone / competitor (median of
interleaved rounds); the last column compares "alone" and "one stack" (float32).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections import Counter
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
from tunelab.train.padding import PAD_FLOPS_LIMIT, pad_key, pad_stacks, padding_ratio
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


def head_keys(heads: list[dict[str, Any]], datas: dict[int, Dataset], batch: int) -> list[str]:
    """The heads' group keys, as a study computes them."""
    return [group_key(Experiment.model_validate({
        "data": {"name": "query_wellformedness"}, "train": {"loss": "mse", "optimizer": "adamw", "batch_size": batch},
        "model": {"family": "encoder_head", "head_layout": "halving", **{k: h[k] for k in SHAPE}}}),
        datas[h["max_length"]]) or "" for h in heads]


def head_rounds(k: int) -> dict[str, list[dict[str, Any]]]:
    """Rounds of `k` heads: one shape, then more and more that differs."""
    base = seed001_heads(k)
    one = {"num_layers": 2, "hidden_dim_ratio": 0.5, "activation": "gelu", "layer_norm": False, "max_length": 128}
    return {
        "one shape": [{**h, **one} for h in base],
        "widths, max_lengths (1 plan)": [{**h, **one, "hidden_dim_ratio": (0.5, 0.75)[i % 2],
                                          "max_length": (64, 128, 256)[i % 3]} for i, h in enumerate(base)],
        "+ activation (2 plans)": [{**h, **one, "max_length": (64, 128, 256)[i % 3],
                                    "activation": ("gelu", "relu")[i % 2]} for i, h in enumerate(base)],
        "seed 001 draw": base,
    }


def by_rule(keys: list[str]) -> list[list[int]]:
    """The stacks `pad_stacks` forms from these group keys (indices into `keys`)."""
    stack_of = pad_stacks(Counter(keys))
    stacks: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        stacks.setdefault(stack_of[key], []).append(i)
    return list(stacks.values())


def compare_round(members: list[Any], keys: list[str], dims: list[list[int]], batch: int, repeats: int,
                  train_fn: Any) -> list[str]:
    """alone / by rule / one stack for one round; `train_fn(members, batch, how)` -> val losses."""
    stacks = by_rule(keys)

    def rule() -> list[float]:
        out = [0.0] * len(members)
        for stack in stacks:
            for i, loss in zip(stack, train_fn([members[i] for i in stack], batch, "stack"), strict=True):
                out[i] = loss
        return out

    def by_key() -> list[float]:
        out = [0.0] * len(members)
        for key in dict.fromkeys(keys):
            rows = [i for i, k in enumerate(keys) if k == key]
            for i, loss in zip(rows, train_fn([members[i] for i in rows], batch, "stack"), strict=True):
                out[i] = loss
        return out

    times, results = interleaved({"alone": lambda: train_fn(members, batch, "alone"), "by key": by_key,
                                  "by rule": rule, "one stack": lambda: train_fn(members, batch, "stack")}, repeats)
    diff = max(abs(a - b) for a, b in zip(results["alone"][0], results["one stack"][0], strict=True))
    plans = {pad_key(key)[2] for key in keys if pad_key(key)}  # type: ignore[index]
    return [str(batch), f"{len(members)} ({len(set(keys))} keys, {len(plans)} plans)",
            f"{padding_ratio([(1, d) for d in dims]):.2f}",
            "+".join(str(len(s)) for s in sorted(stacks, key=len, reverse=True)),
            f"{statistics.median(times['alone']):.1f}", f"{median_ratio(times['alone'], times['by key']):.2f}x",
            f"{median_ratio(times['alone'], times['by rule']):.2f}x",
            f"{median_ratio(times['alone'], times['one stack']):.2f}x", f"{diff:.1e}"]


def mlp_rounds(k: int) -> dict[str, list[dict[str, Any]]]:
    """Rounds of `k` MLPs on California housing (hidden_dim 64, ratio 0.5) differing more and more."""
    acts = ("relu", "gelu", "tanh", "leaky_relu")
    one = {"hidden_dim": 64, "hidden_dim_ratio": 0.5, "num_layers": 2, "activation": "relu"}
    return {
        "one shape": [one] * k,
        "widths 48/64 (1 plan)": [{**one, "hidden_dim": (48, 64)[i % 2]} for i in range(k)],
        "2 activations (2 plans)": [{**one, "activation": acts[i % 2]} for i in range(k)],
        "4 activations": [{**one, "activation": acts[i % 4]} for i in range(k)],
        "depths 1-3": [{**one, "num_layers": 1 + i % 3} for i in range(k)],
        "depth x activation x LayerNorm": [{**one, "num_layers": 1 + i % 3, "activation": acts[i % 4],
                                            "layer_norm": i % 2 == 0} for i in range(k)],
    }


def train_mlps(data: Dataset, shapes: list[dict[str, Any]], batch: int, how: str) -> list[float]:
    cfgs = [TrainSection(epochs=1, batch_size=batch, lr=1e-3 * (1 + i % 3), seed=i, loss="huber", threads=1,
                         device="cpu") for i in range(len(shapes))]
    models = [build_model(MLPModel(**m), data.input_shape, data.output_dim, seed=c.seed)
              for m, c in zip(shapes, cfgs, strict=True)]
    if how == "alone" or len(shapes) == 1:
        results = [fit(m, data, c, loss_name="huber", metrics=[], layout=None)
                   for m, c in zip(models, cfgs, strict=True)]
    else:
        results = fit_group(models, data, cfgs, loss_name="huber", metrics=[], layouts=[None] * len(shapes),
                            identities=[{}] * len(shapes))
    return [r.last_record["val_loss"] for r in results]


def mlp_keys(data: Dataset, shapes: list[dict[str, Any]], batch: int) -> list[str]:
    return [group_key(Experiment.model_validate({
        "data": {"name": "california_housing"}, "model": {"family": "mlp", **m},
        "train": {"loss": "huber", "batch_size": batch}}), data) or "" for m in shapes]


HEADERS = ["batch", "members", "one stack FLOPs / own", "stacks by rule", "alone s", "by key speed-up",
           "by rule speed-up", "one stack speed-up", "max |val_loss diff|"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-width", type=int, default=4)
    parser.add_argument("--data-dir", default=None, help="folder holding california_housing")
    parser.add_argument("--part", choices=["all", "widths", "mlp", "heads"], default="all")
    parser.add_argument("--heads", type=int, default=8, help="heads in the seed 001 round")
    parser.add_argument("--rows", type=int, default=17_500, help="training rows of the generated embeddings")
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32], help="batch sizes of the heads")
    parser.add_argument("--mlp-batch", type=int, nargs="+", default=[32, 256], help="batch sizes of the MLPs")
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
    if args.part in ("all", "mlp"):
        housing = load_dataset(DataSection(name="california_housing"), TaskSection(), data_dir=data_dir)
        print(f"# MLPs on California housing: {args.heads} per round, 1 epoch, Adam, Huber")
        rows = []
        for batch in args.mlp_batch:
            for name, shapes in mlp_rounds(args.heads).items():
                dims = [[8, *MLPModel(**m).resolved_hidden_dims(), 1] for m in shapes]
                rows.append([name, *compare_round(shapes, mlp_keys(housing, shapes, batch), dims, batch, args.repeats,
                                                  lambda ms, b, how: train_mlps(housing, ms, b, how))])
        print(table(["round", *HEADERS], rows))
    if args.part in ("all", "heads"):
        datas = embeddings(args.rows)
        print(f"# seed 001 heads: {args.heads} per round, {args.rows} train rows, 384-d, 1 epoch, AdamW, MSE")
        rows = []
        for batch in args.batch:
            for name, heads in head_rounds(args.heads).items():
                dims = [[384, *head_widths(EncoderHeadModel(head_layout="halving", num_layers=h["num_layers"],
                                                            hidden_dim_ratio=h["hidden_dim_ratio"]), 384), 1]
                        for h in heads]
                rows.append([name, *compare_round(heads, head_keys(heads, datas, batch), dims, batch, args.repeats,
                                                  lambda hs, b, how: train_heads(hs, datas, b, how))])
        print(table(["round", *HEADERS], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
