"""A finding: what one rule saw in a run folder, the evidence, and the one next experiment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
SCOPES: tuple[str, ...] = ("study", "trial")


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on the study or on some trials.

    `evidence` is one line with the numbers and epochs behind the verdict; `next_experiment`
    is one line a practitioner could run next, and `overrides`/`space` say the same as input
    tunelab accepts (checked by `tunelab.diagnose.advice`).
    """

    rule: str
    severity: str
    scope: str
    trials: list[int] = field(default_factory=list)
    title: str = ""
    evidence: str = ""
    next_experiment: str = ""
    # the next experiment as tunelab input: `--set` overrides, or a change of search.space
    overrides: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Any] = field(default_factory=dict)
    # why a contradicting, weaker finding on the same trials was dropped in favour of this one
    reconciled: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.severity in SEVERITIES, self.severity  # internal invariant: rules are ours
        assert self.scope in SCOPES, self.scope

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def where(self) -> str:
        """'study' or the trial numbers, e.g. '#3, #7'."""
        if self.scope == "study" and not self.trials:
            return "study"
        numbers = ", ".join(f"#{n}" for n in self.trials)
        return f"study ({numbers})" if self.scope == "study" else numbers


def severity_rank(severity: str) -> int:
    """0 for the most important severity ("error")."""
    return SEVERITIES.index(severity)


def sort_findings(findings: Iterable[Finding], rule_order: Iterable[str] = ()) -> list[Finding]:
    """Most important first: severity, then study before trial, then rule order, then trial number."""
    order = {name: i for i, name in enumerate(rule_order)}
    return sorted(
        findings,
        key=lambda f: (
            severity_rank(f.severity),
            SCOPES.index(f.scope),
            order.get(f.rule, len(order)),
            f.trials[0] if f.trials else -1,
        ),
    )
