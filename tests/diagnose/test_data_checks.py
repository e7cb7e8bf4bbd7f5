"""Data-check rules over data_checks.json, and the file written once by `tunelab train`, read by diagnose/report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from tunelab.diagnose import DEFAULT_THRESHOLDS
from tunelab.diagnose.registry import diagnose_run
from tunelab.runs.layout import RunLayout


def _folder(build, checks: dict) -> Path:
    root = build().experiment().root
    RunLayout(root).data_checks.write_text(json.dumps(checks), encoding="utf-8")
    return root


def _by_rule(root: Path, th=DEFAULT_THRESHOLDS) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in diagnose_run(root, th):
        out.setdefault(f.rule, []).append(f)
    return out


LEAK = {"score": "val_accuracy", "baseline": 0.34, "best_feature": "leak", "best_score": 1.0, "top": []}


def test_a_single_feature_leak_is_a_study_error_naming_the_feature(build) -> None:
    (finding,) = _by_rule(_folder(build, {"leakage": LEAK}))["data_leakage"]
    assert finding.severity == "error" and finding.scope == "study"
    assert finding.evidence == "binned on train, leak alone reaches val_accuracy 1.000 on validation " \
                               "(majority class alone: 0.340)"
    assert "data.features" in finding.next_experiment


def test_no_leak_below_the_floor_or_when_the_majority_class_already_scores_that(build) -> None:
    assert "data_leakage" not in _by_rule(_folder(build, {"leakage": {**LEAK, "best_score": 0.95}}))
    assert "data_leakage" not in _by_rule(_folder(build, {"leakage": {**LEAK, "baseline": 0.99}}))
    regression = {"score": "val_r2", "baseline": 0.0, "best_feature": "x", "best_score": 0.97}
    assert "data_leakage" not in _by_rule(_folder(build, {"leakage": regression}))
    assert "data_leakage" in _by_rule(_folder(build, {"leakage": regression}), replace(DEFAULT_THRESHOLDS,
                                                                                        leak_r2_min=0.9))


def test_duplicates_across_splits_are_a_warning_with_counts(build) -> None:
    dups = {"train_val": {"rows": 3, "of": 50, "examples": [1, 4, 9]}, "train_test": {"rows": 0, "of": 50,
            "examples": []}, "val_test": {"rows": 0, "of": 50, "examples": []}, "within_train": 2}
    (finding,) = _by_rule(_folder(build, {"duplicates": dups}))["duplicate_rows"]
    assert finding.severity == "warning"
    assert finding.evidence == "identical features: 3 of 50 val rows repeat a train row (e.g. val rows [1, 4, 9])"


def test_rare_class_and_a_class_missing_from_test_are_warnings(build) -> None:
    balance = {"train": {"a": 90, "b": 10}, "val": {"a": 18, "b": 2}, "test": {"a": 60, "b": 0}}  # 6 b rows expected
    findings = _by_rule(_folder(build, {"class_balance": balance}))["class_imbalance"]
    assert [f.title for f in findings] == ["imbalanced classes", "test classes differ from train"]
    assert findings[0].evidence == "train has 10 rows of class b against 90 of class a"
    assert "val_balanced_accuracy" in findings[0].next_experiment
    assert findings[1].evidence == "classes ['b'] have no test rows between train and test"


def test_class_shares_that_a_random_small_split_explains_are_not_a_finding(build) -> None:
    # 2 b rows expected in 20 test rows: none is a 12% chance; a 0.15 shift on 20 rows is within 3 standard errors
    balance = {"train": {"a": 50, "b": 50}, "val": {"a": 13, "b": 7}, "test": {"a": 20, "b": 0}}
    assert _by_rule(_folder(build, {"class_balance": {**balance, "test": {"a": 9, "b": 11}}})).get(
        "class_imbalance", []) == []
    balance = {"train": {"a": 90, "b": 10}, "val": {"a": 18, "b": 2}, "test": {"a": 20, "b": 0}}
    titles = [f.title for f in _by_rule(_folder(build, {"class_balance": balance}))["class_imbalance"]]
    assert titles == ["imbalanced classes"]


def test_balanced_splits_raise_nothing(build) -> None:
    balance = {"train": {"a": 50, "b": 45}, "val": {"a": 10, "b": 10}}
    assert "class_imbalance" not in _by_rule(_folder(build, {"class_balance": balance}))


def test_empty_and_constant_columns(build) -> None:
    cols = {"constant_in_train": ["c", "e"], "all_missing": ["e"], "missing_values": {"e": 100}}
    findings = _by_rule(_folder(build, {"columns": cols}))["empty_columns"]
    assert [(f.severity, f.evidence) for f in findings] == [
        ("warning", "every row is empty in e (filled with 0 before training)"),
        ("info", "one value in every train row: c"),
    ]


def test_constant_one_hot_indicators_name_their_column_not_a_feature_to_leave_out(build) -> None:
    cols = {"constant_in_train": ["LotArea", "Condition2=PosN", "Condition2=RRAe", "Utilities=NoSeWa"]}
    findings = _by_rule(_folder(build, {"columns": cols}))["empty_columns"]
    plain, indicators = findings
    assert plain.evidence == "one value in every train row: LotArea"
    assert "Condition2=PosN, Condition2=RRAe, Utilities=NoSeWa" in indicators.evidence
    assert "merge the rare categories of Condition2, Utilities" in indicators.next_experiment
    assert "=" not in indicators.next_experiment.partition("of ")[2]


def test_a_folder_without_data_checks_has_no_data_findings(build) -> None:
    rules = set(_by_rule(build().experiment().root))
    assert not rules & {"data_leakage", "duplicate_rows", "class_imbalance", "empty_columns"}


def test_train_writes_data_checks_once_and_diagnose_and_report_show_the_leak(tmp_path: Path, cli) -> None:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, 240)
    rows = ["noise,leak,const,empty,label"] + [
        f"{rng.normal():.4f},{lab * 5 + rng.normal(scale=0.3):.4f},1,,{lab}" for lab in label
    ]
    csv = tmp_path / "leaky.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        f"name: leaky\ndata:\n  name: csv\n  path: {csv}\n  target: label\n  features: all\n"
        "model:\n  hidden_dims: [8]\ntrain:\n  epochs: 2\n", encoding="utf-8")
    out = tmp_path / "run"
    result = cli("train", exp, "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    checks_path = RunLayout(out).data_checks
    checks = json.loads(checks_path.read_text())
    assert checks["leakage"]["best_feature"] == "leak" and checks["leakage"]["best_score"] >= 0.99
    assert checks["columns"]["all_missing"] == ["empty"]
    assert sum(checks["class_balance"]["train"].values()) == checks["rows"]["train"]
    stamp = checks_path.stat().st_mtime_ns
    assert cli("train", exp, "--out", out, "--quiet").exit_code == 0  # a rerun measures nothing again
    assert checks_path.stat().st_mtime_ns == stamp

    rows_json = json.loads(cli("diagnose", out, "--json").stdout)
    leak = next(r for r in rows_json if r["rule"] == "data_leakage")
    assert leak["severity"] == "error" and "leak alone reaches val_accuracy" in leak["evidence"]
    assert rows_json[0]["rule"] == "data_leakage"  # the study error comes first
    assert "leak alone reaches val_accuracy" in (out / "report.html").read_text(encoding="utf-8")
