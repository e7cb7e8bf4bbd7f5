"""Diagnosis for the page: findings from `tunelab.diagnose` (when installed) and decisions.md as HTML."""

from __future__ import annotations

import dataclasses
import html
import logging
import re
from pathlib import Path
from typing import Any

from tunelab.report.runinfo import ReportRun, finite, fmt
from tunelab.report.tables import Cell, Table

log = logging.getLogger(__name__)


def findings(run_dir: Path) -> list[dict[str, Any]] | str:
    """Findings as plain dicts, [] when diagnosis is not installed, or a note when it failed."""
    try:
        from tunelab.diagnose.registry import diagnose_run
    except ImportError:
        return []
    try:
        found = diagnose_run(run_dir)
    except Exception as exc:  # the report must still be written when a rule breaks
        log.warning("diagnosis failed", exc_info=True)
        return f"diagnosis failed: {type(exc).__name__}: {exc}"
    return [_as_dict(f) for f in found]


def _as_dict(finding: Any) -> dict[str, Any]:
    if hasattr(finding, "to_dict"):
        return dict(finding.to_dict())
    if dataclasses.is_dataclass(finding) and not isinstance(finding, type):
        return dataclasses.asdict(finding)
    return dict(getattr(finding, "__dict__", {"verdict": str(finding)}))


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "; ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    return value if isinstance(value, str) else fmt(value)


SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


def findings_table(found: list[dict[str, Any]]) -> tuple[Table, list[str]]:
    """One row per finding (most important first, as diagnose_run orders them) and a CSS class per row."""
    headers = ["severity", "trials", "finding", "evidence", "next experiment", "rule"]
    rows: list[list[Cell]] = []
    classes = []
    for f in found:
        severity = str(f.get("severity", "info"))
        trials = f.get("trials") or []
        where = ", ".join(f"#{n}" for n in trials) or str(f.get("scope", ""))
        rows.append([
            (severity, float(SEVERITY_RANK.get(severity, 3))),
            (where, float(trials[0]) if trials and finite(trials[0]) else -1.0),
            (_text(f.get("title") or f.get("rule", "")), None),
            (_text(f.get("evidence", "")), None),
            (_text(f.get("next_experiment", "")), None),
            (_text(f.get("rule", "")), None),
        ])
        classes.append("sev-" + (re.sub(r"[^a-z]", "", severity.lower()) or "info"))
    return Table(headers, rows), classes


def decisions_markdown(run: ReportRun) -> str:
    """decisions.md as tunelab.diagnose would write it now, else the file in the folder, else ''."""
    try:
        from tunelab.diagnose.decisions import decisions_markdown as build
    except ImportError:
        build = None
    if build is not None:
        try:
            return build(run.view)
        except Exception:  # fall back to what the run recorded
            log.warning("decision cards could not be rebuilt", exc_info=True)
    path = run.view.layout.decisions_md
    return path.read_text(encoding="utf-8") if path.exists() else ""


def split_decisions(text: str) -> tuple[str, str]:
    """(cards, findings) parts of decisions.md, without its title and section headings."""
    cards, findings, part = [], [], "cards"
    for line in text.splitlines():
        if re.match(r"#\s", line):
            continue
        if re.match(r"##\s+findings", line.strip(), re.IGNORECASE):
            part = "findings"
            continue
        if re.match(r"##\s+decision card", line.strip(), re.IGNORECASE):
            continue
        (cards if part == "cards" else findings).append(line)
    return "\n".join(cards).strip(), "\n".join(findings).strip()


def _inline(text: str) -> str:
    """Escape, then allow **bold** and `code` (the markup is added after escaping, so it stays safe)."""
    out = html.escape(html.unescape(text.replace("\\|", "|")))
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def markdown_html(text: str) -> str:
    """The little Markdown decisions.md uses: headings, tables, bullets, quotes, paragraphs."""
    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in table if any(r))
            out.append(f"<table>{rows}</table>")
            table.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            if not re.fullmatch(r"\|?[\s:|-]+\|?", stripped):
                table.append(_cells(stripped))
            continue
        flush()
        heading = re.match(r"(#{1,6})\s+(.*)", stripped)
        if heading:
            level = min(6, len(heading.group(1)) + 2)
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif stripped.startswith(("- ", "* ")):
            out.append(f"<ul><li>{_inline(stripped[2:])}</li></ul>")
        elif stripped.startswith(">"):
            out.append(f'<p class="note">{_inline(stripped.lstrip("> "))}</p>')
        elif stripped:
            out.append(f"<p>{_inline(stripped)}</p>")
    flush()
    return "\n".join(out)
