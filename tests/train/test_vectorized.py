"""fit_group: every member equals the same trial trained alone by `fit`, and keeps its own fate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.config.schema import Experiment
from tunelab.data import load_dataset
from tunelab.runs.layout import TrialLayout
from tunelab.runs.records import read_json, read_jsonl
from tunelab.train import checkpoint as ckpt
from tunelab.train.batched_model import StackedNet
from tunelab.train.grouping import can_vectorize, has_progress
from tunelab.train.loop import FitResult, fit
from tunelab.train.trial import model_for
from tunelab.train.vectorized import fit_group

RTOL, ATOL = 1e-5, 1e-6
DIABETES = {"data": {"name": "diabetes"}, "model": {"family": "mlp", "hidden_dims": [16, 8]},
            "train": {"epochs": 4, "batch_size": 32, "loss": "huber", "device": "cpu"}}
DIGITS_CNN = {"data": {"name": "digits"}, "model": {"family": "cnn", "channels": [4, 4]},
              "train": {"epochs": 3, "batch_size": 64, "loss": "cross_entropy", "device": "cpu"}}
MEMBERS = [  # lr, weight decay, seed
    {"lr": 1e-3, "weight_decay": 0.0, "seed": 0},
    {"lr": 3e-3, "weight_decay": 1e-3, "seed": 1},
    {"lr": 1e-2, "weight_decay": 0.0, "seed": 2},
    {"lr": 5e-4, "weight_decay": 1e-2, "seed": 3},
]
_DATA: dict[str, Any] = {}


def _exps(base: dict, members: list[dict]) -> list[Experiment]:
    out = []
    for member in members:
        raw = {**base, "train": {**base["train"], **{k: v for k, v in member.items() if k != "model"}}}
        if "model" in member:
            raw["model"] = {**base["model"], **member["model"]}
        out.append(Experiment.model_validate(raw))
    return out


def _data(exp: Experiment) -> Any:
    if exp.data.name not in _DATA:
        _DATA[exp.data.name] = load_dataset(exp.data, exp.task)
    return _DATA[exp.data.name]


def _metrics(data: Any) -> list[str]:
    return ["r2", "mae"] if data.task == "regression" else ["accuracy", "f1"]


def _sequential(exps: list[Experiment], layouts: list[TrialLayout | None] | None = None) -> list[tuple[Any, FitResult]]:
    out = []
    for i, exp in enumerate(exps):
        data = _data(exp)
        model = model_for(exp, data)
        layout = layouts[i] if layouts else None
        result = fit(model, data, exp.train, loss_name=exp.train.loss, metrics=_metrics(data), layout=layout,
                     identity={"seed": exp.train.seed})
        out.append((model, result))
    return out


def _group(exps: list[Experiment], layouts: list[TrialLayout | None] | None = None,
           exact_dropout: bool = True) -> list[tuple[Any, FitResult]]:
    data = _data(exps[0])
    models, states = [], []
    for exp in exps:
        models.append(model_for(exp, data))
        states.append(torch.get_rng_state())
    results = fit_group(models, data, [e.train for e in exps], loss_name=exps[0].train.loss, metrics=_metrics(data),
                        layouts=layouts or [None] * len(exps), identities=[{"seed": e.train.seed} for e in exps],
                        rng_states=states if exact_dropout else ())
    return list(zip(models, results, strict=True))


def _records(result: FitResult) -> dict[str, float]:
    return {k: v for k, v in result.last_record.items() if isinstance(v, float) and k != "epoch_time_s"}


def _assert_same(seq: tuple[Any, FitResult], grp: tuple[Any, FitResult]) -> None:
    (m1, r1), (m2, r2) = seq, grp
    assert (r1.state, r1.epochs_run, r1.best_epoch) == (r2.state, r2.epochs_run, r2.best_epoch)
    a, b = _records(r1), _records(r2)
    assert a.keys() == b.keys()
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=RTOL, abs=ATOL), key
    for (name, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters(), strict=True):
        torch.testing.assert_close(p2, p1, rtol=RTOL, atol=ATOL, msg=name)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_mlp_members_equal_their_sequential_fits(optimizer: str) -> None:
    members = [{**m, "optimizer": optimizer, "momentum": 0.9 * (i % 2) if optimizer == "sgd" else 0.0}
               for i, m in enumerate(MEMBERS)]
    exps = _exps(DIABETES, members)
    assert can_vectorize([(e, _data(e)) for e in exps]) is None
    for seq, grp in zip(_sequential(exps), _group(exps), strict=True):
        _assert_same(seq, grp)


def test_every_epoch_record_matches_and_trial_folders_have_the_same_form(tmp_path: Path) -> None:
    exps = _exps(DIABETES, MEMBERS[:2])
    seq_layouts = [TrialLayout(tmp_path / "seq" / str(i)) for i in range(2)]
    grp_layouts = [TrialLayout(tmp_path / "grp" / str(i)) for i in range(2)]
    _sequential(exps, seq_layouts)  # type: ignore[arg-type]
    _group(exps, grp_layouts)  # type: ignore[arg-type]
    for s, g in zip(seq_layouts, grp_layouts, strict=True):
        assert sorted(p.name for p in s.root.iterdir()) == sorted(p.name for p in g.root.iterdir())
        assert sorted(p.name for p in s.checkpoints.iterdir()) == sorted(p.name for p in g.checkpoints.iterdir())
        seq_records, grp_records = read_jsonl(s.metrics_jsonl), read_jsonl(g.metrics_jsonl)
        assert len(seq_records) == len(grp_records) == 4
        for a, b in zip(seq_records, grp_records, strict=True):
            assert list(a) == list(b)
            for key in ("train_loss", "val_loss", "val_r2", "val_mae"):
                assert b[key] == pytest.approx(a[key], rel=RTOL, abs=ATOL)
            assert a["is_best"] == b["is_best"] and a["identity"] == b["identity"]
        for a, b in zip(read_jsonl(s.grad_norms_jsonl), read_jsonl(g.grad_norms_jsonl), strict=True):
            assert a["norms"].keys() == b["norms"].keys()
            for name in a["norms"]:
                assert b["norms"][name] == pytest.approx(a["norms"][name], rel=1e-4, abs=ATOL)
        assert read_json(s.result_json).keys() == read_json(g.result_json).keys()
        seq_ck, grp_ck = ckpt.load_latest(s), ckpt.load_latest(g)
        assert seq_ck is not None and grp_ck is not None
        assert seq_ck.keys() == grp_ck.keys()
        assert seq_ck["model"].keys() == grp_ck["model"].keys()
        assert seq_ck["optimizer"]["param_groups"] == grp_ck["optimizer"]["param_groups"]
        for idx, state in seq_ck["optimizer"]["state"].items():
            for key, value in state.items():
                torch.testing.assert_close(grp_ck["optimizer"]["state"][idx][key], value, rtol=1e-4, atol=1e-6)
        assert has_progress(g)


def test_a_group_checkpoint_resumes_alone_with_fit(tmp_path: Path) -> None:
    exps = _exps(DIABETES, MEMBERS[:2])
    short = [e.model_copy(update={"train": e.train.model_copy(update={"epochs": 2})}) for e in exps]
    layouts = [TrialLayout(tmp_path / str(i)) for i in range(2)]
    _group(short, layouts)  # type: ignore[arg-type]
    for layout in layouts:
        layout.result_json.unlink()  # as if the group had been killed after epoch 2
    resumed = _sequential(exps, layouts)  # type: ignore[arg-type]
    for seq, res in zip(_sequential(exps), resumed, strict=True):
        assert res[1].resumed_from_epoch == 2
        _assert_same(seq, res)


def test_a_diverging_member_leaves_the_others_untouched() -> None:
    members = [{**m, "optimizer": "sgd"} for m in MEMBERS]
    members[1] = {**members[1], "lr": 1e4}
    exps = _exps({**DIABETES, "train": {**DIABETES["train"], "loss": "mse", "epochs": 5}}, members)
    seq, grp = _sequential(exps), _group(exps)
    assert grp[1][1].state == seq[1][1].state == "diverged"
    assert grp[1][1].epochs_run == seq[1][1].epochs_run < 5
    for i in (0, 2, 3):
        assert grp[i][1].state == "complete"
        _assert_same(seq[i], grp[i])


def test_early_stopping_of_one_member() -> None:
    members = [dict(m) for m in MEMBERS[:3]]
    members[0] = {**members[0], "lr": 0.05, "early_stopping": {"patience": 1, "min_delta": 10.0}}
    exps = _exps(DIABETES, members)
    seq, grp = _sequential(exps), _group(exps)
    assert grp[0][1].epochs_run == seq[0][1].epochs_run == 2
    assert "early stopping" in grp[0][1].reason
    for s, g in zip(seq, grp, strict=True):
        _assert_same(s, g)


def test_an_early_stopped_member_leaves_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its compute stops: after its last epoch every training step runs on the others only."""
    members = [dict(m) for m in MEMBERS[:3]]
    members[0] = {**members[0], "lr": 0.05, "early_stopping": {"patience": 1, "min_delta": 10.0}}
    exps = _exps(DIABETES, members)
    stacked: list[int] = []
    forward = StackedNet.forward

    def counting(self: StackedNet, h: torch.Tensor, *, train: bool) -> torch.Tensor:
        if train:
            stacked.append(self.k)
        return forward(self, h, train=train)

    monkeypatch.setattr(StackedNet, "forward", counting)
    grp = _group(exps)
    steps = -(-len(_data(exps[0]).train) // 32)
    assert grp[0][1].epochs_run == 2
    assert stacked == [3] * 2 * steps + [2] * 2 * steps  # 4 epochs: two with three members, two with two


def test_cnn_members_on_digits_equal_sequential() -> None:
    exps = _exps(DIGITS_CNN, MEMBERS[:3])
    assert can_vectorize([(e, _data(e)) for e in exps]) is None
    for seq, grp in zip(_sequential(exps), _group(exps), strict=True):
        _assert_same(seq, grp)


def test_dropout_members_equal_sequential_with_their_rng_states() -> None:
    members = [{**m, "model": {"dropout": p}} for m, p in zip(MEMBERS[:3], (0.0, 0.2, 0.5), strict=True)]
    exps = _exps(DIABETES, members)
    assert can_vectorize([(e, _data(e)) for e in exps]) is None
    for seq, grp in zip(_sequential(exps), _group(exps), strict=True):
        _assert_same(seq, grp)


def test_cnn_dropout_members_equal_sequential() -> None:
    members = [{**m, "model": {"dropout": p}} for m, p in zip(MEMBERS[:2], (0.3, 0.0), strict=True)]
    exps = _exps(DIGITS_CNN, members)
    for seq, grp in zip(_sequential(exps), _group(exps), strict=True):
        _assert_same(seq, grp)


def test_dropout_without_rng_states_still_trains() -> None:
    members = [{**m, "model": {"dropout": p}} for m, p in zip(MEMBERS[:3], (0.0, 0.2, 0.5), strict=True)]
    exps = _exps(DIABETES, members)
    seq, grp = _sequential(exps), _group(exps, exact_dropout=False)
    _assert_same(seq[0], grp[0])  # dropout 0: exact; others draw from one shared stream
    for _, result in grp:
        assert result.state == "complete" and result.last_record["val_loss"] < 1.0


def test_can_vectorize_names_the_reason() -> None:
    a, b = _exps(DIGITS_CNN, [MEMBERS[0], {**MEMBERS[1], "model": {"channels": [8, 4]}}])
    assert "model.channels" in (can_vectorize([(a, _data(a)), (b, _data(b))]) or "")  # a cnn does not pad
    a, b = _exps(DIABETES, [MEMBERS[0], {**MEMBERS[1], "model": {"hidden_dims": [32, 8]}}])
    assert can_vectorize([(a, _data(a)), (b, _data(b))]) is None  # MLP widths pad (train/mixed.py)
    a, b = _exps(DIABETES, [MEMBERS[0], {**MEMBERS[1], "batch_size": 64}])
    assert "train.batch_size" in (can_vectorize([(a, _data(a)), (b, _data(b))]) or "")
    (c,) = _exps(DIABETES, [{**MEMBERS[0], "optimizer": "rmsprop"}])
    assert "rmsprop" in (can_vectorize([(c, _data(c))]) or "")
    (d,) = _exps(DIABETES, [{**MEMBERS[0], "precision": "bf16"}])
    assert "precision bf16" in (can_vectorize([(d, _data(d))]) or "")
    e, f = _exps(DIABETES, MEMBERS[:2])
    digits = _data(_exps(DIGITS_CNN, MEMBERS[:1])[0])
    assert "different data" in (can_vectorize([(e, _data(e)), (f, digits)]) or "")
