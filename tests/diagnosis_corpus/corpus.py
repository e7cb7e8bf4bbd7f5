"""A judgement corpus: small studies whose truth is known by construction, on data that ships offline.

Each case builds a CSV from a scikit-learn data set (or a synthetic one), runs a real `tune`, and
diagnoses the run folder. `expect` lists the warnings the construction guarantees, `allow` the ones
that are also true, and every other warning or error counts as a false alarm. `score` reports
warning precision and recall, invalid suggestions (checked through the real config loader) and
contradicting pairs (two kept findings pulling one lever both ways on a shared trial).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fixtures.no_report import without_report
from tunelab.diagnose import diagnose_run
from tunelab.diagnose.advice import lever, override_error, space_error
from tunelab.diagnose.finding import Finding
from tunelab.runs.view import RunView

WARNINGS = ("error", "warning")


def _frame(loader: str, *, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    import sklearn.datasets as ds

    data = getattr(ds, f"load_{loader}")(as_frame=True)
    frame = data.frame.rename(columns=str)
    if noise:
        rng = np.random.default_rng(seed)
        flip = rng.random(len(frame)) < noise
        classes = np.sort(frame["target"].unique())
        frame.loc[flip, "target"] = rng.choice(classes, int(flip.sum()))
    return frame


def _synthetic(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A smooth regression target from 6 features: easy to learn, nothing wrong with it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.1 * rng.normal(size=rows)
    return pd.DataFrame({**{f"x{i}": x[:, i] for i in range(6)}, "target": y})


@dataclass(frozen=True)
class Case:
    """One study: its data, its experiment (merged over the defaults) and the known truth."""

    name: str
    data: Callable[[], pd.DataFrame]
    experiment: dict[str, Any]
    expect: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()
    forbid: frozenset[str] = frozenset()


def _exp(
    space: dict[str, Any], *, strategy: str = "grid", train: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None, data: dict[str, Any] | None = None, metric: str = "val_loss",
    n_trials: int | None = None,
) -> dict[str, Any]:
    search: dict[str, Any] = {"strategy": strategy, "space": space, "objective": {"metric": metric}}
    if n_trials:
        search["n_trials"] = n_trials
    return {
        "model": {"family": "mlp", "hidden_dims": [32], **(model or {})},
        "train": {"epochs": 20, "batch_size": 32, "optimizer": "adam", "lr": 0.01, **(train or {})},
        "data": data or {},
        "search": search,
        "final": {"enabled": False},
    }


def _s(*names: str) -> frozenset[str]:
    return frozenset(names)


CASES: tuple[Case, ...] = (
    Case("healthy", lambda: _frame("breast_cancer"), _exp(
        {"model.activation": ["relu", "gelu"]},
        train={"epochs": 40, "lr": 0.01, "early_stopping": {"patience": 3}},
    ), forbid=_s(*WARNINGS)),
    Case("lr_far_too_high", lambda: _frame("breast_cancer"), _exp(
        {"train.lr": [3.0, 10.0, 30.0]}, train={"optimizer": "sgd", "epochs": 10},
    ), expect=_s("loss_exploding"), allow=_s("failed_share", "best_on_edge", "grad_norm_range", "loss_bouncing"),
        forbid=_s("train_loss_flat", "under_trained", "overfitting")),
    Case("lr_far_too_low", lambda: _frame("wine"), _exp(
        {"train.lr": [1e-6, 3e-6, 1e-5]}, train={"optimizer": "sgd", "epochs": 8},
    ), expect=_s("train_loss_flat"), allow=_s("best_on_edge", "grad_norm_range", "under_trained"),
        forbid=_s("loss_exploding", "overfitting", "loss_bouncing")),
    Case("too_few_epochs", lambda: _frame("digits"), _exp(
        {"model.activation": ["relu", "gelu"]}, train={"epochs": 4, "lr": 0.002},
    ), expect=_s("under_trained"), forbid=_s("overfitting", "loss_exploding", "train_loss_flat")),
    Case("too_few_epochs_regression", _synthetic, _exp(
        {"model.activation": ["relu", "tanh"]}, train={"epochs": 5, "lr": 0.002},
    ), expect=_s("under_trained"), forbid=_s("overfitting", "loss_exploding", "train_loss_flat")),
    Case("heavy_overfitting", lambda: _frame("digits"), _exp(
        {"model.activation": ["relu", "gelu"]}, model={"hidden_dims": [256, 256]},
        train={"epochs": 25, "lr": 0.003, "batch_size": 64}, data={"val_fraction": 0.5, "test_fraction": 0.4},
    ), expect=_s("overfitting"), forbid=_s("under_trained", "train_loss_flat", "loss_exploding")),
    Case("label_noise", lambda: _frame("breast_cancer", noise=0.3), _exp(
        {"model.activation": ["relu", "gelu"]}, model={"hidden_dims": [128, 128]},
        train={"epochs": 30, "lr": 0.005, "batch_size": 64},
    ), expect=_s("overfitting"), forbid=_s("under_trained", "train_loss_flat")),
    Case("dead_knob_momentum", lambda: _frame("iris"), _exp(
        {"train.momentum": [0.0, 0.5, 0.9]}, train={"optimizer": "adam", "epochs": 30, "lr": 0.01},
    ), expect=_s("dead_knob"), allow=_s("objective_ties", "under_trained"),
        forbid=_s("best_on_edge", "loss_exploding")),
    Case("dead_knob_step_size", lambda: _frame("wine"), _exp(
        {"train.step_size": [2, 5, 10]}, train={"scheduler": "constant", "epochs": 30, "lr": 0.01},
    ), expect=_s("dead_knob"), allow=_s("objective_ties"), forbid=_s("best_on_edge", "loss_exploding")),
    Case("tie_heavy_objective", lambda: _frame("wine"), _exp(
        {"train.lr": [0.01, 0.02], "model.hidden_dims": [[32], [64]]},
        train={"epochs": 25}, metric="val_accuracy",
    ), expect=_s("objective_ties"), allow=_s("overfitting", "loss_exploding", "loss_bouncing"),
        forbid=_s("best_on_edge", "train_loss_flat")),
    Case("clipped_high_lr", lambda: _frame("diabetes"), _exp(
        {"model.activation": ["relu", "gelu"]}, train={"epochs": 15, "lr": 0.01, "max_grad_norm": 1.0},
    ), allow=_s("overfitting", "under_trained"), forbid=_s("grad_norm_range", "train_loss_flat")),
    Case("lr_sweep_low_end_learning", lambda: _frame("digits"), _exp(
        {"train.lr": [1e-4, 1e-3, 1e-2]}, train={"epochs": 12},
    ), allow=_s("under_trained", "overfitting", "best_on_edge"), forbid=_s("loss_exploding", "train_loss_flat")),
    Case("healthy_regression", _synthetic, _exp(
        {"model.activation": ["relu", "gelu"]}, train={"epochs": 60, "lr": 0.01, "early_stopping": {"patience": 3}},
    ), forbid=_s(*WARNINGS)),
)


@dataclass
class CaseResult:
    case: Case
    findings: list[Finding]
    invalid: list[str] = field(default_factory=list)
    contradictions: list[str] = field(default_factory=list)

    @property
    def warned(self) -> set[str]:
        return {f.rule for f in self.findings if f.severity in WARNINGS}

    @property
    def missing(self) -> set[str]:
        return set(self.case.expect) - {f.rule for f in self.findings}

    @property
    def false_alarms(self) -> set[str]:
        return {r for r in self.warned if r not in self.case.expect and r not in self.case.allow}

    @property
    def forbidden(self) -> set[str]:
        """Found rules the case forbids by name, or by severity ("warning"/"error" forbids them all)."""
        return {f.rule for f in self.findings if f.rule in self.case.forbid or f.severity in self.case.forbid}


def check_suggestions(run_dir: Path, findings: list[Finding]) -> list[str]:
    """Every override and space change applied through the config loader; the errors, named."""
    run = RunView(run_dir)
    trials = {t.number: t for t in run.trials}
    errors = []
    for f in findings:
        trial = trials.get(f.trials[0]) if f.scope == "trial" and f.trials else None
        if f.overrides and (error := override_error(run, trial, f.overrides)):
            errors.append(f"{f.rule}: {json.dumps(f.overrides)}: {error}")
        if f.space and (error := space_error(run, f.space)):
            errors.append(f"{f.rule}: {json.dumps(f.space)}: {error}")
    return errors


def contradictions(findings: list[Finding]) -> list[str]:
    """Pairs of kept findings that push one lever in opposite directions on a shared trial."""
    out = []
    for i, a in enumerate(findings):
        for b in findings[i + 1:]:
            la, lb = lever(a), lever(b)
            if not la or not lb or la[0] != lb[0] or la[1] == lb[1]:
                continue
            if not a.trials or not b.trials or set(a.trials) & set(b.trials):
                out.append(f"{a.rule} vs {b.rule} on {sorted(set(a.trials) & set(b.trials))}")
    return out


def run_case(case: Case, root: Path) -> CaseResult:
    from tunelab.app.tune import tune
    from tunelab.config.load import validate_experiment

    root.mkdir(parents=True, exist_ok=True)
    csv = root / f"{case.name}.csv"
    case.data().to_csv(csv, index=False)
    raw = json.loads(json.dumps(case.experiment))
    raw["name"] = case.name
    raw["data"] = {"name": "csv", "path": str(csv), "target": "target", **raw["data"]}
    if raw["search"]["objective"]["metric"] == "val_accuracy":
        raw["train"]["metrics"] = ["accuracy"]
    out = root / "runs" / case.name
    with without_report():
        tune(validate_experiment(raw, source=case.name), out=out)
    findings = diagnose_run(out)
    return CaseResult(case, findings, check_suggestions(out, findings), contradictions(findings))


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    invalid: int
    contradicting: int
    results: list[CaseResult]


def score(results: list[CaseResult]) -> Score:
    tp = sum(len(r.warned & set(r.case.expect)) for r in results)
    fp = sum(len(r.false_alarms) for r in results)
    expected = sum(len(r.case.expect) for r in results)
    found = sum(len(set(r.case.expect) - r.missing) for r in results)
    return Score(
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=found / expected if expected else 1.0,
        invalid=sum(len(r.invalid) for r in results),
        contradicting=sum(len(r.contradictions) for r in results),
        results=results,
    )


def run_corpus(root: Path, names: tuple[str, ...] = ()) -> Score:
    return score([run_case(c, root / c.name) for c in CASES if not names or c.name in names])


def report(s: Score) -> str:
    lines = [f"{'case':28} {'warnings':44} missing / false alarms"]
    for r in s.results:
        extra = sorted(r.false_alarms | r.forbidden)
        warned = ", ".join(sorted(r.warned)) or "-"
        lines.append(f"{r.case.name:28} {warned:44} {sorted(r.missing) or '-'} / {extra or '-'}")
        lines += [f"    invalid: {e}" for e in r.invalid] + [f"    contradiction: {c}" for c in r.contradictions]
    lines.append(
        f"precision {s.precision:.2f}  recall {s.recall:.2f}  invalid suggestions {s.invalid}  "
        f"contradicting pairs {s.contradicting}  ({len(s.results)} studies)"
    )
    return "\n".join(lines)
