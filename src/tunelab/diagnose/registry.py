"""The rule registry and `diagnose_run`: every rule over one run folder, most important finding first.

Adding a rule = a function `rule(run, th) -> list[Finding]` in a rule-family module and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tunelab.diagnose import curves, data_checks, final_model, gradients, knobs, study, training
from tunelab.diagnose.advice import reconcile
from tunelab.diagnose.finding import Finding, sort_findings
from tunelab.diagnose.thresholds import DEFAULT_THRESHOLDS, Thresholds
from tunelab.errors import RunFolderError
from tunelab.runs.view import RunView

RuleFn = Callable[[RunView, Thresholds], list[Finding]]

RULES: dict[str, RuleFn] = {
    "val_test_disagree": final_model.val_test_disagree,
    "loss_exploding": curves.loss_exploding,
    "objective_ties": knobs.objective_ties,
    "under_trained": training.under_trained,
    "dead_knob": knobs.dead_knob,
    "train_loss_flat": curves.train_loss_flat,
    "loss_bouncing": training.loss_bouncing,
    "overfitting": curves.overfitting,
    "best_epoch_early": curves.best_epoch_early,
    "grad_norm_range": gradients.grad_norm_range,
    "vanishing_first_layers": gradients.vanishing_first_layers,
    "lowest_lr_still_learning": training.lowest_lr_still_learning,
    "seed_spread": study.seed_spread,
    "best_on_edge": study.best_on_edge,
    "failed_share": study.failed_share,
    "still_improving": study.still_improving,
    "too_few_trials": study.too_few_trials,
    "data_leakage": data_checks.data_leakage,
    "duplicate_rows": data_checks.duplicate_rows,
    "class_imbalance": data_checks.class_imbalance,
    "empty_columns": data_checks.empty_columns,
}


def diagnose_view(run: RunView, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[Finding]:
    """Every rule's findings for an opened run folder, most important first."""
    findings: list[Finding] = []
    for name, rule in RULES.items():
        try:
            findings.extend(rule(run, thresholds))
        except (OSError, UnicodeDecodeError, AttributeError, TypeError, KeyError, ValueError) as exc:
            # records of an unexpected shape: a damaged or foreign folder, reported in one line
            raise RunFolderError(
                f"{run.root} looks damaged: rule {name} could not read it ({type(exc).__name__}: {exc})"
            ) from None
    # two findings pulling one lever both ways on the same trials: the weaker goes, its reason stays
    return sort_findings(reconcile(findings, list(RULES)), RULES)


def diagnose_run(run_dir: str | Path, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[Finding]:
    """Findings for the study and each trial of a run folder, most important first.

    Raises:
        RunFolderError: the folder is missing, not a run folder, or damaged.
    """
    return diagnose_view(RunView(run_dir), thresholds)
