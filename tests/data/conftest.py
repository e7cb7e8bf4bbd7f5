"""Loader tests read the miniature files that the tests write (tests/fixtures/mini_data.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _loaders_read_mini_data(mini_data_env: Path) -> Path:
    """Every test in this folder sees TUNELAB_DATA_DIR at the miniature data folder."""
    return mini_data_env
