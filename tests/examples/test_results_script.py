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


def test_default_selection_leaves_out_slow_examples_and_those_needing_a_prepared_folder(results, monkeypatch) -> None:
    chosen: list[str] = []

    def fake_measure(example, quick, repeat, work, today):
        chosen.append(example.stem)
        return results.Row(example.stem, "quick", "val_loss 1", "-", "1 s", today)

    monkeypatch.setattr(results, "measure", fake_measure)
    assert results.main(["--dry-run", "--quick"]) == 0
    assert "seed003_image_folder" not in chosen and not set(chosen) & set(results.SLOW)
    assert {"seed000_grid", "demo_digits", "california_mlp"} <= set(chosen)


def test_a_failing_example_loses_only_its_own_row_and_exits_1(results, monkeypatch, tmp_path, capsys) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"{results.START}\n{results.HEADER}\n{results.END}\n", encoding="utf-8")

    def fake_run(example, quick, out):
        if example.stem == "demo_digits":
            raise results.RunFailed("tunelab tune demo_digits.yaml failed (exit 2): error: boom")
        return "val_loss", 0.25, ("test_r2", 0.5), 3.0

    monkeypatch.setattr(results, "run_once", fake_run)
    code = results.main(["demo_digits", "california_mlp", "--readme", str(readme)])

    assert code == 1
    text = readme.read_text(encoding="utf-8")
    assert "| `california_mlp` | full | val_loss 0.25 | test_r2 0.5 | 3 s |" in text and "| `demo_digits` |" not in text
    err = capsys.readouterr().err
    assert "error: demo_digits: tunelab tune demo_digits.yaml failed (exit 2): error: boom" in err
    assert err.rstrip().endswith("1 example(s) failed, their rows kept as they were: demo_digits")
