"""A vectorized group stopped mid-run resumes as a group, and every member's records equal
those of the uninterrupted run exactly (wall times aside)."""

from __future__ import annotations

import json
from pathlib import Path

from tunelab.app.tune import tune
from tunelab.config.schema import Experiment
from tunelab.search.results import StudyObserver
from tunelab.train.hooks import Hook

EXP = {
    "name": "group_resume",
    "data": {"name": "diabetes"},
    "model": {"family": "mlp", "hidden_dims": [16]},
    "train": {"epochs": 12, "batch_size": 16, "optimizer": "adam", "metrics": ["r2"], "checkpoints": {"every": 1}},
    "search": {
        "strategy": "grid", "vectorize": "auto", "n_jobs": 1, "seeds": 2,
        "space": {"train.lr": [0.001, 0.003, 0.01], "model.dropout": [0.0, 0.2]},
    },
    "final": {"enabled": False},
}
TIMES = ("epoch_time_s",)


class _StopAt(Hook):
    """The group's first member raises at the end of `epoch` (as a kill would stop it)."""

    name = "stop_at"

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, ctx, record) -> None:
        if record["epoch"] == self.epoch:
            raise KeyboardInterrupt


class _Stopper(StudyObserver):
    def epoch_hooks(self) -> list[Hook]:
        return [_StopAt(5)]


def _records(out: Path) -> dict[str, list[dict]]:
    """Every member's metrics.jsonl by configuration and seed, without wall times."""
    found = {}
    for path in sorted(out.glob("trials/*/seed-*/metrics.jsonl")):
        config = path.parent.parent.name.split("-", 1)[1]
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        found[f"{config}/{path.parent.name}"] = [{k: v for k, v in r.items() if k not in TIMES} for r in rows]
    return found


def test_a_stopped_group_resumes_bit_identically(tmp_path: Path) -> None:
    exp = Experiment.model_validate(EXP)
    clean = tune(exp, out=tmp_path / "clean", write_outputs=False)
    assert clean.finished
    stopped = tmp_path / "stopped"
    try:
        tune(exp, out=stopped, write_outputs=False, observer=_Stopper())
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the stop hook never fired")
    resumed = tune(exp, out=stopped, write_outputs=False)
    assert resumed.finished

    results = [json.loads(p.read_text()) for p in stopped.glob("trials/*/seed-*/result.json")]
    assert [r["resumed_from_epoch"] for r in results] == [4] * 12  # as one group, from its last checkpoint
    want, got = _records(tmp_path / "clean"), _records(stopped)
    assert sorted(want) == sorted(got) and len(want) == 12
    for member, rows in want.items():
        assert [r["epoch"] for r in got[member]] == list(range(1, 13)), member
        assert got[member] == rows, member
