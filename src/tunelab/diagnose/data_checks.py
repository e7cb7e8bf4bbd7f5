"""Rules over `data_checks.json` (seed 004's hygiene rows): leakage, duplicates, class balance, empty columns.

The numbers were measured once when the data were prepared (`tunelab.data.checks`); these rules
only judge them, so a copied or finished run folder is diagnosed without loading any data.
A folder without the file (written before the checks existed) has no data findings.
"""

from __future__ import annotations

import math
from typing import Any

from tunelab.diagnose.finding import Finding
from tunelab.diagnose.thresholds import Thresholds
from tunelab.runs.records import read_json
from tunelab.runs.view import RunView


def _checks(run: RunView) -> dict[str, Any]:
    path = run.layout.data_checks
    if not path.exists():
        return {}
    data = read_json(path)
    return data if isinstance(data, dict) else {}


def _study(rule: str, severity: str, title: str, evidence: str, next_experiment: str) -> Finding:
    return Finding(rule=rule, severity=severity, scope="study", title=title, evidence=evidence,
                   next_experiment=next_experiment)


def data_leakage(run: RunView, th: Thresholds) -> list[Finding]:
    """One feature alone predicts the validation target almost perfectly: the target leaks into the inputs."""
    leak = _checks(run).get("leakage") or {}
    score, best = leak.get("best_score"), leak.get("best_feature")
    if score is None or best is None:
        return []
    accuracy = leak.get("score") == "val_accuracy"
    floor = th.leak_accuracy_min if accuracy else th.leak_r2_min
    if score < floor or (accuracy and score - float(leak.get("baseline", 0.0)) < th.leak_margin_min):
        return []
    baseline = f" (majority class alone: {leak['baseline']:.3f})" if accuracy else ""
    return [_study(
        "data_leakage", "error", f"feature {best} alone predicts the target",
        f"binned on train, {best} alone reaches {leak['score']} {score:.3f} on validation{baseline}",
        f"check how {best} is made; if it is derived from the target, leave it out of data.features",
    )]


def duplicate_rows(run: RunView, th: Thresholds) -> list[Finding]:
    """Validation or test rows whose features also appear in an earlier split: they are not unseen."""
    dups = _checks(run).get("duplicates") or {}
    parts = []
    for pair in ("train_val", "train_test", "val_test"):
        item = dups.get(pair)
        if isinstance(item, dict) and item.get("rows"):
            a, b = pair.split("_")
            parts.append(f"{item['rows']} of {item['of']} {b} rows repeat a {a} row (e.g. {b} rows {item['examples']})")
    if not parts:
        return []
    pairs = [dups[k] for k in ("train_val", "train_test", "val_test") if isinstance(dups.get(k), dict)]
    share = max(item.get("rows", 0) / max(1, item.get("of") or 1) for item in pairs)
    return [_study(
        "duplicate_rows", "warning" if share >= th.duplicate_share_warn else "info", "rows repeated across splits",
        "identical features: " + "; ".join(parts),
        "deduplicate before splitting, or split by group, so validation and test measure unseen rows",
    )]


def _share(count: int, total: int) -> float:
    p = count / total
    return p * (1 - p)


def class_imbalance(run: RunView, th: Thresholds) -> list[Finding]:
    """A rare class in train, or splits whose class shares differ: accuracy hides what happens to it."""
    balance = _checks(run).get("class_balance") or {}
    train = balance.get("train")
    if not isinstance(train, dict) or not train or sum(train.values()) == 0:
        return []
    findings = []
    small, large = min(train, key=train.get), max(train, key=train.get)
    if train[large] and train[small] / train[large] < th.class_ratio_min:
        findings.append(_study(
            "class_imbalance", "warning", "imbalanced classes",
            f"train has {train[small]} rows of class {small} against {train[large]} of class {large}",
            "optimise val_balanced_accuracy or val_f1 (train.metrics, search.objective.metric) instead of accuracy",
        ))
    total = sum(train.values())
    for split in ("val", "test"):
        counts = balance.get(split)
        if not isinstance(counts, dict) or not sum(counts.values()):
            continue
        n = sum(counts.values())
        # A random split of n rows moves a class share by about sqrt(p(1-p)/n): only a shift well past
        # that noise (and past the threshold), or a class missing that should have had several rows,
        # says the split differs from train.
        shift, noisy = max(
            ((abs(counts.get(c, 0) / n - train[c] / total), 3 * math.sqrt(_share(train[c], total) / n)) for c in train),
            key=lambda pair: pair[0] - pair[1],
        )
        missing = [c for c in train if not counts.get(c) and n * train[c] / total >= th.class_missing_expected_min]
        if (shift > th.class_share_shift_max and shift > noisy) or missing:
            what = f"classes {missing} have no {split} rows" if missing else f"a class share differs by {shift:.2f}"
            findings.append(_study(
                "class_imbalance", "warning", f"{split} classes differ from train",
                f"{what} between train and {split}",
                "split with stratification or another data.split_seed; use a larger split",
            ))
    return findings


def empty_columns(run: RunView, th: Thresholds) -> list[Finding]:
    """Columns with no value at all, or one value in every training row: they cannot help the model."""
    cols = _checks(run).get("columns") or {}
    findings = []
    if cols.get("all_missing"):
        findings.append(_study(
            "empty_columns", "warning", "columns with no values",
            f"every row is empty in {', '.join(cols['all_missing'])} (filled with 0 before training)",
            "leave them out of data.features, or fix how the file is read",
        ))
    constant = [c for c in cols.get("constant_in_train", []) if c not in cols.get("all_missing", [])]
    # `column=value` names are one-hot indicators of a text column's categories (data/tabular.py): not
    # columns of the file, so data.features cannot leave them out; their column is what the user can act on.
    indicators = [c for c in constant if "=" in c]
    plain = [c for c in constant if "=" not in c]
    if plain:
        findings.append(_study(
            "empty_columns", "info", "constant columns", f"one value in every train row: {_shown(plain)}",
            "leave them out of data.features (they carry no signal); harmless otherwise",
        ))
    if indicators:
        sources = list(dict.fromkeys(c.partition("=")[0] for c in indicators))
        findings.append(_study(
            "empty_columns", "info", "categories absent from train",
            f"one-hot indicators with one value in every train row (a category no train row has, or every one): "
            f"{_shown(indicators)}",
            f"harmless: they carry no signal; if there are many, merge the rare categories of {_shown(sources)} "
            "in the file, or leave the column out of data.features",
        ))
    return findings


def _shown(names: list[str], most: int = 8) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
