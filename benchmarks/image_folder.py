"""Image-folder throughput: decode (Pillow -> uint8 memory-mapped cache) and training images/s.

    python scripts/usps_to_image_folder.py /tmp/usps_images --data-dir ../shared/data
    python benchmarks/image_folder.py /tmp/usps_images --size 16 --grayscale

Decode is timed on a fresh cache folder (one pass over every file); training runs `fit` on the
memory-mapped train split (batches gathered and converted to float per step), for a ResNet-18
(width 16) and seed 003's small CNN, and reports train images per second of wall time (the
epoch's validation pass included). Absolute numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine

from tunelab.config.load import load_experiment
from tunelab.data.images import decode_cache, scan_folder
from tunelab.data.sources import load_dataset
from tunelab.train.loop import fit
from tunelab.train.trial import model_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--grayscale", action="store_true")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    print(f"# image_folder.py {args.folder} size={args.size} grayscale={args.grayscale}")
    print("# " + ", ".join(f"{k}={v}" for k, v in machine().items()))
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TUNELAB_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        folder = scan_folder(args.folder)
        scan_s = time.perf_counter() - t0
        _, decode_s = decode_cache(folder, np.arange(len(folder.files)), args.size, args.grayscale)
        n = len(folder.files)
        print(f"scan {n} files: {scan_s:.2f} s; decode: {decode_s:.2f} s = {n / decode_s:,.0f} images/s")
        models = {
            "resnet18 width16": {"family": "resnet", "depth": 18, "width": 16},
            "cnn [16, 32]": {"family": "cnn", "channels": [16, 32], "head_dims": [64]},
        }
        for label, model in models.items():
            raw = {
                "data": {"name": "image_folder", "path": str(args.folder), "image_size": args.size,
                         "grayscale": args.grayscale, "augment": {"crop_padding": 2}},
                "model": model,
                "train": {"epochs": args.epochs, "batch_size": args.batch_size, "device": "auto", "threads": 1},
            }
            exp = load_experiment(None, raw=raw)
            data = load_dataset(exp.data, exp.task)
            exp = exp.model_copy(update={"train": exp.train.model_copy(update={"loss": "cross_entropy",
                                                                               "metrics": ["accuracy"]})})
            t0 = time.perf_counter()
            result = fit(model_for(exp, data), data, exp.train, loss_name="cross_entropy", metrics=["accuracy"])
            seconds = time.perf_counter() - t0
            images = len(data.train) * args.epochs
            print(f"train {label}: {images} images in {seconds:.2f} s = {images / seconds:,.0f} images/s "
                  f"(val_accuracy {result.last_record.get('val_accuracy', float('nan')):.3f})")


if __name__ == "__main__":
    main()
