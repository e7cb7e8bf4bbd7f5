"""The evidence of a run folder: decisions.md (cards and findings) and report.html.

The only module that reaches `diagnose` and `report` on behalf of a command.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tunelab.diagnose.decisions import collect_findings, write_decisions
from tunelab.diagnose.finding import Finding
from tunelab.errors import TunelabError
from tunelab.report.html import write_report
from tunelab.runs.view import RunView

log = logging.getLogger(__name__)


def write_evidence(run_dir: Path) -> None:
    """decisions.md then report.html; a report problem never fails a finished study."""
    try:
        write_decisions(run_dir)
        write_report(run_dir)
    except (TunelabError, OSError) as exc:
        log.warning("report not written: %s", exc)


def diagnose(run_dir: Path) -> tuple[list[tuple[str, Finding]], Path]:
    """`tunelab diagnose`: (stage label or '', finding) most important first, and the decisions.md written."""
    labelled = collect_findings(RunView(run_dir))
    return labelled, write_decisions(run_dir)


def report(run_dir: Path) -> Path:
    """`tunelab report`: plots/ and report.html rebuilt from the run folder alone."""
    return write_report(run_dir)
