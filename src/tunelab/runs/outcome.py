"""One vocabulary for how a trial ended, and one authority for reading it.

A trial's outcome is written once, by the study runner, into the trial's Optuna user attribute
`outcome` (`history` copies it into optimization_history.json); `result.json` keeps the state of
each *fit* (a seed), which `reduce_seeds` turns into the trial's outcome. Readers ask `outcome_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    """How a trial (or one fit) ended. A `str`, so it compares and serialises as its value."""

    COMPLETE = "complete"  # trained to the end (or early-stopped); has an objective value
    PRUNED = "pruned"  # stopped by the pruner
    DIVERGED = "diverged"  # loss went non-finite or exploded; no value
    CRASHED = "crashed"  # its process died; the configuration is retried
    INTERRUPTED = "interrupted"  # Ctrl-C; the configuration is retried on the next run
    DUPLICATE = "duplicate"  # another trial already holds this configuration
    SKIPPED = "skipped"  # an explicit study had no point left for it

    def __str__(self) -> str:
        return self.value


# Outcomes that use up budget (and appear in tables); crashed and interrupted trials are retried.
COUNTED: tuple[Outcome, ...] = (Outcome.COMPLETE, Outcome.PRUNED, Outcome.DIVERGED)
STOPPED_EARLY: tuple[Outcome, ...] = (Outcome.DIVERGED, Outcome.PRUNED)  # a seed like this decides the trial


def outcome_of(attrs: Mapping[str, Any], default: str = "unknown") -> str:
    """The trial's outcome from its study attributes (or history entry); `state` for a train folder."""
    return str(attrs.get("outcome") or attrs.get("state") or default)
