"""Text tests: miniature query files, and one embedding cache folder per test session (computed once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def text_env(tmp_path_factory: pytest.TempPathFactory, mini_data: Path) -> Iterator[Path]:
    """TUNELAB_DATA_DIR at the miniature data files; embeddings cached in a session folder.

    Session-scoped, so module fixtures that run a whole study see it too (and never touch ~/.cache).
    """
    cache = tmp_path_factory.mktemp("tunelab-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNELAB_DATA_DIR", str(mini_data))
        patch.setenv("TUNELAB_CACHE_DIR", str(cache))
        yield cache
