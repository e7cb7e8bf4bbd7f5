"""Members of one vectorized group with their own training recipes (lr schedule, warmup, epochs,
gradient accumulation) each train as `fit` trains them alone: in float64 every epoch's record and
the final weights agree to 1e-10 and the lr is the same float; a group stopped mid-run resumes
bit-identically, and a member's group checkpoint resumes alone with `fit`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tests.train.test_exactness import _data, _rel, _weights

from tunelab.config.schema import Experiment
from tunelab.runs.layout import TrialLayout
from tunelab.runs.records import read_jsonl
from tunelab.train import artifacts, vectorized
from tunelab.train import checkpoint as ckpt
from tunelab.train.batched_optim import BatchedOptimizer
from tunelab.train.grouping import group_key
from tunelab.train.hooks import Hook
from tunelab.train.loop import fit
from tunelab.train.trial import model_for
from tunelab.train.vectorized import fit_group

# 192 training rows in batches of 32: 6 batches an epoch, so accumulation 4 ends each epoch on a
# window of 2 batches, and 3 on a whole one.
RECIPES: list[dict[str, Any]] = [
    {"lr": 1e-2, "scheduler": "linear", "warmup_ratio": 0.2, "epochs": 4},
    {"lr": 3e-3, "scheduler": "cosine", "warmup_ratio": 0.1, "epochs": 3, "gradient_accumulation_steps": 4,
     "max_grad_norm": 0.5, "weight_decay": 1e-3},
    {"lr": 1e-2, "scheduler": "step", "step_size": 1, "gamma": 0.5, "epochs": 2, "gradient_accumulation_steps": 3},
    {"lr": 5e-3, "scheduler": "plateau", "plateau_patience": 0, "gamma": 0.5, "epochs": 4,
     "gradient_accumulation_steps": 2},
    {"lr": 2e-2, "scheduler": "constant", "warmup_ratio": 0.3, "epochs": 3, "max_grad_norm": 1.0},
]
KEYS = ("train_loss", "val_loss", "val_r2")


def _exps(optimizer: str) -> list[Experiment]:
    return [Experiment.model_validate({
        "data": {"name": "diabetes"},
        "model": {"family": "mlp", "hidden_dims": [24, 24], "dropout": 0.2 * (i % 2)},
        "train": {"batch_size": 32, "loss": "huber", "optimizer": optimizer, "device": "cpu", "seed": i,
                  "momentum": 0.9, "metrics": ["r2"], "checkpoints": {"every": 1}, **recipe},
    }) for i, recipe in enumerate(RECIPES)]


def _alone(exps: list[Experiment], root: Path | None = None) -> list[torch.Tensor]:
    data, out = _data(torch.float64), []
    for i, exp in enumerate(exps):
        model = model_for(exp, data).to(torch.float64)
        layout = TrialLayout(root / str(i)) if root else None
        fit(model, data, exp.train, loss_name="huber", metrics=["r2"], layout=layout)
        out.append(_weights(model))
    return out


def _grouped(exps: list[Experiment], root: Path | None = None, hooks: list[list[Hook]] | None = None,
             ) -> list[torch.Tensor]:
    data, models, states = _data(torch.float64), [], []
    for exp in exps:
        models.append(model_for(exp, data).to(torch.float64))
        states.append(torch.get_rng_state())
    layouts = [TrialLayout(root / str(i)) for i in range(len(exps))] if root else [None] * len(exps)
    fit_group(models, data, [e.train for e in exps], loss_name="huber", metrics=["r2"], layouts=layouts,
              identities=[{} for _ in exps], rng_states=states, hooks=hooks or ())
    return [_weights(m) for m in models]


def _assert_records_agree(want: TrialLayout, got: TrialLayout) -> None:
    a, b = read_jsonl(want.metrics_jsonl), read_jsonl(got.metrics_jsonl)
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert rb["lr"] == ra["lr"], (got.root, ra["epoch"])  # the same float: the same schedule
        for key in KEYS:
            assert rb[key] == pytest.approx(ra[key], rel=1e-10, abs=1e-12), (got.root, ra["epoch"], key)


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_members_with_their_own_recipes_equal_their_lone_fits(optimizer: str, tmp_path: Path) -> None:
    exps = _exps(optimizer)
    assert len({group_key(e, _data(torch.float64)) for e in exps}) == 1  # one group, five recipes
    alone, grouped = _alone(exps, tmp_path / "alone"), _grouped(exps, tmp_path / "group")
    for i, (a, g) in enumerate(zip(alone, grouped, strict=True)):
        assert _rel(g, a) < 1e-10, i
        want, got = TrialLayout(tmp_path / "alone" / str(i)), TrialLayout(tmp_path / "group" / str(i))
        _assert_records_agree(want, got)
        assert len(read_jsonl(got.metrics_jsonl)) == RECIPES[i]["epochs"]  # it left the stack after its last
        a_ck, g_ck = ckpt.load_latest(want), ckpt.load_latest(got)
        assert a_ck is not None and g_ck is not None
        assert g_ck["optimizer"]["param_groups"] == a_ck["optimizer"]["param_groups"]
        assert g_ck["scheduler"].keys() == a_ck["scheduler"].keys()
        if "last_epoch" in a_ck["scheduler"]:
            assert g_ck["scheduler"]["last_epoch"] == a_ck["scheduler"]["last_epoch"]


def test_the_column_op_ways_step_some_members_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without torch's fused kernel (and off the CPU) Adam runs as column ops over every row; a
    member whose window is still open keeps its weights, state and summed gradient."""

    class Unfused(BatchedOptimizer):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.fused = False

    monkeypatch.setattr(vectorized, "BatchedOptimizer", Unfused)
    exps = _exps("adam")
    for i, (a, g) in enumerate(zip(_alone(exps), _grouped(exps), strict=True)):
        assert _rel(g, a) < 1e-10, i


class _StopAt(Hook):
    """Raises at the end of `epoch` (before its checkpoint), as a kill would stop the group."""

    name = "stop_at"

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, ctx: Any, record: dict[str, Any]) -> None:
        if record["epoch"] == self.epoch:
            raise KeyboardInterrupt


def test_a_stopped_group_resumes_with_its_schedules(tmp_path: Path) -> None:
    """Stopped in epoch 3: the 2-epoch member has finished; the others resume from epoch 2 as a
    group (bit for bit the uninterrupted group) or one alone with `fit` (its lone run to 1e-10)."""
    exps = _exps("adamw")
    clean = _grouped(exps, tmp_path / "clean")
    with pytest.raises(KeyboardInterrupt):
        _grouped(exps, tmp_path / "stopped", hooks=[[_StopAt(3)]] + [[] for _ in exps[1:]])
    artifacts.flush()  # the stopped group's queued writes land, as they do before a process exits
    left = [0, 1, 3, 4]  # member 2 (2 epochs) finished before the stop
    assert TrialLayout(tmp_path / "stopped" / "2").result_json.exists()
    for i in left:
        (tmp_path / "copy" / str(i)).mkdir(parents=True)
        for path in (tmp_path / "stopped" / str(i)).rglob("*"):
            target = tmp_path / "copy" / str(i) / path.relative_to(tmp_path / "stopped" / str(i))
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.is_file():
                target.write_bytes(path.read_bytes())
    data, models, states = _data(torch.float64), [], []
    for i in left:
        models.append(model_for(exps[i], data).to(torch.float64))
        states.append(torch.get_rng_state())
    layouts = [TrialLayout(tmp_path / "stopped" / str(i)) for i in left]
    results = fit_group(models, data, [exps[i].train for i in left], loss_name="huber", metrics=["r2"],
                        layouts=layouts, identities=[{} for _ in left], rng_states=states)
    assert [r.resumed_from_epoch for r in results] == [2] * len(left)
    for model, i, layout in zip(models, left, layouts, strict=True):
        assert torch.equal(_weights(model), clean[i]), i
        want = [{k: v for k, v in r.items() if k != "epoch_time_s"}
                for r in read_jsonl(TrialLayout(tmp_path / "clean" / str(i)).metrics_jsonl)]
        assert [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in read_jsonl(layout.metrics_jsonl)] == want
    alone = _alone(exps)
    for i in (0, 3):  # linear with warmup, plateau: fit continues each member's schedule from the group's checkpoint
        model = model_for(exps[i], data).to(torch.float64)
        result = fit(model, data, exps[i].train, loss_name="huber", metrics=["r2"],
                     layout=TrialLayout(tmp_path / "copy" / str(i)))
        assert result.resumed_from_epoch == 2
        assert _rel(_weights(model), alone[i]) < 1e-10, i
