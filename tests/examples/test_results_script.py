"""scripts/results.py: the README's results table is rewritten between its markers, nowhere else."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "results.py"
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def results():
    spec = importlib.util.spec_from_file_location("results_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_spread_gives_mean_and_range_of_several_runs(results) -> None:
    assert results._spread([0.7755]) == "0.7755"
    assert results._spread([0.7741, 0.7769]) == "0.7755 (0.7741..0.7769, 2 runs)"
    assert results._spread([]) == "-"


def test_rewrite_replaces_rerun_rows_and_keeps_the_others_with_their_dates(results, tmp_path) -> None:
    readme = tmp_path / "README.md"
    old = "| `slow_one` | full | val_loss 0.1 | test_r2 0.5 | 18 min | 2026-11-26 |"
    readme.write_text(
        f"intro\n{results.START}\n{results.HEADER}\n|---|\n{old}\n"
        "| `fast_one` | full | val_loss 9 | test_r2 0.1 | 1 s | 2026-11-01 |\n"
        f"{results.END}\noutro\n",
        encoding="utf-8",
    )
    row = results.Row(
        "fast_one", "full", "val_loss 0.2", "test_r2 0.7755 (0.7741..0.7769, 2 runs)", "40 s", "2026-11-30"
    )

    results.rewrite(readme, [row], "python scripts/results.py fast_one --repeat 2", "2026-11-30")

    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert old in text and row.line() in text and "val_loss 9" not in text
    assert "by `python scripts/results.py fast_one --repeat 2` on " in text
    assert text.index("`fast_one`") < text.index("`slow_one`")


def test_readme_has_exactly_one_results_block(results) -> None:
    text = README.read_text(encoding="utf-8")
    assert text.count(results.START) == 1 and text.count(results.END) == 1
    rows = results.existing_rows(text)
    assert "seed000_grid" in rows and all(line.count("|") == 7 for line in rows.values())


def test_unknown_example_is_exit_2(results, capsys) -> None:
    assert results.main(["no_such_example", "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown example 'no_such_example'; choose from ")
