"""A frozen encoder_head study trains its heads as one vectorized group per round."""

from __future__ import annotations

from pathlib import Path

import pytest

import tunelab
from tunelab.config.load import load_experiment
from tunelab.runs.records import read_json, read_jsonl


def test_a_round_of_heads_trains_as_one_group(tmp_path: Path) -> None:
    exp = load_experiment(None, raw={
        "name": "heads",
        "data": {"name": "query_wellformedness", "max_rows": 160},
        "model": {"family": "encoder_head", "num_layers": 1},
        "train": {"epochs": 2, "batch_size": 16, "optimizer": "adamw", "lr": 1e-3},
        "final": {"enabled": False},
        "search": {"strategy": "tpe", "n_trials": 4, "batch_size": 4, "n_jobs": 1,
                   "space": {"model.dropout": {"low": 0.0, "high": 0.3}, "model.head_lr_multiplier": [1.0, 6.0]}},
    })
    result = tunelab.tune(exp, out=tmp_path, write_outputs=False)
    assert result.n_complete == 4
    assert (tmp_path / "rounds.log").read_text(encoding="utf-8") == (
        "round 1: 4 trials; vectorized groups of 4; 0 alone\n"
    )
    # A group's epoch time is its wall time shared by its members: equal for all four heads.
    times = {tuple(r["epoch_time_s"] for r in read_jsonl(d / "metrics.jsonl"))
             for d in (tmp_path / "trials").iterdir()}
    assert len(times) == 1


def test_heads_of_other_depths_and_max_lengths_train_in_one_stack_as_they_train_alone(tmp_path: Path) -> None:
    """max_length 8 and 64 give each head another embedding of the same rows (its own member data)."""
    def study(vectorize: str) -> dict[str, float]:
        exp = load_experiment(None, raw={
            "name": f"shapes_{vectorize}",
            "data": {"name": "query_wellformedness", "max_rows": 160},
            "model": {"family": "encoder_head", "head_layout": "halving", "dropout": 0.1},
            "train": {"epochs": 2, "batch_size": 16, "optimizer": "adamw", "lr": 1e-3},
            "final": {"enabled": False},
            "search": {"strategy": "grid", "n_jobs": 1, "vectorize": vectorize,
                       "space": {"model.num_layers": [1, 2], "model.max_length": [8, 64]}},
        })
        out = tmp_path / vectorize
        assert tunelab.tune(exp, out=out, write_outputs=False).n_complete == 4
        losses, times = {}, set()
        for folder in (out / "trials").iterdir():
            records = read_jsonl(folder / "metrics.jsonl")
            times.add(tuple(r["epoch_time_s"] for r in records))
            params = read_json(folder / "params.json")["params"]
            losses[f"{params['model.num_layers']}/{params['model.max_length']}"] = records[-1]["val_loss"]
        assert len(times) == (1 if vectorize == "auto" else 4)  # one stack: one shared epoch time
        return losses

    stacked, alone = study("auto"), study("off")
    assert len(set(alone.values())) == 4  # the max_lengths' embeddings differ
    for key, loss in alone.items():
        assert stacked[key] == pytest.approx(loss, rel=1e-5, abs=1e-6), key
