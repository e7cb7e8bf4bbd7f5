"""A frozen encoder_head study trains its heads as one vectorized group per round."""

from __future__ import annotations

from pathlib import Path

import tunelab
from tunelab.config.load import load_experiment
from tunelab.runs.records import read_jsonl


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
