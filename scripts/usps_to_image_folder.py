"""Render ESL's USPS digits (zip.train.gz + zip.test.gz) as an image folder: OUT/<digit>/<split>-<row>.png.

The 16x16 grey images go from [-1, 1] to 0..255 (ink dark on white, as scanned). Used by
examples/seed003_image_folder.yaml to run seed 003's study through `data.name: image_folder`.

    python scripts/usps_to_image_folder.py runs/usps_images                   # all 9,298 images
    python scripts/usps_to_image_folder.py runs/usps_images --per-class 60    # a small copy
    python scripts/usps_to_image_folder.py OUT --data-dir /work/shared/data    # where usps/ lives
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

FILES = ("zip.train.gz", "zip.test.gz")


def find_usps(data_dir: str | None) -> Path:
    """The folder holding zip.train.gz: --data-dir (or $TUNELAB_DATA_DIR), itself or its usps/ child."""
    root = Path(data_dir or os.environ.get("TUNELAB_DATA_DIR") or "data").expanduser()
    for folder in (root / "usps", root):
        if all((folder / name).is_file() for name in FILES):
            return folder
    raise SystemExit(f"usps_to_image_folder: no {' and '.join(FILES)} under {root} or {root / 'usps'}")


def render(source: Path, out: Path, per_class: int | None = None) -> int:
    """Write the PNGs (the first `per_class` rows of each digit, file order); returns how many."""
    written = 0
    counts: dict[int, int] = {}
    for name in FILES:
        split = name.split(".")[1]  # train | test
        table = np.loadtxt(source / name, dtype=np.float64)
        for row, values in enumerate(table):
            digit = int(values[0])
            if per_class is not None and counts.get(digit, 0) >= per_class:
                continue
            counts[digit] = counts.get(digit, 0) + 1
            pixels = np.clip((1.0 - values[1:].reshape(16, 16)) * 127.5, 0, 255).astype(np.uint8)
            folder = out / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels, "L").save(folder / f"{split}-{row:05d}.png")
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to create (one sub-folder per digit)")
    parser.add_argument("--data-dir", help="folder with usps/zip.train.gz (default: $TUNELAB_DATA_DIR)")
    parser.add_argument("--per-class", type=int, default=None, help="at most this many images per digit")
    args = parser.parse_args(argv)
    count = render(find_usps(args.data_dir), args.out, args.per_class)
    print(f"wrote {count} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
