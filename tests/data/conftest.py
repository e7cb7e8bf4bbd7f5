"""Point the loaders at this workspace's shared copies (../shared/data next to the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(autouse=True)
def shared_data_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees TUNELAB_DATA_DIR; an explicit one from the environment wins."""
    folder = Path(os.environ.get("TUNELAB_DATA_DIR") or SHARED_DATA)
    monkeypatch.setenv("TUNELAB_DATA_DIR", str(folder))
    return folder
