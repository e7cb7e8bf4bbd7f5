"""Shared test plumbing: miniature data files, the real-data switch and an in-process `tunelab` runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fixtures.mini_data import write_mini_data
from fixtures.no_report import without_report
from fixtures.real_data import real_data_dir
from tunelab.cli import app


@pytest.fixture(scope="session")
def mini_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with miniature files of every file-based data set (written once per session)."""
    return write_mini_data(tmp_path_factory.mktemp("mini-data"))


@pytest.fixture
def mini_data_env(mini_data: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TUNELAB_DATA_DIR points at the miniature files, whatever the environment says."""
    monkeypatch.setenv("TUNELAB_DATA_DIR", str(mini_data))
    return mini_data


@pytest.fixture
def data_dir_env() -> Path:
    """The real data folder from TUNELAB_DATA_DIR; skips without one (fails when CI=true)."""
    return real_data_dir()


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run `tunelab ARGS...` in this process (no torch import per call); stdout and stderr kept apart."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture
def no_report() -> Iterator[None]:
    """`tune` in this test writes no decisions, plots or report.html (fixtures/no_report.py says why)."""
    with without_report():
        yield
