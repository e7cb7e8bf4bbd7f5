"""tunelab's training loop against the loop the seeds write by hand, on California housing.

    python benchmarks/trainer_loop.py [--epochs 15] [--repeats 3] [--quick]

Competitors, all on one torch thread and the same standardized tensors from `load_dataset`:

  hand             seed 000 written by hand: TensorDataset + DataLoader(shuffle=True), Adam(lr=1e-4),
                   nn.HuberLoss, `loss.item()` per batch, and after every epoch a validation
                   DataLoader under no_grad with `.item()` per batch plus R².
  tunelab          `tunelab.train.loop.fit` writing its trial folder (metrics.jsonl, grad norms,
                   metrics.log, checkpoints every epoch, result.json) into a temp dir.
  tunelab (no files)  the same fit without a layout: what the file writing costs.

Competitors run interleaved (hand, tunelab, tunelab-no-files, hand, ...) and every speed-up
is the median of the round-by-round ratios, so other load on the machine hits all alike.

Second part: this machine's fp32 single-thread matmul GFLOP/s (1024^3, median) and the share
of it tunelab's loop reaches on a wider MLP 8-H-H-1 at batch 256, counting per epoch
    FLOPs = 3 * 2 * S * n_train  (forward + backward, backward = 2x forward)
          +     2 * S * n_val    (validation forward)
with S = sum(in * out) over the Linear layers = 8H + H*H + H.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from _common import interleaved, machine, matmul_gflops, median_ratio, table
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tunelab.config.schema import DataSection, MLPModel, TaskSection, TrainSection
from tunelab.data import Dataset, load_dataset
from tunelab.models import build_model
from tunelab.runs.layout import TrialLayout
from tunelab.train.loop import fit

LR, SEED = 1e-4, 0
TARGETS = {32: 1.5, 256: 4.0}  # tunelab/hand epochs-per-second targets by batch size


def seed_model(hidden: int) -> nn.Sequential:
    """Seed 000's MLP, exactly as written there (Dropout kept, p=0.0 for the base model)."""
    return nn.Sequential(
        nn.Linear(8, hidden),
        nn.ReLU(),
        nn.Dropout(0.0),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 1),
    )


def hand_loop(data: Dataset, batch: int, epochs: int, hidden: int = 64) -> tuple[float, float]:
    """Competitor A; returns the last epoch's (val Huber, val R²)."""
    torch.manual_seed(SEED)  # same initial weights as tunelab's build_model(seed=0)
    model = seed_model(hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.HuberLoss()
    train_loader = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=batch, shuffle=True)
    val_loader = DataLoader(TensorDataset(data.val.x, data.val.y), batch_size=batch)
    log = []
    for epoch in range(1, epochs + 1):
        model.train()
        total = 0.0
        for xb, yb in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
        model.eval()
        val_total, preds, targets = 0.0, [], []
        with torch.no_grad():
            for xb, yb in val_loader:
                out = model(xb)
                val_total += loss_fn(out, yb).item() * len(xb)
                preds.append(out)
                targets.append(yb)
        pred, y = torch.cat(preds), torch.cat(targets)
        r2 = 1.0 - ((y - pred) ** 2).sum().item() / ((y - y.mean()) ** 2).sum().item()
        log.append((epoch, total / len(data.train.y), val_total / len(y), r2))
    return log[-1][2], log[-1][3]


class TunelabFit:
    """Competitor B: `fit` as a trial runs it; each call trains into a fresh folder under `root`."""

    def __init__(self, root: Path) -> None:
        self.root, self.count = root, itertools.count()

    def __call__(
        self, data: Dataset, batch: int, epochs: int, hidden: int = 64, files: bool = True
    ) -> tuple[float, float]:
        cfg = TrainSection(
            epochs=epochs, batch_size=batch, lr=LR, loss="huber", metrics=["r2"], threads=1, device="cpu", seed=SEED
        )
        model = build_model(MLPModel(hidden_dims=[hidden, hidden]), data.input_shape, data.output_dim, seed=SEED)
        layout = TrialLayout(self.root / f"trial-{next(self.count)}") if files else None
        result = fit(model, data, cfg, loss_name="huber", metrics=["r2"], layout=layout, identity={})
        return result.last_record["val_loss"], result.last_record["val_r2"]


def loop_table(data: Dataset, tunelab: TunelabFit, epochs: int, repeats: int) -> tuple[str, dict[int, float]]:
    rows, ratios = [], {}
    for batch in TARGETS:
        times, results = interleaved(
            {
                "hand": lambda b=batch: hand_loop(data, b, epochs),
                "tunelab": lambda b=batch: tunelab(data, b, epochs),
                "tunelab (no files)": lambda b=batch: tunelab(data, b, epochs, files=False),
            },
            repeats,
        )
        for name in times:
            ratio = median_ratio(times["hand"], times[name])
            val_loss = statistics.median(r[0] for r in results[name])
            val_r2 = statistics.median(r[1] for r in results[name])
            eps = epochs / statistics.median(times[name])
            rows.append([batch, name, f"{eps:.2f}", f"{ratio:.2f}x", f"{val_loss:.4f}", f"{val_r2:.4f}"])
        ratios[batch] = median_ratio(times["hand"], times["tunelab"])
    headers = ["batch", "loop", "epochs/s (median)", "speed vs hand", "final val Huber", "final val R²"]
    return table(headers, rows), ratios


def flops_per_epoch(data: Dataset, hidden: int) -> float:
    s = 8 * hidden + hidden * hidden + hidden * 1
    return 3 * 2 * s * len(data.train.y) + 2 * s * len(data.val.y)


def peak_table(data: Dataset, tunelab: TunelabFit, epochs: int, repeats: int) -> str:
    hiddens = (256, 1024)
    fns = {"matmul": matmul_gflops}
    for h in hiddens:
        fns[f"H={h}"] = lambda h=h: tunelab(data, 256, epochs, hidden=h, files=False)
    times, results = interleaved(fns, repeats)
    peaks = results["matmul"]
    rows = [["fp32 matmul 1024x1024 @ 1024x1024", "-", f"{statistics.median(peaks):.1f}", "100%"]]
    for h in hiddens:
        achieved = [epochs * flops_per_epoch(data, h) / t / 1e9 for t in times[f"H={h}"]]
        share = statistics.median(a / p for a, p in zip(achieved, peaks, strict=True))
        rows.append(
            [
                f"tunelab fit, MLP 8-{h}-{h}-1, batch 256",
                f"{epochs / statistics.median(times[f'H={h}']):.2f}",
                f"{statistics.median(achieved):.1f}",
                f"{share:.0%}",
            ]
        )
    return table(["what (1 thread)", "epochs/s", "GFLOP/s", "share of matmul peak"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-epochs", type=int, default=2, help="epochs per fit in the matmul-peak part")
    parser.add_argument("--quick", action="store_true", help="3 epochs, 5 repeats, 1 peak epoch (CI-sized)")
    parser.add_argument("--data-dir", default=None, help="folder holding california_housing (else auto)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.peak_epochs = 3, 5, 1
    torch.set_num_threads(1)

    data = load_dataset(DataSection(name="california_housing"), TaskSection(), data_dir=args.data_dir)
    info = machine()
    print(f"# trainer_loop.py  epochs={args.epochs} repeats={args.repeats} peak_epochs={args.peak_epochs}")
    print(f"# {info['cpu']}, nproc={info['nproc']}, torch {info['torch']}, python {info['python']}, {info['date']}")
    print(
        f"# california_housing: train {len(data.train.y)} / val {len(data.val.y)} rows, MLP 8-64-64-1, "
        f"Adam lr={LR}, Huber, torch threads=1\n"
    )
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-") as tmp:
        tunelab = TunelabFit(Path(tmp))
        hand_loop(data, 256, 1)  # warm-up: first-call costs (allocator, kernels) out of the timings
        tunelab(data, 256, 1)
        loops, ratios = loop_table(data, tunelab, args.epochs, args.repeats)
        print(loops, end="\n\n")
        print(peak_table(data, tunelab, args.peak_epochs, args.repeats), end="\n\n")
    print("FLOPs per epoch = 3*2*S*n_train + 2*S*n_val, S = 8H + H*H + H (Linear in*out summed)\n")
    for batch, target in TARGETS.items():
        verdict = "ok" if ratios[batch] >= target else "BELOW TARGET"
        print(f"batch {batch}: tunelab/hand = {ratios[batch]:.2f}x (target >= {target:g}x) {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
