"""The page's diagnosis section, rendered from the run folder's `Evidence` objects (never from Markdown)."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence

from tunelab.diagnose.cards import DecisionCard
from tunelab.diagnose.decisions import build_evidence
from tunelab.diagnose.evidence import NO_FINDINGS, Card, Evidence, read_evidence
from tunelab.diagnose.finding import Finding
from tunelab.report.runinfo import ReportRun
from tunelab.report.tables import Cell, Table

log = logging.getLogger(__name__)
esc = html.escape

SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


def evidence_of(run: ReportRun, given: Evidence | str | None = None) -> Evidence | str:
    """The evidence to show: the one given (by `app.evidence`), else evidence.json, else computed now.

    A string is a one-line note: the diagnosis failed, and the page says so instead of failing.
    """
    if given is not None:
        return given
    recorded = read_evidence(run.view.layout)
    if recorded is not None:
        return recorded
    try:
        return build_evidence(run.view)
    except Exception as exc:  # the report must still be written when a rule breaks
        log.warning("diagnosis failed", exc_info=True)
        return f"diagnosis failed: {type(exc).__name__}: {exc}"


def cards_html(cards: Sequence[Card]) -> str:
    """Each decision card as a heading and a two-column table (the rows decisions.md shows)."""
    out = []
    for card in cards:
        if isinstance(card, DecisionCard):
            rows = "".join(f"<tr><td>{esc(label)}</td><td>{esc(text)}</td></tr>" for label, text in card.rows())
            out.append(f"<h5>{esc(card.title)}</h5>\n<table>{rows}</table>")
        else:
            out.append(f"<h5>{esc(card.label)}</h5>\n<p>No run folder at {esc(card.run_dir)} yet.</p>")
    return "\n".join(out)


def findings_table(labelled: Sequence[tuple[str, Finding]]) -> tuple[Table, list[str]]:
    """One row per finding (most important first, as the evidence orders them) and a CSS class per row.

    A stage column leads when any finding comes from a stage's sub-run.
    """
    staged = any(label for label, _ in labelled)
    headers = (["stage"] if staged else []) + ["severity", "trials", "finding", "evidence", "next experiment", "rule"]
    rows: list[list[Cell]] = []
    classes = []
    for label, f in labelled:
        where = ", ".join(f"#{n}" for n in f.trials) or f.scope
        row: list[Cell] = [(label or "study", None)] if staged else []
        row += [
            (f.severity, float(SEVERITY_RANK.get(f.severity, 3))),
            (where, float(f.trials[0]) if f.trials else -1.0),
            (f.title or f.rule, None),
            (f.evidence, None),
            (f.next_experiment, None),
            (f.rule, None),
        ]
        rows.append(row)
        classes.append("sev-" + (re.sub(r"[^a-z]", "", f.severity.lower()) or "info"))
    return Table(headers, rows), classes


def no_findings_html() -> str:
    return f"<p>{esc(NO_FINDINGS)}</p>"
