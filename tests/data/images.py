"""A generated image folder: 3 classes of coloured shapes (square, disc, triangle) on noisy backgrounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("disc", "square", "triangle")
COLOURS = {"disc": (220, 60, 60), "square": (60, 200, 60), "triangle": (60, 90, 230)}


def make_shapes_folder(root: Path, per_class: int = 30, size: int = 32, seed: int = 0) -> Path:
    """`root/<class>/<i>.png`: one shape per image at a random place and size, colour jittered."""
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            background = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
            image = Image.fromarray(background, "RGB")
            draw = ImageDraw.Draw(image)
            r = int(rng.integers(size // 5, size // 3))
            cx, cy = (int(v) for v in rng.integers(r, size - r, size=2))
            colour = tuple(int(np.clip(c + rng.integers(-30, 31), 0, 255)) for c in COLOURS[name])
            if name == "disc":
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
            elif name == "square":
                draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
            image.save(root / name / f"{i:03d}.png")
    return root
