"""Issue 12's acceptance study: wine as a CSV, an mlp, 20 TPE trials, objective val_accuracy.

Most trials tie at val_accuracy 1.0 there; the winner must be the tied trial with the lowest
val_loss (not the first one found), every place must name it the same way, and the diagnosis must
say the objective cannot rank the trials without contradicting itself or advising invalid input.
"""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.no_report import without_report
from tunelab.app.tune import tune
from tunelab.config.load import validate_experiment
from tunelab.diagnose import diagnose_run

from .corpus import check_suggestions, contradictions


def test_wine_tpe_study_picks_a_trained_winner_and_judges_it_consistently(tmp_path: Path) -> None:
    from sklearn.datasets import load_wine

    csv = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(csv, index=False)
    exp = validate_experiment({
        "name": "wine",
        "data": {"name": "csv", "path": str(csv), "target": "target"},
        "model": {"family": "mlp", "hidden_dims": [64]},
        "train": {"epochs": 20, "metrics": ["accuracy"]},
        "search": {"strategy": "tpe", "n_trials": 20, "objective": {"metric": "val_accuracy"},
                   "space": {"train.lr": {"low": 1e-4, "high": 1e-1, "log": True},
                             "model.dropout": {"low": 0.0, "high": 0.5},
                             "model.hidden_dims": [[32], [64], [128, 64]]}},
        "final": {"enabled": True},
    })
    out = tmp_path / "run"
    with without_report():  # the judgement is diagnose_run's below; the plots are tests/report's
        result = tune(exp, out=out)
    history = json.loads((out / "optimization_history.json").read_text(encoding="utf-8"))
    final = json.loads((out / "final" / "test_metrics.json").read_text(encoding="utf-8"))

    # one winner, named identically everywhere
    assert result.best_params == history["best_params"] == final["params"]
    assert final["trial_number"] == history["best_trial"]
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert f"Winner: #{history['best_trial']} (" in summary and "best epoch picked by the objective" in summary

    # the winner is the tied trial with the lowest val_loss at its chosen epoch, not the first one found
    trials = {t["number"]: t for t in history["trials"]}
    tied = history["selection"]["tied"]
    assert tied[0] == history["best_trial"]
    losses = {}
    for number in tied:
        record = json.loads((out / trials[number]["trial_dir"] / "result.json").read_text(encoding="utf-8"))
        assert record["monitor"] == "val_accuracy"
        losses[number] = record["best_record"]["val_loss"]
    assert losses[history["best_trial"]] == min(losses.values())

    findings = diagnose_run(out)
    rules = {f.rule for f in findings}
    if len(tied) > 3:
        assert "objective_ties" in rules and "best_on_edge" not in rules
    assert check_suggestions(out, findings) == []
    assert contradictions(findings) == []
