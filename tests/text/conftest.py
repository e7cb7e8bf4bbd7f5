"""Text tests: shared data copies, and one embedding cache folder per test session (computed once)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def text_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """TUNELAB_DATA_DIR at the shared copies (an explicit one wins); embeddings cached in a session folder.

    Session-scoped, so module fixtures that run a whole study see it too (and never touch ~/.cache).
    """
    cache = tmp_path_factory.mktemp("tunelab-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNELAB_DATA_DIR", os.environ.get("TUNELAB_DATA_DIR") or str(SHARED_DATA))
        patch.setenv("TUNELAB_CACHE_DIR", str(cache))
        yield cache
