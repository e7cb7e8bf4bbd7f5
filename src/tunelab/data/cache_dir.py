"""Where tunelab keeps caches it can rebuild (decoded images, text embeddings)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "TUNELAB_CACHE_DIR"
DEFAULT_CACHE = Path("~/.cache/tunelab")


def cache_root() -> Path:
    """`$TUNELAB_CACHE_DIR` when set, else `~/.cache/tunelab`."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
