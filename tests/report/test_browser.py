"""report.html in a real headless Chromium: it renders, logs no errors and fetches nothing beyond its file.

Chromium comes from scripts/install_chromium.sh. Without it the tests skip, except in CI (CI=true),
where a missing browser fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tunelab.report.html import write_report

from .cdp import FLAGS, Browser


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("chromium is not installed; CI must run scripts/install_chromium.sh first")
    pytest.skip("chromium is not installed (scripts/install_chromium.sh installs it)")


def test_report_renders_to_a_non_trivial_screenshot(chromium: str, grid_run: Path, tmp_path: Path) -> None:
    page = write_report(grid_run)
    shot = tmp_path / "report.png"
    cmd = [chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
           "--window-size=1280,2400", page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 50_000


def test_report_logs_no_errors_and_requests_only_its_own_file(chromium: str, xss_run: Path,
                                                              tmp_path: Path) -> None:
    page = write_report(xss_run)
    browser = Browser(chromium, tmp_path / "profile")
    try:
        session = browser.open_page(page.as_uri())
        sorted_first = browser.send("Runtime.evaluate", {"expression": _CLICK_SORT, "returnByValue": True},
                                    session=session)["result"]["value"]
        title = browser.send("Runtime.evaluate", {"expression": "document.title", "returnByValue": True},
                             session=session)["result"]["value"]
        scripts = browser.send("Runtime.evaluate", {"expression": "document.scripts.length",
                                                    "returnByValue": True}, session=session)["result"]["value"]
        browser.drain(1.0)
    finally:
        stderr = browser.close()
    events = browser.events
    requested = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    assert requested and requested[0] == page.as_uri()
    assert all(url.startswith(("file:", "data:")) for url in requested), requested
    assert not [u for u in requested if u.startswith("file:") and u != page.as_uri()], requested
    errors = [e for e in events if e.get("method") == "Runtime.exceptionThrown"]
    errors += [e for e in events if e.get("method") == "Runtime.consoleAPICalled"
               and e["params"].get("type") in ("error", "assert", "warning")]
    errors += [e for e in events if e.get("method") == "Log.entryAdded"
               and e["params"]["entry"].get("level") in ("error", "warning")]
    assert errors == [], (errors, stderr[-2000:])
    assert title.startswith("<script>alert(1)</script>")  # shown as text, never run
    assert scripts == 1
    assert sorted_first == ["2", "1"]  # the sort script works: 'rank' column descending, then ascending


# Click the summary table's 'rank' header twice: first ascending then descending, report the first row each time.
_CLICK_SORT = """
(function () {
  var table = document.querySelector("#summary table.sortable");
  var th = table.tHead.rows[0].cells[0], out = [];
  th.click(); th.click(); out.push(table.tBodies[0].rows[0].cells[0].textContent);
  th.click(); out.push(table.tBodies[0].rows[0].cells[0].textContent);
  return out;
})()
"""


def test_summary_table_fits_a_1400_px_window(chromium: str, wide_run: Path, tmp_path: Path) -> None:
    page = write_report(wide_run)
    browser = Browser(chromium, tmp_path / "profile")
    try:
        session = browser.open_page(page.as_uri())
        browser.send("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": 900, "deviceScaleFactor": 1,
                                                            "mobile": False}, session=session)
        sizes = browser.send("Runtime.evaluate", {"expression": _WIDTHS, "returnByValue": True},
                             session=session)["result"]["value"]
    finally:
        browser.close()
    assert sizes["page"] <= 1400, sizes
    assert sizes["table"] <= sizes["box"], sizes  # the summary table needs no scrolling of its own
    assert sizes["trialLines"] > 1, sizes  # the long trial names wrap instead of widening the table
    assert sizes["headers"][:3] == ["rank", "trial", "val_loss"], sizes


_WIDTHS = """
(function () {
  var table = document.querySelector("#summary table"), box = table.parentElement;
  var cell = table.tBodies[0].rows[0].cells[1];
  var line = parseFloat(getComputedStyle(cell).lineHeight) || 16;
  return {page: document.documentElement.scrollWidth, table: box.scrollWidth, box: box.clientWidth,
          trialLines: Math.round((cell.clientHeight - 8) / line),
          headers: Array.prototype.map.call(table.tHead.rows[0].cells, function (c) { return c.textContent; })};
})()
"""
