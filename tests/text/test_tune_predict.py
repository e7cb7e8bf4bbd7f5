"""A short encoder_head study on a small subsample of query_wellformedness, its final model, and predict."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import torch

import tunelab
from fixtures.no_report import without_report
from tunelab.config.load import load_experiment
from tunelab.text.cache import EmbeddingCache


def experiment(**model):
    raw = {
        "name": "encoder_head_small",
        "data": {"name": "query_wellformedness", "max_rows": 160},
        "model": {"family": "encoder_head", "num_layers": 1, **model},
        "train": {"epochs": 2, "batch_size": 16, "optimizer": "adamw", "lr": 1e-3, "metrics": ["r2", "mae"],
                  "checkpoints": {"keep_last": 1, "keep_best": False}},
        "search": {"strategy": "tpe", "n_trials": 2, "sampler_seed": 42,
                   "space": {"model.dropout": {"low": 0.0, "high": 0.3}, "model.head_lr_multiplier": [1.0, 6.0]}},
    }
    return load_experiment(None, raw=raw)


@pytest.fixture(scope="module")
def frozen_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eh") / "run"
    with without_report():  # no test of this module reads the report (fixtures/no_report.py)
        res = tunelab.tune(experiment(), out=out)
    assert res.finished and res.n_complete == 2
    return out


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_study_trains_the_head_on_cached_embeddings(frozen_run, text_env):
    assert len(list(EmbeddingCache(text_env).dir.glob("*.pt"))) >= 1
    params = (frozen_run / "final" / "test_metrics.json").read_text()
    assert '"test_r2"' in params and '"rows_tested": ' in params
    payload = torch.load(frozen_run / "final" / "model.pt", weights_only=True)
    assert payload["input_shape"] == [384] and not any(k.startswith("encoder.") for k in payload["state_dict"])
    predictions = rows((frozen_run / "final" / "predictions.csv").read_text(encoding="utf-8"))
    assert predictions and set(predictions[0]) == {"row", "text", "target_rating", "prediction_rating"}


def test_predict_a_typed_query(frozen_run, cli):
    res = cli("predict", frozen_run, "--text", "how do i cook rice", "--text", "rice cook")
    assert res.exit_code == 0, res.output
    out = rows(res.stdout)
    assert [r["text"] for r in out] == ["how do i cook rice", "rice cook"]
    assert all(-1.0 < float(r["prediction_rating"]) < 2.0 for r in out)


def test_predict_a_csv_with_a_text_column(frozen_run, cli, tmp_path):
    file = tmp_path / "queries.csv"
    file.write_text("query\nWhat is the capital of France?\nfrance capital\n", encoding="utf-8")
    res = cli("predict", frozen_run, file)
    assert res.exit_code == 0, res.output
    assert [r["text"] for r in rows(res.stdout)] == ["What is the capital of France?", "france capital"]


def test_predict_without_input_is_one_line_error(frozen_run, cli, tmp_path):
    res = cli("predict", frozen_run)
    assert res.exit_code == 2 and res.stderr == "error: predict: give INPUT_PATH or --text\n"
    headerless = tmp_path / "q.tsv"
    headerless.write_text("how do i cook rice\t0.8\n", encoding="utf-8")
    res = cli("predict", frozen_run, headerless)
    assert res.exit_code == 2 and "no text column; name it text or query" in res.stderr


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_resumed_study_reruns_nothing(frozen_run):
    trial_files = {p: p.stat().st_mtime_ns for p in (frozen_run / "trials").rglob("*") if p.is_file()}
    res = tunelab.tune(experiment(), out=frozen_run, run_final=False)
    assert res.ran_trials == 0 and res.n_complete == 2
    after = {p: p.stat().st_mtime_ns for p in (frozen_run / "trials").rglob("*") if p.is_file()}
    assert after == trial_files  # no trial trained again: not a record, checkpoint or embedding rewritten


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_fine_tuned_encoder_trains_and_predicts(tmp_path, cli):
    exp = experiment(freeze_encoder=False, max_length=16)
    exp = load_experiment(None, ["search.n_trials=1", "train.epochs=1", "data.max_rows=48"],
                          raw=exp.model_dump(mode="json"))
    res = tunelab.tune(exp, out=tmp_path / "ft")
    assert res.n_complete == 1
    state = torch.load(tmp_path / "ft" / "final" / "model.pt", weights_only=True)["state_dict"]
    assert any(k.startswith("encoder.") for k in state)
    out = cli("predict", tmp_path / "ft", "--text", "how do i cook rice")
    assert out.exit_code == 0, out.output
    assert rows(out.stdout)[0]["text"] == "how do i cook rice"

