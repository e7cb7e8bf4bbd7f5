"""Every file in tests/config/broken_spaces/ fails `tunelab tune FILE --out DIR` the same way.

Exit 2, exactly one stderr line `error: ...` containing the file's `# expect:` text, no traceback,
nothing on stdout, and neither DIR nor anything in the current directory created.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BROKEN = Path(__file__).resolve().parents[1] / "config" / "broken_spaces"
FILES = sorted(BROKEN.glob("*.yaml"))
PREFIX = "# expect: "


def expected_text(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(PREFIX), f"{path.name}: first line must be '{PREFIX}<text>'"
    text = first.removeprefix(PREFIX).strip()
    assert text, f"{path.name}: empty expectation"
    return text


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_broken_spaces_folder_has_at_least_ten_cases():
    assert len(FILES) >= 10
    assert all(expected_text(path) for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_tune_on_a_broken_space_prints_one_error_line_exits_2_and_writes_nothing(path, tmp_path, workdir, cli):
    out = tmp_path / "run"

    result = cli("tune", path, "--out", out, "--quiet")

    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {result.stderr!r}"
    assert lines[0].startswith("error: ")
    assert expected_text(path) in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not out.exists()
    assert list(workdir.iterdir()) == []
