"""Every file in broken/ fails `tunelab train` the same way: one `error:` line, exit 2, nothing written.

Each file's first line is `# expect: <text the error line must contain>`. The bulk runs in-process
(CliRunner); a few run as a real subprocess to prove the real exit code and stderr.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BROKEN = Path(__file__).parent / "broken"
FILES = sorted(BROKEN.glob("*.yaml"))
SUBPROCESS_FILES = ("epochs_not_an_integer.yaml", "invalid_yaml_syntax.yaml", "cross_entropy_on_regression.yaml")
PREFIX = "# expect: "


def expected_text(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(PREFIX), f"{path.name}: first line must be '{PREFIX}<text>'"
    text = first.removeprefix(PREFIX).strip()
    assert text, f"{path.name}: empty expectation"
    return text


def assert_one_error_line(stderr: str, expected: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {stderr!r}"
    assert stderr.endswith("\n")
    assert lines[0].startswith("error: ")
    assert lines[0] != "error: "
    assert expected in lines[0]
    assert "Traceback" not in stderr


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, so relative paths in a file and a default `runs/` land here."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_broken_folder_holds_at_least_24_cases_each_with_an_expectation():
    assert len(FILES) >= 24
    assert all(expected_text(path) for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_broken_experiment_prints_one_error_line_exits_2_and_writes_nothing(path, tmp_path, workdir, cli):
    out = tmp_path / "run"

    result = cli("train", path, "--out", out, "--quiet")

    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # not some other exception caught by the runner
    assert_one_error_line(result.stderr, expected_text(path))
    assert result.stdout == ""
    assert not out.exists()
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("name", SUBPROCESS_FILES)
def test_broken_experiment_in_a_real_process_exits_2_with_one_stderr_line(name, tmp_path, workdir):
    path = BROKEN / name
    out = tmp_path / "run"

    proc = subprocess.run(
        [sys.executable, "-m", "tunelab", "train", str(path), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=120,
    )

    assert proc.returncode == 2, proc.stderr
    assert_one_error_line(proc.stderr, expected_text(path))
    assert proc.stdout == ""
    assert not out.exists()
    assert list(workdir.iterdir()) == []
