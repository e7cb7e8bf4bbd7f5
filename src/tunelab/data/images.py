"""`data.name: image_folder`: one sub-folder per class, decoded once into a uint8 memory-mapped cache.

Images are decoded with Pillow, resized to `data.image_size` and written, in split order
(train, then val, then test), into one uint8 file of shape (n, channels, size, size) under
`$TUNELAB_CACHE_DIR/images/` (default `~/.cache/tunelab/images/`). Every split is then a
contiguous slice of that memory map, so a folder larger than memory is paged in as batches are
read instead of being held as float arrays; the trainer converts each batch to float (and
augments it) as it goes (`data/augment.py`). The file's name is a hash of the folder listing
(names, sizes, modification times), the decode settings and the row order, so a changed folder
or split decodes afresh, and a half-written file is never picked up (temp + rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tunelab.config.schema import DataSection, TaskSection
from tunelab.data.cache_dir import cache_root
from tunelab.data.dataset import Dataset, Split
from tunelab.data.split import plan_splits, subsample_rows
from tunelab.errors import ConfigError, DataError, DataPathError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
DECODE_BATCH = 256  # rows decoded before the memory map is flushed
CACHE_FORMAT = 1


@dataclass(frozen=True)
class ImageFolder:
    """The listing of a class-folder tree: files in a fixed order and their class index."""

    root: Path
    classes: list[str]
    files: list[Path]
    labels: np.ndarray

    def fingerprint(self) -> str:
        """sha256 over every file's relative name, size and modification time (not its bytes)."""
        digest = hashlib.sha256(str(self.root.resolve()).encode())
        for path in self.files:
            stat = path.stat()
            digest.update(f"{path.relative_to(self.root)}\x1f{stat.st_size}\x1f{stat.st_mtime_ns}\x1e".encode())
        return digest.hexdigest()


def scan_folder(path: str | Path) -> ImageFolder:
    """Classes are the sorted sub-folder names; images inside each are taken in sorted order.

    Raises:
        DataPathError: the folder is missing, or holds fewer than two classes, or a class has no image
            (a DataError located at the line of `data.path`).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataPathError(f"image folder {root} does not exist or is not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataPathError(f"{root} needs one sub-folder per class (at least 2), found {len(classes)}")
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        found = sorted(
            p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not found:
            raise DataPathError(f"class folder {root / name} holds no image ({', '.join(IMAGE_SUFFIXES)})")
        files += found
        labels += [index] * len(found)
    return ImageFolder(root, classes, files, np.asarray(labels, dtype=np.int64))


def _decode(path: Path, size: int, grayscale: bool) -> np.ndarray:
    """One image as uint8 (channels, size, size); bilinear resize of the whole frame."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if grayscale else "RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"data.path: cannot decode image {path}: {type(exc).__name__}") from None
    return array[None] if grayscale else array.transpose(2, 0, 1)


def decode_cache(folder: ImageFolder, order: np.ndarray, size: int, grayscale: bool) -> tuple[Path, float]:
    """The cache file holding `folder`'s images in `order`, decoding it when missing.

    Returns the file and the seconds spent decoding (0.0 when the cache already existed).
    """
    channels = 1 if grayscale else 3
    key = hashlib.sha256(
        json.dumps([CACHE_FORMAT, folder.fingerprint(), size, grayscale]).encode() + order.tobytes()
    ).hexdigest()[:24]
    target = cache_root() / "images" / f"{key}.u8"
    if target.exists() and target.stat().st_size == len(order) * channels * size * size:
        return target, 0.0
    target.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shape = (len(order), channels, size, size)
        out = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)
        for start in range(0, len(order), DECODE_BATCH):
            for row, index in enumerate(order[start : start + DECODE_BATCH], start=start):
                out[row] = _decode(folder.files[int(index)], size, grayscale)
            out.flush()  # written pages leave memory as the decode goes
        del out
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target, time.perf_counter() - t0


def load_image_folder(cfg: DataSection, task: TaskSection, *, merge_val: bool = False) -> Dataset:
    """Split the folder's images, decode them once into the cache and hand out uint8 split views.

    The split is a seeded shuffle of all images by `val_fraction`/`test_fraction` (`max_rows`
    keeps a seeded subset); `merge_val` (the final model) trains on train + val, which are
    adjacent in the cache, so the same file serves both.
    """
    if task.type not in ("auto", "classification"):
        raise ConfigError(f"data set image_folder is classification, got {task.type}", key="task.type")
    assert cfg.path is not None  # DataSection requires it for image_folder
    folder = scan_folder(cfg.path)
    rows = subsample_rows(plan_splits(len(folder.files), None, cfg), cfg.max_rows, cfg.split_seed)
    order = np.concatenate([rows["train"], rows["val"], rows["test"]]).astype(np.int64)
    path, _ = decode_cache(folder, order, cfg.image_size, cfg.grayscale)
    channels = 1 if cfg.grayscale else 3
    # mode "c": pages are read from the file on demand; the array is writable without touching the file.
    images = torch.from_numpy(
        np.memmap(path, dtype=np.uint8, mode="c", shape=(len(order), channels, cfg.image_size, cfg.image_size))
    )
    labels = torch.from_numpy(folder.labels[order])
    n_train, n_val = len(rows["train"]), len(rows["val"])
    if merge_val:
        n_train, n_val = n_train + n_val, 0
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(order))}
    splits = {name: Split(x=images[a:b], y=labels[a:b]) for name, (a, b) in bounds.items()}
    test = splits["test"] if len(splits["test"]) else None
    digest = hashlib.sha256(path.name.encode() + str((n_train, n_val)).encode()).hexdigest()[:16]
    return Dataset(
        name="image_folder",
        task="classification",
        train=splits["train"],
        val=splits["val"],
        test=test,
        input_shape=(channels, cfg.image_size, cfg.image_size),
        output_dim=len(folder.classes),
        class_labels=list(folder.classes),
        data_hash=digest,
        source=f"image folder {folder.root} ({len(folder.files)} images, {len(folder.classes)} classes)",
    )
