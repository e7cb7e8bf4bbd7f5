"""Decision cards (seed 004): one per study or stage — the question, what was fixed and changed,
how the winner was picked, the winner, and the one next experiment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tunelab.markdown import md_escape

# What to tune after each knob, following seed 004's order.
NEXT_KNOB = {
    "lr": "batch_size",
    "batch_size": "epochs (early stopping)",
    "epochs": "weight_decay and dropout",
    "weight_decay": "architecture size",
    "dropout": "architecture size",
    "hidden_dim": "optimizer details (betas, scheduler, warmup, momentum)",
    "hidden_dims": "optimizer details (betas, scheduler, warmup, momentum)",
}


@dataclass(frozen=True)
class DecisionCard:
    title: str
    question: str
    fixed: str
    changed: str
    selection_metric: str
    best_setting: str
    next_experiment: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def rows(self) -> list[tuple[str, str]]:
        """(label, text) in the order every rendering shows them (decisions.md, report.html)."""
        return [
            ("Question", self.question),
            ("Fixed", self.fixed),
            ("Changed", self.changed),
            ("Selection metric", self.selection_metric),
            ("Best setting", self.best_setting),
            ("Next experiment", self.next_experiment),
        ]

    def to_markdown(self) -> str:
        body = "\n".join(f"| {label} | {md_escape(text)} |" for label, text in self.rows())
        return f"### {md_escape(self.title)}\n\n| | |\n|---|---|\n{body}\n"


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def study_card(
    title: str,
    changed: Mapping[str, Sequence[Any]],
    fixed: Mapping[str, Any],
    metric: str,
    direction: str,
    best: Mapping[str, Any] | None,
    best_value: float | None,
    edge_knobs: Sequence[str] = (),
) -> DecisionCard:
    """A card for a search over `changed` knobs; the next experiment follows the tuning order."""
    names = ", ".join(changed) or "nothing"
    if best:
        best_text = ", ".join(f"{k}={_fmt(v)}" for k, v in best.items())
        best_setting = f"{best_text} ({metric}={best_value:.4f})" if best_value is not None else best_text
    else:
        best_setting = "no configuration finished"
    if edge_knobs:
        next_exp = f"widen the range of {', '.join(edge_knobs)}: the best value sits on its edge"
    elif best:
        last = list(changed)[-1] if changed else ""
        keep = ", ".join(f"{k}={_fmt(v)}" for k, v in best.items())
        nxt = NEXT_KNOB.get(last, "one local refinement around the winner, with 3 seeds")
        next_exp = f"keep {keep} fixed and tune {nxt}"
    else:
        next_exp = "make training run first: check the data and a much smaller lr"
    return DecisionCard(
        title=title,
        question=f"which value of {names} gives the best {metric}?",
        fixed=", ".join(f"{k}={_fmt(v)}" for k, v in fixed.items()) or "everything else as in experiment.yaml",
        changed="; ".join(f"{k} in [{', '.join(_fmt(v) for v in vals)}]" for k, vals in changed.items()),
        selection_metric=f"{metric} ({direction}) on the validation split, best epoch",
        best_setting=best_setting,
        next_experiment=next_exp,
    )
