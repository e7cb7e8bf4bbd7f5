"""scripts/setup.sh says what it does and installs nothing the second time (a stand-in pip records calls)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE_PYTHON = (
    '#!/bin/sh\necho "$*" >> "$(dirname "$0")/../calls.log"\n[ "$1" = "--version" ] && echo "Python 3.11.0"\nexit 0\n'
)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the files setup.sh reads, with a .venv whose python only logs its arguments."""
    for name in ("scripts/setup.sh", "pyproject.toml", "requirements/constraints.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def _setup(checkout: Path, *args: str) -> list[str]:
    proc = subprocess.run(["bash", str(checkout / "scripts" / "setup.sh"), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def _pip_calls(checkout: Path) -> list[str]:
    log = checkout / ".venv" / "calls.log"
    return [line for line in log.read_text().splitlines() if line.startswith("-m pip install")] if log.exists() else []


def test_first_run_prints_a_line_per_step_and_the_second_installs_nothing(checkout: Path) -> None:
    first = _setup(checkout)
    assert first[0] == "setup: .venv exists (Python 3.11.0)"
    assert first[1:] == [
        "setup: installing torch 2.13.0 (CPU wheel)",
        "setup: installing tunelab + pinned dependencies",
        "setup: done: .venv/bin/tunelab (runtime)",
    ]
    assert len(_pip_calls(checkout)) == 2

    second = _setup(checkout)
    assert second[1].startswith("setup: dependencies up to date (pyproject.toml + constraints.txt unchanged: ")
    assert len(_pip_calls(checkout)) == 2  # nothing reinstalled


def test_a_changed_constraints_file_installs_again(checkout: Path) -> None:
    _setup(checkout)
    with (checkout / "requirements" / "constraints.txt").open("a") as handle:
        handle.write("# a new pin\n")
    assert _setup(checkout)[1] == "setup: installing torch 2.13.0 (CPU wheel)"
    assert len(_pip_calls(checkout)) == 4


def test_a_runtime_setup_after_a_dev_one_installs_nothing(checkout: Path, monkeypatch) -> None:
    (checkout / "scripts" / "install_chromium.sh").write_text("exit 0\n")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    _setup(checkout, "dev")
    dev_calls = _pip_calls(checkout)
    assert dev_calls[-1].endswith("-e .[dev]")
    assert "nothing to install" in _setup(checkout)[1]
    assert _pip_calls(checkout) == dev_calls
