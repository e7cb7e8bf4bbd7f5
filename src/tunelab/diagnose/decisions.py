"""The decision card of the study (one per stage for a staged study) and the findings: a run folder's evidence."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tunelab.diagnose.cards import NEXT_KNOB, DecisionCard, study_card
from tunelab.diagnose.evidence import Card, Evidence, MissingStage, read_evidence, write_evidence_files
from tunelab.diagnose.finding import Finding, sort_findings
from tunelab.diagnose.readings import describe, fixed_space_values, fmt, searched_knobs, short_names
from tunelab.diagnose.registry import RULES, diagnose_view
from tunelab.diagnose.split import split_text
from tunelab.diagnose.study import best_on_edge
from tunelab.diagnose.thresholds import DEFAULT_THRESHOLDS, Thresholds
from tunelab.errors import RunFolderError
from tunelab.runs.records import read_json
from tunelab.runs.view import RunView


@dataclass(frozen=True)
class StageRun:
    """One stage of a staged study: its label, its question and its sub-run folder (None when missing)."""

    label: str
    question: str
    run: RunView | None
    run_dir: Path


def stage_runs(run: RunView) -> list[StageRun]:
    """The stages listed in the run folder's stages.json, in order; [] when there is none."""
    path = run.layout.stages_json  # written by the staged strategy: [{stage, name, question, run_dir}, ...]
    if not path.exists():
        return []
    try:
        data: Any = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path} is damaged: {type(exc).__name__}") from None
    entries = data.get("stages", []) if isinstance(data, Mapping) else data
    if not isinstance(entries, list):
        raise RunFolderError(f"{path} is damaged: expected a list of stages")
    stages = []
    for i, entry in enumerate(e for e in entries if isinstance(e, Mapping)):
        number = entry.get("stage", i + 1)
        name = entry.get("name")
        label = f"Stage {number}" + (f": {name}" if name else "")
        run_dir = Path(str(entry.get("run_dir", "")))
        run_dir = run_dir if run_dir.is_absolute() else run.root / run_dir
        try:
            view: RunView | None = RunView(run_dir)
        except RunFolderError:
            view = None
        stages.append(StageRun(label, str(entry.get("question") or ""), view, run_dir))
    return stages


def _recorded_findings(run: RunView) -> list[Finding] | None:
    """The findings a stage's own evidence.json holds; None when it has none readable."""
    evidence = read_evidence(run.layout)
    return None if evidence is None else [f for label, f in evidence.findings if not label]


def collect_findings(
    run: RunView, thresholds: Thresholds = DEFAULT_THRESHOLDS, *, recorded_stages: bool = False
) -> list[tuple[str, Finding]]:
    """(stage label or '', finding) for the folder and each stage's sub-run, most important first.

    `recorded_stages`: take a stage's findings from the evidence.json its own `tune` just wrote
    (the staged `tune` does, so each folder's rules run once); otherwise the rules run on it now.
    """
    labelled = [("", f) for f in diagnose_view(run, thresholds)]
    for stage in stage_runs(run):
        if stage.run is not None:
            found = _recorded_findings(stage.run) if recorded_stages else None
            found = diagnose_view(stage.run, thresholds) if found is None else found
            labelled += [(stage.label, f) for f in found]
    order = sort_findings([f for _, f in labelled], RULES)
    rank = {id(f): i for i, f in enumerate(order)}
    return sorted(labelled, key=lambda pair: rank[id(pair[1])])


def _fixed(run: RunView, searched: Sequence[str]) -> dict[str, Any]:
    """What the study held constant: seed, split, model, optimizer, epochs, batch size, pinned knobs."""
    exp = run.experiment
    data, model, train = (exp.get(k) if isinstance(exp.get(k), Mapping) else {} for k in ("data", "model", "train"))
    out: dict[str, Any] = {}
    if "train.seed" not in searched and train.get("seed") is not None:
        out["seed"] = train["seed"]
    if not any(p.startswith("data.") for p in searched) and data:
        out["split"] = split_text(exp, run.split_rows)
    if "model.family" not in searched and model.get("family"):
        size = ""
        if not any(p.startswith("model.hidden") or p == "model.num_layers" for p in searched):
            dims = model.get("hidden_dims") or model.get("channels")
            size = f" {dims}" if dims else (
                f" {model.get('hidden_dim')}×{model.get('num_layers')}" if model.get("hidden_dim") else ""
            )
        out["model"] = f"{model['family']}{size}"
    for key in ("optimizer", "epochs", "batch_size"):
        if f"train.{key}" not in searched and train.get(key) is not None:
            out[key] = train[key]
    pinned = fixed_space_values(run)
    names = short_names(list(pinned))
    out.update({names[p]: v for p, v in pinned.items()})
    return out


def build_card(
    run: RunView,
    findings: Sequence[Finding] = (),
    *,
    title: str | None = None,
    question: str | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    earlier: Mapping[str, Any] | None = None,
    following: str | None = None,
) -> DecisionCard | None:
    """The decision card of one study folder; None for a folder without a study (`tunelab train`).

    `earlier`: winners of earlier stages (shown as fixed); `following`: the next stage's label and
    question, which becomes the next experiment unless a range must be widened or an error fixed.
    """
    history = run.history
    if not isinstance(history, Mapping) or not history:
        return None
    knobs = searched_knobs(run)
    best_params = history.get("best_params") if isinstance(history.get("best_params"), Mapping) else {}
    names = short_names(list(dict.fromkeys([k.path for k in knobs] + list(best_params))))
    changed = {names[k.path]: (k.values or (k.low, k.high)) for k in knobs}
    best = {names[p]: v for p, v in best_params.items()}
    metric, direction = run.objective
    # the knobs best_on_edge asks to widen: not one at a natural bound (dropout 0), dead or tied
    edges = [names[p] for finding in best_on_edge(run, thresholds) for p in finding.space]
    card = study_card(
        title=title or ("lr sweep" if run.strategy == "lr_sweep" else f"{run.strategy} search: {run.name}"),
        changed=changed,
        fixed={**{names.get(p, p.split(".")[-1]): v for p, v in (earlier or {}).items()},
               **_fixed(run, [k.path for k in knobs])},
        metric=metric,
        direction=direction,
        best=best,
        best_value=history.get("best_value"),
        edge_knobs=edges,
    )
    updates: dict[str, str] = {
        "changed": "; ".join(f"{names[k.path]} in {describe(k)}" for k in knobs) or "nothing",
    }
    selection = history.get("selection")
    if isinstance(selection, Mapping) and selection.get("rule"):
        updates["selection_metric"] = f"{card.selection_metric}; {selection['rule']}"
    if question:
        updates["question"] = question
    if following and not edges:
        updates["next_experiment"] = f"{following} (the next stage, with this winner fixed)"
    if run.strategy == "lr_sweep" and best and not edges:
        keep = ", ".join(f"{k}={fmt(v)}" for k, v in best.items())
        nxt = NEXT_KNOB.get(list(changed)[-1] if changed else "lr", "batch_size")
        updates["next_experiment"] = f"keep {keep} fixed and compare {nxt} values"
    errors = [f for f in findings if f.severity == "error" and f.scope == "study"]
    if errors:  # a broken selection (e.g. val/test disagree) comes before tuning the next knob
        updates["next_experiment"] = errors[0].next_experiment
    return replace(card, **updates)


def _stage_winners(run: RunView) -> dict[str, Any]:
    """The values a stage settled: its winner's values of the knobs it searched."""
    best = run.history.get("best_params") if isinstance(run.history, Mapping) else None
    searched = {k.path for k in searched_knobs(run)}
    return {p: v for p, v in (best or {}).items() if p in searched} if isinstance(best, Mapping) else {}


def build_evidence(
    run: RunView, thresholds: Thresholds = DEFAULT_THRESHOLDS, *, recorded_stages: bool = False
) -> Evidence:
    """The folder's evidence: the rules run once over it and each stage (`recorded_stages` as in
    `collect_findings`), then the cards built from their findings."""
    labelled = collect_findings(run, thresholds, recorded_stages=recorded_stages)
    root_findings = [f for label, f in labelled if not label]
    cards: list[Card] = []
    card = build_card(run, root_findings, thresholds=thresholds)
    if card is not None:
        cards.append(card)
    stages = stage_runs(run)
    earlier: dict[str, Any] = {}
    for i, stage in enumerate(stages):
        if stage.run is None:
            cards.append(MissingStage(stage.label, str(stage.run_dir)))
            continue
        stage_findings = [f for label, f in labelled if label == stage.label]
        nxt = stages[i + 1] if i + 1 < len(stages) else None
        stage_card = build_card(
            stage.run, stage_findings, title=stage.label, question=stage.question or None, thresholds=thresholds,
            earlier=earlier, following=f"{nxt.label}: {nxt.question}" if nxt is not None else None,
        )
        earlier = {**earlier, **_stage_winners(stage.run)}
        if stage_card is not None:
            cards.append(stage_card)
    return Evidence(run.name, tuple(cards), tuple(labelled))


def write_decisions(run_dir: str | Path, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> Path:
    """Write decisions.md (decision cards, then findings) and evidence.json into the run folder, atomically.

    Raises:
        RunFolderError: the folder is missing, damaged or cannot be written.
    """
    run = RunView(run_dir)
    return write_evidence_files(run.layout, build_evidence(run, thresholds))
