"""The evidence of a run folder: decisions.md, evidence.json and report.html from one computation.

The only module that reaches `diagnose` and `report` on behalf of a command. The rules run once per
call (`diagnose.decisions.build_evidence`); the Markdown, the JSON and the page are renderings of that
one `Evidence` object, so they cannot disagree.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tunelab.diagnose.decisions import build_evidence
from tunelab.diagnose.evidence import Evidence, write_evidence_files
from tunelab.diagnose.finding import Finding
from tunelab.errors import TunelabError
from tunelab.report.html import write_report
from tunelab.report.plots import Renderer
from tunelab.runs.view import RunView

log = logging.getLogger(__name__)


def write_evidence(run_dir: Path, renderer: Renderer | None = None) -> None:
    """decisions.md + evidence.json, then report.html; a diagnosis or report problem never fails a finished study.
    `renderer`: who draws the plots (`tune`'s `PlotPool`, with figures drawn ahead)."""
    try:
        view = RunView(run_dir)
        try:
            # a staged study's stages wrote their evidence moments ago, in this same `tune`
            evidence: Evidence | str = build_evidence(view, recorded_stages=True)
        except TunelabError as exc:  # a rule could not read the folder: the page says so, in one line
            log.warning("decisions not written: %s", exc)
            evidence = f"diagnosis failed: {exc}"
        else:
            write_evidence_files(view.layout, evidence)
        write_report(run_dir, evidence, renderer)
    except (TunelabError, OSError) as exc:
        log.warning("report not written: %s", exc)


def diagnose(run_dir: Path) -> tuple[list[tuple[str, Finding]], Path]:
    """`tunelab diagnose`: (stage label or '', finding) most important first, and the decisions.md written."""
    view = RunView(run_dir)
    evidence = build_evidence(view)
    return list(evidence.findings), write_evidence_files(view.layout, evidence)


def report(run_dir: Path) -> Path:
    """`tunelab report`: the evidence recomputed from the folder as it is now (a later `tunelab final`
    or `work` changes it), written as decisions.md + evidence.json, then plots/ and report.html."""
    view = RunView(run_dir)  # a folder that is not a run folder fails here, in one line
    try:
        evidence: Evidence | str = build_evidence(view)
    except Exception as exc:  # the report must still be written when a rule breaks
        log.warning("diagnosis failed", exc_info=True)
        evidence = f"diagnosis failed: {type(exc).__name__}: {exc}"
    else:
        try:
            write_evidence_files(view.layout, evidence)
        except TunelabError as exc:
            log.warning("decisions not written: %s", exc)
    return write_report(run_dir, evidence)
