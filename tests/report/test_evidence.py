"""Evidence computed once per `tune`: decisions.md, evidence.json and report.html from the same objects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.report.conftest import _experiment, _run

from tunelab.diagnose import registry
from tunelab.diagnose.evidence import Evidence, read_evidence
from tunelab.report.html import write_report
from tunelab.runs.layout import RunLayout


def _count_rule_runs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Wrap one rule of the registry; every run of the rules calls it once per folder."""
    seen: list[Path] = []
    rule = registry.RULES["too_few_trials"]

    def counting(run, th):
        seen.append(run.root)
        return rule(run, th)

    monkeypatch.setitem(registry.RULES, "too_few_trials", counting)
    return seen


def test_one_tune_runs_the_rules_once_and_renders_one_evidence(tmp_path, monkeypatch):
    seen = _count_rule_runs(monkeypatch)
    search = {"strategy": "grid", "space": {"train.lr": [0.01, 1.0]}}
    out = _run(tmp_path, "tune", _experiment("toy_once", search, epochs=2))
    assert seen == [out]  # before this change: three times (decisions.md, the page's cards, its findings)
    evidence = read_evidence(RunLayout(out))
    assert evidence is not None and evidence.cards
    assert (out / "decisions.md").read_text(encoding="utf-8") == evidence.to_markdown()
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<h5>") == len(evidence.cards)
    assert f"<h3>Findings ({len(evidence.findings)})</h3>" in page or "<h3>Findings</h3><p>No findings" in page
    for _, f in evidence.findings:
        assert f">{f.rule}</td>" in page


def test_a_staged_tune_runs_the_rules_once_per_folder(tmp_path, monkeypatch):
    seen = _count_rule_runs(monkeypatch)
    search = {"strategy": "staged", "stages": [
        {"name": "lr", "space": {"train.lr": [0.1, 1.0]}},
        {"name": "momentum", "space": {"train.momentum": [0.0, 0.9]}},
    ]}
    out = _run(tmp_path, "tune", _experiment("toy_staged", search, epochs=2))
    stages = sorted(p for p in (out / "stages").iterdir() if p.is_dir())
    assert len(stages) == 2
    assert sorted(seen) == sorted([out, *stages])  # before: each stage twice (its own tune, then the root's)
    evidence = read_evidence(RunLayout(out))
    assert evidence is not None and [c.title for c in evidence.cards] == ["Stage 1: lr", "Stage 2: momentum"]
    assert (out / "decisions.md").read_text(encoding="utf-8") == evidence.to_markdown()


def test_evidence_json_round_trips_to_the_same_markdown(grid_run):
    data = json.loads((grid_run / "evidence.json").read_text(encoding="utf-8"))
    assert data["version"] == 1 and [c["kind"] for c in data["cards"]] == ["card"]
    assert Evidence.from_json(data).to_markdown() == (grid_run / "decisions.md").read_text(encoding="utf-8")


def test_report_alone_renders_the_recorded_evidence_without_running_rules(grid_run, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(grid_run, copy)
    seen = _count_rule_runs(monkeypatch)
    data = json.loads((copy / "evidence.json").read_text(encoding="utf-8"))
    data["cards"][0]["question"] = "a question only evidence.json holds"
    (copy / "evidence.json").write_text(json.dumps(data), encoding="utf-8")
    page = write_report(copy).read_text(encoding="utf-8")
    assert "a question only evidence.json holds" in page and seen == []


def test_damaged_evidence_json_is_recomputed(grid_run, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(grid_run, copy)
    (copy / "evidence.json").write_text("{not json", encoding="utf-8")
    seen = _count_rule_runs(monkeypatch)
    page = write_report(copy).read_text(encoding="utf-8")
    assert seen == [copy] and "<h3>Decision cards</h3>" in page


def test_cli_report_recomputes_and_rewrites_the_evidence(grid_run, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tunelab.cli import app

    copy = tmp_path / "copy"
    shutil.copytree(grid_run, copy)
    (copy / "evidence.json").unlink()
    (copy / "decisions.md").unlink()
    seen = _count_rule_runs(monkeypatch)
    result = CliRunner().invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert seen == [copy]
    evidence = read_evidence(RunLayout(copy))
    assert evidence is not None
    assert (copy / "decisions.md").read_text(encoding="utf-8") == evidence.to_markdown()


def test_report_knobs_are_the_config_knob_type(grid_run):
    from tunelab.config.space_knob import Knob
    from tunelab.report.runinfo import ReportRun, position

    knobs = ReportRun(grid_run).knobs
    assert [k.name for k in knobs] == ["lr", "momentum"] and all(isinstance(k, Knob) for k in knobs)
    lr = knobs[0]
    assert lr.values == (0.1, 1.0) and lr.numeric and lr.log and position(lr, 1.0) == 1.0
