"""The registry: every rule listed once, findings sorted most important first, bad folders in one line."""

from __future__ import annotations

import inspect
from dataclasses import replace

import pytest

from tunelab.diagnose import RULES, Finding, diagnose_run
from tunelab.diagnose.finding import sort_findings
from tunelab.diagnose.thresholds import DEFAULT_THRESHOLDS
from tunelab.errors import RunFolderError

EXPECTED_RULES = {
    "train_loss_flat", "loss_exploding", "overfitting", "best_epoch_early", "grad_norm_range",
    "vanishing_first_layers", "seed_spread", "best_on_edge", "failed_share", "still_improving",
    "too_few_trials", "val_test_disagree", "objective_ties", "under_trained", "dead_knob", "loss_bouncing",
    "lowest_lr_still_learning", "data_leakage", "duplicate_rows", "class_imbalance", "empty_columns",
}


def test_registry_holds_every_rule_under_its_function_name():
    assert set(RULES) == EXPECTED_RULES
    for name, fn in RULES.items():
        assert fn.__name__ == name
        assert list(inspect.signature(fn).parameters) == ["run", "th"]


def test_finding_to_dict_has_every_field():
    f = Finding("overfitting", "warning", "trial", [3], "t", "e", "n")
    assert f.to_dict() == {"rule": "overfitting", "severity": "warning", "scope": "trial", "trials": [3],
                           "title": "t", "evidence": "e", "next_experiment": "n", "overrides": {}, "space": {},
                           "reconciled": []}
    assert f.where == "#3"


def test_sorting_puts_errors_first_then_study_before_trial():
    info = Finding("best_epoch_early", "info", "trial", [0])
    warn_trial = Finding("overfitting", "warning", "trial", [1])
    warn_study = Finding("best_on_edge", "warning", "study", [2])
    error = Finding("loss_exploding", "error", "trial", [5])
    assert sort_findings([info, warn_trial, warn_study, error], RULES) == [error, warn_study, warn_trial, info]


def test_diagnose_run_sorts_a_mixed_folder(build):
    b = build().experiment(space={"train.lr": [0.001, 0.01, 0.1]})
    b.trial(0, params={"train.lr": 0.001}, value=0.9, train=[1.0, 0.99, 0.98, 0.98], val=[0.9, 0.9, 0.9, 0.9])
    b.trial(1, params={"train.lr": 0.01}, value=0.45, train=[1.0, 0.6, 0.4, 0.3, 0.2, 0.15],
            val=[0.9, 0.5, 0.45, 0.5, 0.6, 0.7])
    b.trial(2, params={"train.lr": 0.1}, outcome="diverged", train=[1.0, None], val=[0.9, None])
    b.history()
    findings = diagnose_run(b.root)
    ranks = [("error", "warning", "info").index(f.severity) for f in findings]
    assert ranks == sorted(ranks)
    rules = [f.rule for f in findings]
    assert rules[0] == "loss_exploding" and "train_loss_flat" in rules and "overfitting" in rules
    assert "best_on_edge" not in rules  # the diverged lr=0.1 is not the best


def test_thresholds_change_what_fires(build):
    b = build().experiment(strategy="none")
    b.trial(0, train=[1.0, 0.9, 0.85, 0.82], val=[1.0, 0.9, 0.85, 0.82])
    assert not [f for f in diagnose_run(b.root) if f.rule == "train_loss_flat"]
    strict = replace(DEFAULT_THRESHOLDS, flat_rel_drop=0.5)
    assert [f.rule for f in diagnose_run(b.root, strict)] == ["train_loss_flat"]


def test_missing_folder_is_a_run_folder_error(tmp_path):
    with pytest.raises(RunFolderError, match="is not a tunelab run folder"):
        diagnose_run(tmp_path / "nothing")


def test_damaged_history_is_a_run_folder_error(build):
    b = build().experiment(space={"train.lr": [0.1, 1.0]})
    (b.root / "optimization_history.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RunFolderError, match=r"optimization_history\.json is damaged"):
        diagnose_run(b.root)


def test_records_of_the_wrong_shape_are_a_run_folder_error(build):
    b = build().experiment(space={"train.lr": [0.1, 1.0]})
    (b.root / "optimization_history.json").write_text('{"trials": [{"number": 0, "seed_values": 5, '
                                                      '"outcome": "complete", "value": 1.0}, '
                                                      '{"number": 1, "seed_values": 7, "outcome": "complete", '
                                                      '"value": 2.0}]}', encoding="utf-8")
    # seed_values is not a list: reported in one line naming the rule, not a traceback
    with pytest.raises(RunFolderError, match="looks damaged: rule seed_spread could not read it"):
        diagnose_run(b.root)
