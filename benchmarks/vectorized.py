"""Vectorized trials (`fit_group`) against the same trials trained one after another with `fit`.

    python benchmarks/vectorized.py [--epochs 2] [--repeats 3] [--quick] [--ks 1,4,16,64]

Part 1, seed 000's shape: MLP 8-64-64-1 on California housing (load_dataset, standardized),
Adam, Huber, batch 32; K trials that differ in lr, weight decay and seed. Part 2, seed 002's
USPS CNN (2 conv layers of 16 channels, 3x3 same, ReLU, max-pool 2, linear head), Adam,
cross-entropy, batch 64, K = 8. Both sides run on one torch thread, without trial folders
(layout None), and are interleaved round by round (sequential, group, sequential, ...); the
speed-up is the median of the per-round ratios. Throughput is trials*epochs per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from _common import interleaved, machine, median_ratio, table

from tunelab.config.schema import CNNModel, DataSection, MLPModel, TaskSection, TrainSection
from tunelab.data import Dataset, load_dataset
from tunelab.models import build_model
from tunelab.train.loop import fit
from tunelab.train.vectorized import fit_group

MLP_TARGETS = {16: 6.0, 64: 10.0}
CNN_K, CNN_TARGET = 8, 3.0
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def configs(k: int, epochs: int, batch: int, loss: str, metrics: list[str]) -> list[TrainSection]:
    """K trials of one shape: lr, weight decay and seed vary."""
    return [
        TrainSection(
            epochs=epochs, batch_size=batch, lr=1e-4 * (1 + i % 4), weight_decay=(0.0, 1e-4)[i % 2], seed=i,
            loss=loss, metrics=metrics, threads=1, device="cpu",
        )
        for i in range(k)
    ]


def sequential(data: Dataset, model_cfg: object, cfgs: list[TrainSection]) -> float:
    last = 0.0
    for cfg in cfgs:
        model = build_model(model_cfg, data.input_shape, data.output_dim, seed=cfg.seed)
        result = fit(model, data, cfg, loss_name=cfg.loss, metrics=cfg.metrics or [])
        last = result.last_record["val_loss"]
    return last


def grouped(data: Dataset, model_cfg: object, cfgs: list[TrainSection]) -> float:
    models = [build_model(model_cfg, data.input_shape, data.output_dim, seed=c.seed) for c in cfgs]
    results = fit_group(models, data, cfgs, loss_name=cfgs[0].loss, metrics=cfgs[0].metrics or [],
                        layouts=[None] * len(cfgs), identities=[{}] * len(cfgs))
    return results[-1].last_record["val_loss"]


def compare(data: Dataset, model_cfg: object, cfgs: list[TrainSection], repeats: int) -> dict[str, float]:
    times, results = interleaved(
        {"sequential": lambda: sequential(data, model_cfg, cfgs), "fit_group": lambda: grouped(data, model_cfg, cfgs)},
        repeats,
    )
    work = len(cfgs) * cfgs[0].epochs
    return {
        "seq": work / statistics.median(times["sequential"]),
        "group": work / statistics.median(times["fit_group"]),
        "speedup": median_ratio(times["sequential"], times["fit_group"]),
        "max_val_diff": abs(results["sequential"][0] - results["fit_group"][0]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cnn-epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ks", default="1,4,16,64")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 2 repeats")
    parser.add_argument("--data-dir", default=None, help="folder holding california_housing and usps")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.cnn_epochs, args.repeats = 1, 1, 2
    data_dir = args.data_dir or (str(SHARED) if SHARED.is_dir() else None)
    torch.set_num_threads(1)
    info = machine()
    print(f"# vectorized.py  epochs={args.epochs} cnn_epochs={args.cnn_epochs} repeats={args.repeats}")
    print(f"# {info['cpu']}, nproc={info['nproc']}, torch {info['torch']}, python {info['python']}, {info['date']}")

    housing = load_dataset(DataSection(name="california_housing"), TaskSection(), data_dir=data_dir)
    mlp = MLPModel(hidden_dims=[64, 64])
    print(f"# california_housing: train {len(housing.train.y)} / val {len(housing.val.y)} rows, MLP 8-64-64-1, "
          "Adam, Huber, batch 32, threads 1, no trial folders\n")
    grouped(housing, mlp, configs(2, 1, 32, "huber", ["r2"]))  # warm-up
    sequential(housing, mlp, configs(1, 1, 32, "huber", ["r2"]))
    rows, verdicts = [], []
    for k in (int(v) for v in args.ks.split(",")):
        r = compare(housing, mlp, configs(k, args.epochs, 32, "huber", ["r2"]), args.repeats)
        rows.append(["MLP 8-64-64-1", 32, k, f"{r['seq']:.2f}", f"{r['group']:.2f}", f"{r['speedup']:.2f}x",
                     f"{r['max_val_diff']:.1e}"])
        if k in MLP_TARGETS:
            verdicts.append((f"MLP K={k}", r["speedup"], MLP_TARGETS[k]))

    usps = load_dataset(DataSection(name="usps", data_dir=data_dir), TaskSection())
    cnn = CNNModel(channels=[16, 16], kernel_size=3)
    r = compare(usps, cnn, configs(CNN_K, args.cnn_epochs, 64, "cross_entropy", ["accuracy"]), args.repeats)
    rows.append([f"USPS CNN 16-16 ({len(usps.train.y)} rows)", 64, CNN_K, f"{r['seq']:.2f}", f"{r['group']:.2f}",
                 f"{r['speedup']:.2f}x", f"{r['max_val_diff']:.1e}"])
    verdicts.append((f"CNN K={CNN_K}", r["speedup"], CNN_TARGET))

    headers = ["model", "batch", "K", "sequential trial-epochs/s", "fit_group trial-epochs/s", "speedup",
               "|val_loss diff| last trial"]
    print(table(headers, rows), end="\n\n")
    for name, speedup, target in verdicts:
        print(f"{name}: fit_group/sequential = {speedup:.2f}x (target >= {target:g}x) "
              f"{'ok' if speedup >= target else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
