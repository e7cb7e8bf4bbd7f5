"""`tunelab diagnose RUN_DIR [--json]`: findings most important first, decisions.md, exit 2 on a bad folder."""

from __future__ import annotations

import json

SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


def mixed_folder(build):
    b = build().experiment(space={"train.lr": [0.001, 0.01, 0.1]})
    b.trial(0, params={"train.lr": 0.001}, value=0.9, train=[1.0, 0.99, 0.98, 0.98], val=[0.9, 0.9, 0.9, 0.9])
    b.trial(1, params={"train.lr": 0.01}, value=0.45, train=[1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1],
            val=[0.9, 0.5, 0.45, 0.5, 0.6, 0.7, 0.8], extra={"val_r2": [0.1, 0.4, 0.47, 0.4, 0.3, 0.2, 0.1]})
    b.trial(2, params={"train.lr": 0.1}, outcome="diverged", train=[1.0, None], val=[0.9, None])
    b.history().final(trial_number=1, test_r2=-10.4, test_loss=0.5)
    return b.root


def test_json_output_parses_and_is_sorted_by_severity(cli, build):
    root = mixed_folder(build)
    result = cli("diagnose", root, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows and set(rows[0]) == {"rule", "severity", "scope", "trials", "title", "evidence", "next_experiment",
                                     "overrides", "space", "reconciled"}
    ranks = [SEVERITY_RANK[r["severity"]] for r in rows]
    assert ranks == sorted(ranks)
    assert rows[0]["rule"] == "val_test_disagree"  # study-level error before the trial-level one
    assert {r["rule"] for r in rows} >= {"loss_exploding", "train_loss_flat", "overfitting"}
    # best_epoch_early gives the same advice as overfitting on trial 1: one finding stays, the reason kept
    [over] = [r for r in rows if r["rule"] == "overfitting"]
    assert over["reconciled"] and over["reconciled"][0].startswith("dropped best_epoch_early on #1")
    assert "best_epoch_early" not in {r["rule"] for r in rows}
    assert (root / "decisions.md").exists()


def test_table_output_lists_findings_and_writes_decisions(cli, build, monkeypatch):
    from rich.console import Console

    from tunelab.cli import tool_commands as cli_module  # where `diagnose` prints

    monkeypatch.setattr(cli_module, "console", Console(width=250))
    root = mixed_folder(build)
    result = cli("diagnose", root)
    assert result.exit_code == 0, result.output
    assert "val_test_disagree" in result.stdout and "train_loss_flat" in result.stdout
    assert "wrote" in result.stdout and "decisions.md" in result.stdout
    assert "## Findings" in (root / "decisions.md").read_text(encoding="utf-8")


def test_clean_folder_prints_no_findings(cli, build):
    b = build().experiment(strategy="none")
    b.trial(0, train=[1.0, 0.6, 0.4, 0.3], val=[1.0, 0.65, 0.45, 0.35])
    result = cli("diagnose", b.root)
    assert result.exit_code == 0 and "no findings" in result.stdout
    assert json.loads(cli("diagnose", b.root, "--json").stdout) == []


def test_missing_folder_is_one_line_and_exit_2(cli, tmp_path):
    result = cli("diagnose", tmp_path / "nope")
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope'} is not a tunelab run folder (no experiment.yaml)\n"
    assert result.stdout == ""


def test_damaged_experiment_is_one_line_and_exit_2(cli, tmp_path):
    (tmp_path / "experiment.yaml").write_text(": [\n", encoding="utf-8")
    result = cli("diagnose", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'experiment.yaml'} is damaged: ParserError\n"
