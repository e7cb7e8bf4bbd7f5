"""Seed 002's ablation reading: one table per knob (default marked, train/val metric, cost) and the
optional combine_winners check of the per-knob winners trained together against the default."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tunelab.app.tune import tune
from tunelab.config.load import load_experiment
from tunelab.config.space import parse_space
from tunelab.search.ablation_tables import knob_winners

SPACE = {"train.lr": [0.001, 0.03, 0.3], "model.hidden_dims": [[8], [32]]}


def raw(search: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "abl",
        "data": {"name": "digits"},
        "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 2, "lr": 0.001, "eval_train": True, "metrics": ["accuracy"]},
        "search": {"strategy": "ablation", "space": SPACE, "objective": {"metric": "val_accuracy"}, **search},
        "final": {"enabled": False},
    }


def run(out: Path, **search: Any) -> None:
    tune(load_experiment(None, raw=raw(search)), out=out, run_final=False)


def tables(out: Path) -> dict[str, Any]:
    return json.loads((out / "ablation_tables.json").read_text(encoding="utf-8"))


def summary(out: Path) -> list[dict[str, str]]:
    with (out / "summary.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_one_table_per_knob_with_the_default_marked_metrics_and_cost(tmp_path):
    out = tmp_path / "run"

    run(out)

    record = tables(out)
    by_knob = {t["knob"]: t for t in record["knobs"]}
    assert list(by_knob) == ["train.lr", "model.hidden_dims"]
    lr = by_knob["train.lr"]
    assert lr["headers"] == ["value", "val_accuracy", "train_eval_accuracy", "params", "train time (s)", "state"]
    assert [r[0] for r in lr["rows"]] == ["0.001", "0.03", "0.3"]  # the knob's listed order
    assert lr["default_row"] == 0
    widths = by_knob["model.hidden_dims"]
    assert [r[0] for r in widths["rows"]] == ["[8]", "[32]"]
    # params: digits has 64 inputs and 10 classes
    assert [int(r[3]) for r in widths["rows"]] == [64 * 8 + 8 + 8 * 10 + 10, 64 * 32 + 32 + 32 * 10 + 10]
    assert {r[3] for r in lr["rows"]} == {str(64 * 8 + 8 + 8 * 10 + 10)}  # lr changes no parameter
    assert len(record["param_counts"]) == 4  # each trial's checkpoint opened once, then remembered
    rows = summary(out)
    value_of = {json.loads(r["params"])["train.lr"]: float(r["val_accuracy_mean"]) for r in rows
                if json.loads(r["params"])["model.hidden_dims"] == [8]}
    assert [float(r[1]) for r in lr["rows"]] == pytest.approx([value_of[v] for v in (0.001, 0.03, 0.3)], abs=1e-4)
    best = max(value_of, key=lambda v: (value_of[v], v == 0.001))
    assert lr["rows"][lr["winner_row"]][0] == str(best)
    text = (out / "summary.md").read_text(encoding="utf-8")
    assert "### train.lr" in text and "### model.hidden_dims" in text
    assert "| 0.001 (default) |" in text or "| **0.001 (default)** |" in text
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "One table per knob" in html and "0.001 (default)" in html


def test_knob_winners_follow_the_direction_and_keep_the_default_on_a_tie():
    exp = load_experiment(None, raw=raw({}))
    knobs = parse_space(exp)

    def row(lr: float, dims: list[int], value: float) -> dict[str, Any]:
        return {"params": json.dumps({"train.lr": lr, "model.hidden_dims": dims}), "val_accuracy_mean": value}

    rows = [row(0.001, [8], 0.5), row(0.03, [8], 0.9), row(0.3, [8], 0.1), row(0.001, [32], 0.5)]
    assert knob_winners(rows, exp, knobs) == {"train.lr": 0.03, "model.hidden_dims": [8]}
    lower = load_experiment(None, raw={**raw({}), "search": {**raw({})["search"],
                                                             "objective": {"metric": "val_loss"}}})
    loss_rows = [{**r, "val_loss_mean": r["val_accuracy_mean"]} for r in rows]
    assert knob_winners(loss_rows, lower, knobs) == {"train.lr": 0.3, "model.hidden_dims": [8]}


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_combine_winners_trains_the_winners_together_against_the_default_with_seeds(tmp_path):
    out = tmp_path / "run"

    run(out, seeds=2, combine_winners=True)

    combine = tables(out)["combine"]
    rows = summary(out)
    default_row = next(r for r in rows if json.loads(r["params"]) == {"train.lr": 0.001, "model.hidden_dims": [8]})
    assert combine["default"]["seed_values"] == pytest.approx(json.loads(default_row["seed_values"]))
    winners = {t["knob"]: t["rows"][t["winner_row"]][0] for t in tables(out)["knobs"]}
    assert {k: json.dumps(v) for k, v in combine["combination"]["params"].items()} == winners
    assert combine["seeds"] == 2
    assert combine["changed"] == {"train.lr": 0.03, "model.hidden_dims": [32]}  # 2 epochs: faster, wider win
    assert combine["trained"]  # two knobs moved: a configuration the ablation never ran
    assert sorted(p.name for p in (out / "combine" / "winners").iterdir()) == ["seed-0", "seed-1"]
    assert len(combine["combination"]["seed_values"]) == 2
    a, b = combine["combination"]["mean"], combine["default"]["mean"]
    assert combine["beat_default"] == (a > b)
    text = (out / "summary.md").read_text(encoding="utf-8")
    assert "## Per-knob winners combined" in text
    assert ("did not beat the default" in text) == (not combine["beat_default"])


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_combine_winners_when_the_default_wins_every_knob_trains_nothing_more(tmp_path):
    out = tmp_path / "run"
    data = raw({"seeds": 2, "combine_winners": True, "space": {"train.lr": [0.03, 1e-6]}})
    data["train"]["lr"] = 0.03

    tune(load_experiment(None, raw=data), out=out, run_final=False)

    combine = tables(out)["combine"]
    assert combine["changed"] == {} and combine["trained"] is False
    assert combine["combination"]["seed_values"] == combine["default"]["seed_values"]
    assert not (out / "combine").exists()
    assert "The default won every knob" in (out / "summary.md").read_text(encoding="utf-8")


def test_combine_winners_outside_an_ablation_is_a_one_line_error(tmp_path, cli):
    path = tmp_path / "exp.yaml"
    data = raw({"combine_winners": True})
    data["search"]["strategy"] = "grid"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")

    result = cli("tune", path, "--out", tmp_path / "run", "-q")

    assert result.exit_code == 2
    assert "combine_winners needs strategy ablation, got grid" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_the_final_model_retrains_the_better_of_the_study_winner_and_the_combination(tmp_path, cli):
    from tunelab.app.final import load_run_experiment, load_study, run_final
    from tunelab.config.space import decode_params
    from tunelab.search.selection import best_trial

    out = tmp_path / "run"
    run(out, seeds=2, combine_winners=True)
    record = tables(out)
    combine = record["combine"]
    assert combine["trained"] and len(combine["combination"]["best_epochs"]) == 2
    exp = load_run_experiment(out)
    winner = best_trial(load_study(out, exp))
    winner_params = json.loads(json.dumps(decode_params(parse_space(exp), winner.params)))

    for mean, source in ((1.0, "combination"), (0.0, "study winner")):  # val_accuracy: higher is better
        combine["combination"]["mean"] = mean
        (out / "ablation_tables.json").write_text(json.dumps(record), encoding="utf-8")
        shutil.rmtree(out / "final", ignore_errors=True)  # else the second retrain resumes the first's folder

        final = run_final(out)

        assert final["source"] == source
        params = json.loads((out / "final" / "params.json").read_text(encoding="utf-8"))["params"]
        if source == "combination":
            assert final["trial_number"] is None and params == combine["combination"]["params"]
            assert final["epochs"] == max(1, round(sum(combine["combination"]["best_epochs"]) / 2))
            assert "beat the study's winner" in final["choice"]
        else:
            assert final["trial_number"] == winner.number and params == winner_params
            assert f"retrains trial #{winner.number}" in final["choice"]
        assert f"Final model: {final['choice']}." in (out / "summary.md").read_text(encoding="utf-8")
    touches = json.loads((out / "test_touches.json").read_text(encoding="utf-8"))
    assert touches["count"] == 2 and [e["trial"] for e in touches["events"]] == [None, winner.number]
    assert cli("report", out).exit_code == 0  # the report's final table says which and why
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "study winner" in html and f"the final model retrains trial #{winner.number}" in html
