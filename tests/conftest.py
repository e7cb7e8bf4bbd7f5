"""Shared test plumbing: this workspace's data folder and an in-process `tunelab` runner."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tunelab.cli import app

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def data_dir_env(monkeypatch: pytest.MonkeyPatch) -> Path:
    """TUNELAB_DATA_DIR points at the shared copies (an explicit one from the environment wins)."""
    folder = Path(os.environ.get("TUNELAB_DATA_DIR") or SHARED_DATA)
    monkeypatch.setenv("TUNELAB_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run `tunelab ARGS...` in this process (no torch import per call); stdout and stderr kept apart."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return invoke
