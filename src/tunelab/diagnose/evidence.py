"""The evidence of a run folder: its decision cards and findings, computed once and rendered twice.

`build_evidence` runs the rules once; `decisions.md` (Markdown, `to_markdown`) and `evidence.json`
(`to_json`, read back by `tunelab report` and `read_evidence`) are written from the same object, so
the report never parses Markdown back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tunelab.diagnose.cards import DecisionCard
from tunelab.diagnose.finding import Finding
from tunelab.errors import RunFolderError
from tunelab.markdown import md_escape
from tunelab.runs.layout import RunLayout
from tunelab.runs.records import read_json, write_json_atomic, write_text_atomic

EVIDENCE_VERSION = 1
NO_FINDINGS = "No findings: nothing in the curves, gradients or study results looks wrong."


@dataclass(frozen=True)
class MissingStage:
    """A stage listed in stages.json whose run folder does not exist (yet): a card-shaped note."""

    label: str
    run_dir: str

    def to_markdown(self) -> str:
        return f"### {md_escape(self.label)}\n\nNo run folder at {md_escape(self.run_dir)} yet.\n"


Card = DecisionCard | MissingStage


@dataclass(frozen=True)
class Evidence:
    """What the rules and cards say about one run folder: cards in stage order, findings most important first.

    `findings` pairs each finding with its stage label ('' for the folder itself).
    """

    name: str
    cards: tuple[Card, ...]
    findings: tuple[tuple[str, Finding], ...]

    @property
    def staged(self) -> bool:
        """True when any finding comes from a stage's sub-run (tables then get a stage column)."""
        return any(label for label, _ in self.findings)

    def to_markdown(self) -> str:
        """The text of decisions.md."""
        parts = [f"# Decisions: {md_escape(self.name)}", ""]
        if self.cards:
            heading = "## Decision cards" if len(self.cards) > 1 else "## Decision card"
            parts += [heading, "", "\n".join(card.to_markdown() for card in self.cards)]
        parts += ["## Findings", "", "Most important first; thresholds in docs/diagnosis.md.", ""]
        parts.append(findings_markdown(self.findings))
        return "\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The same evidence as plain data (evidence.json)."""
        cards = [
            {"kind": "card", **card.to_dict()} if isinstance(card, DecisionCard)
            else {"kind": "missing_stage", "label": card.label, "run_dir": card.run_dir}
            for card in self.cards
        ]
        found = [{"stage": label, **f.to_dict()} for label, f in self.findings]
        return {"version": EVIDENCE_VERSION, "name": self.name, "cards": cards, "findings": found}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evidence:
        """Evidence from `to_json`'s data.

        Raises:
            ValueError: the data is of another version or shape.
        """
        if not isinstance(data, Mapping) or data.get("version") != EVIDENCE_VERSION:
            raise ValueError(f"expected evidence version {EVIDENCE_VERSION}")
        card_keys = [f.name for f in fields(DecisionCard)]
        finding_keys = {f.name for f in fields(Finding)}
        cards: list[Card] = []
        for entry in data["cards"]:
            if entry["kind"] == "missing_stage":
                cards.append(MissingStage(str(entry["label"]), str(entry["run_dir"])))
            else:
                cards.append(DecisionCard(**{k: str(entry[k]) for k in card_keys}))
        found = tuple(
            (str(entry.get("stage") or ""), Finding(**{k: v for k, v in entry.items() if k in finding_keys}))
            for entry in data["findings"]
        )
        return cls(str(data["name"]), tuple(cards), found)


def findings_markdown(labelled: Sequence[tuple[str, Finding]]) -> str:
    """The findings as one Markdown table (a stage column when any finding comes from a stage)."""
    if not labelled:
        return NO_FINDINGS + "\n"
    staged = any(label for label, _ in labelled)
    header = (["stage"] if staged else []) + ["severity", "rule", "trials", "finding", "evidence", "next experiment"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, f in labelled:
        cells = ([label or "study"] if staged else []) + [
            f.severity, f.rule, f.where, f.title, f.evidence, f.next_experiment
        ]
        lines.append("| " + " | ".join(md_escape(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_evidence_files(layout: RunLayout, evidence: Evidence) -> Path:
    """decisions.md and evidence.json from one evidence object, each atomically; returns decisions.md's path.

    Raises:
        RunFolderError: the folder cannot be written.
    """
    for path, write in ((layout.decisions_md, lambda p: write_text_atomic(p, evidence.to_markdown())),
                        (layout.evidence_json, lambda p: write_json_atomic(p, evidence.to_json()))):
        try:
            write(path)
        except OSError as exc:
            raise RunFolderError(f"cannot write {path}: {exc.strerror or type(exc).__name__}") from None
    return layout.decisions_md


def read_evidence(layout: RunLayout) -> Evidence | None:
    """The folder's evidence.json; None when it is missing, damaged or of another version."""
    path = layout.evidence_json
    if not path.exists():
        return None
    try:
        return Evidence.from_json(read_json(path))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AssertionError):
        return None
