"""report.html: escaped user text, self-contained, identical when rebuilt from a copied folder."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from tunelab.report.html import write_report

XSS_NAME = "<script>alert(1)</script>"


def _outside_pre(page: str) -> str:
    return re.sub(r"<pre>.*?</pre>", "", page, flags=re.DOTALL)


def test_experiment_name_with_a_script_tag_is_escaped_everywhere(xss_run: Path) -> None:
    page = write_report(xss_run).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert re.search(r"<title>&lt;script&gt;alert\(1\)&lt;/script&gt;", page)
    assert page.count("<script>") == 1  # only the page's own sort script


def test_page_requests_nothing_from_the_network(grid_run: Path) -> None:
    page = _outside_pre(write_report(grid_run).read_text(encoding="utf-8"))
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page, re.IGNORECASE)
    assert not re.search(r"https?://", page)
    assert "@import" not in page and "url(" not in page
    srcs = re.findall(r"""src="([^"]*)\"""", page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "Content-Security-Policy" in page


def test_page_has_summary_best_configuration_plots_and_experiment(grid_run: Path) -> None:
    page = write_report(grid_run).read_text(encoding="utf-8")
    for text in ("Best configuration", 'class="sortable fitted"', "Parallel coordinates", "strategy: grid",
                 'id="plot-axis_momentum"', "Decision card"):
        assert text in page, text


def test_copied_folder_gives_the_same_page(grid_run: Path, tmp_path: Path) -> None:
    original = write_report(grid_run).read_bytes()
    copy = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(grid_run, copy)
    shutil.rmtree(grid_run / "plots")  # the copy must not need anything from the original place
    try:
        rebuilt = write_report(copy).read_bytes()
    finally:
        write_report(grid_run)
    assert rebuilt == original
    assert str(grid_run).encode() not in rebuilt


def test_train_folder_page_shows_learning_curves_and_grad_norms(train_run: Path) -> None:
    page = write_report(train_run).read_text(encoding="utf-8")
    assert 'id="plot-learning_curves"' in page and 'id="plot-grad_norms"' in page
    assert "single training run" in page


def test_cli_report_prints_the_page_path(cli: Callable[..., Result], lr_sweep_run: Path) -> None:
    result = cli("report", lr_sweep_run)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(lr_sweep_run / "report.html")
    assert (lr_sweep_run / "plots" / "lr_sweep.png").exists()


def test_cli_report_on_a_folder_that_is_not_a_run_is_one_line_exit_2(cli: Callable[..., Result],
                                                                     tmp_path: Path) -> None:
    result = cli("report", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path} is not a tunelab run folder (no experiment.yaml)\n"
    assert not (tmp_path / "report.html").exists()


def test_xss_name_reaches_the_page_title_only_escaped(xss_run: Path) -> None:
    page = write_report(xss_run).read_text(encoding="utf-8")
    title = re.search(r"<title>(.*?)</title>", page, re.DOTALL)
    assert title and XSS_NAME not in title.group(1)
