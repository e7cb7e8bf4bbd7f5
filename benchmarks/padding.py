"""A round of mixed hidden widths: one padded stack against one vectorized stack per width.

    python benchmarks/padding.py [--epochs 1] [--repeats 5] [--per-width 4]

Seed 000's shape (MLP 8-w-w-1 on California housing, Adam, Huber, batch 32, one torch thread,
no trial folders); a round holds `--per-width` trials of each width (lr, weight decay and seed
vary). "separate" trains one `fit_group` per width, one after another (today's packing);
"padded" trains the whole round as one `fit_group` of zero-padded members (train/padding.py).
Both run interleaved round by round; the speed-up is the median of the per-round ratios. The
padding ratio is the planner's measure (padded FLOPs / the members' own; it pads at <= the
limit printed). The last column is the largest |val_loss| difference between a member trained
padded and the same member in its own width's stack (exactness).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from _common import interleaved, machine, median_ratio, table

from tunelab.config.schema import DataSection, MLPModel, TaskSection, TrainSection
from tunelab.data import Dataset, load_dataset
from tunelab.models import build_model
from tunelab.train.padding import PAD_FLOPS_LIMIT, padding_ratio
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-width", type=int, default=4)
    parser.add_argument("--data-dir", default=None, help="folder holding california_housing")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or (str(SHARED) if SHARED.is_dir() else None)
    torch.set_num_threads(1)
    info = machine()
    print(f"# padding.py  epochs={args.epochs} repeats={args.repeats} per_width={args.per_width} "
          f"(padding limit {PAD_FLOPS_LIMIT}x)")
    print(f"# {info['cpu']}, nproc={info['nproc']}, torch {info['torch']}, python {info['python']}, {info['date']}")
    housing = load_dataset(DataSection(name="california_housing"), TaskSection(), data_dir=data_dir)
    train(housing, [[8], [16]], configs(2, 1))  # warm-up
    rows = [[name, *compare(housing, shapes, args.per_width, args.epochs, args.repeats)]
            for name, shapes in ROUNDS.items()]
    headers = ["MLP", "trials", "padded FLOPs / own", "separate trial-epochs/s", "padded trial-epochs/s",
               "padded speed-up", "max |val_loss diff|"]
    print(table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
