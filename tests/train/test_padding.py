"""Members of different hidden widths in one padded stack: each equals itself trained alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.config.schema import Experiment
from tunelab.data import load_dataset
from tunelab.runs.layout import TrialLayout
from tunelab.train import checkpoint as ckpt
from tunelab.train.batched_model import StackedNet, batched_loss
from tunelab.train.batched_optim import BatchedOptimizer
from tunelab.train.grouping import group_key, vectorize_error
from tunelab.train.loop import FitResult, fit
from tunelab.train.mixed import pad_error, pad_models
from tunelab.train.optim import make_optimizer
from tunelab.train.padding import PAD_FLOPS_LIMIT, pad_stacks, padding_ratio, stack_fits
from tunelab.train.trial import model_for
from tunelab.train.vectorized import fit_group

RTOL, ATOL = 1e-5, 1e-6
BASE = {"data": {"name": "diabetes"}, "model": {"family": "mlp"},
        "train": {"epochs": 3, "batch_size": 32, "loss": "huber", "device": "cpu", "metrics": ["r2"]}}
MEMBERS = [  # hidden widths, lr, weight decay, seed
    {"hidden_dims": [16, 8], "lr": 1e-3, "weight_decay": 0.0, "seed": 0},
    {"hidden_dims": [24, 12], "lr": 3e-3, "weight_decay": 1e-2, "seed": 1},
    {"hidden_dims": [12, 16], "lr": 1e-2, "weight_decay": 1e-3, "seed": 2},
]
_DATA: dict[str, Any] = {}


def _exps(members: list[dict], **model: Any) -> list[Experiment]:
    out = []
    for m in members:
        train = {**BASE["train"], **{k: v for k, v in m.items() if k != "hidden_dims"}}
        out.append(Experiment.model_validate({**BASE, "model": {**BASE["model"], "hidden_dims": m["hidden_dims"],
                                                                **model}, "train": train}))
    return out


def _data(exp: Experiment) -> Any:
    if "d" not in _DATA:
        _DATA["d"] = load_dataset(exp.data, exp.task)
    return _DATA["d"]


def _alone(exps: list[Experiment]) -> list[tuple[Any, FitResult]]:
    out = []
    for exp in exps:
        model = model_for(exp, _data(exp))
        out.append((model, fit(model, _data(exp), exp.train, loss_name="huber", metrics=["r2"], layout=None,
                               identity={"seed": exp.train.seed})))
    return out


def _group(exps: list[Experiment], layouts: list[TrialLayout] | None = None) -> list[tuple[Any, FitResult]]:
    models, states = [], []
    for exp in exps:
        models.append(model_for(exp, _data(exp)))
        states.append(torch.get_rng_state())
    results = fit_group(models, _data(exps[0]), [e.train for e in exps], loss_name="huber", metrics=["r2"],
                        layouts=layouts or [None] * len(exps), identities=[{"seed": e.train.seed} for e in exps],
                        rng_states=states)
    return list(zip(models, results, strict=True))


@pytest.mark.parametrize(("optimizer", "model"), [
    ("adam", {}), ("adamw", {"activation": "sigmoid"}), ("sgd", {"dropout": 0.3}), ("adamw", {"dropout": 0.2}),
])
def test_padded_members_equal_each_member_alone(optimizer: str, model: dict) -> None:
    exps = _exps([{**m, "optimizer": optimizer, "momentum": 0.9 if optimizer == "sgd" else 0.0} for m in MEMBERS],
                 **model)
    assert vectorize_error([e.train for e in exps], [model_for(e, _data(e)) for e in exps]) is None
    for (m1, r1), (m2, r2) in zip(_alone(exps), _group(exps), strict=True):
        assert (r1.state, r1.epochs_run, r1.best_epoch) == (r2.state, r2.epochs_run, r2.best_epoch)
        for key in ("train_loss", "val_loss", "val_r2"):
            assert r2.last_record[key] == pytest.approx(r1.last_record[key], rel=RTOL, abs=ATOL), key
        for (name, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters(), strict=True):
            assert p1.shape == p2.shape
            torch.testing.assert_close(p2, p1, rtol=RTOL, atol=ATOL, msg=name)


def test_a_member_that_stops_early_leaves_the_padded_stack_and_the_others_stay_exact() -> None:
    members = [{**m, "optimizer": "adam"} for m in MEMBERS]
    members[1] = {**members[1], "lr": 0.05, "early_stopping": {"patience": 1, "min_delta": 10.0}}  # the widest
    exps = _exps(members, dropout=0.1)
    alone, group = _alone(exps), _group(exps)
    assert group[1][1].epochs_run == alone[1][1].epochs_run == 2
    for (m1, r1), (m2, r2) in zip(alone, group, strict=True):
        assert r2.last_record["val_loss"] == pytest.approx(r1.last_record["val_loss"], rel=RTOL, abs=ATOL)
        for p1, p2 in zip(m1.parameters(), m2.parameters(), strict=True):
            torch.testing.assert_close(p2, p1, rtol=RTOL, atol=ATOL)


def test_masked_units_stay_zero_in_weights_gradients_and_adam_state() -> None:
    exps = _exps([{**m, "optimizer": "adamw"} for m in MEMBERS], activation="sigmoid", dropout=0.1)
    data = _data(exps[0])
    padded = pad_models([model_for(e, data) for e in exps])
    net = StackedNet(padded.models, torch.device("cpu"), [torch.get_rng_state()] * 3, padded)
    opt = BatchedOptimizer([e.train for e in exps], net.flat)
    real = torch.zeros_like(net.flat)
    for row in range(net.k):
        for index in range(len(net.shapes)):
            net.piece(real, row, index).fill_(1.0)
    padding = real == 0
    assert padding.any()
    loss = batched_loss("huber", "regression")
    for step in range(5):
        xb = data.train.x[step * 16:(step + 1) * 16].unsqueeze(0).expand(3, -1, -1)
        yb = data.train.y[step * 16:(step + 1) * 16].unsqueeze(0).expand(3, *data.train.y[:16].shape)
        grads = torch.autograd.grad(loss(net.forward(xb, train=True), yb).sum(), net.views)
        flat_grad = torch.cat([g.reshape(3, -1) for g in grads], dim=1)
        assert (flat_grad[padding] == 0).all()
        opt.step(net.flat, flat_grad)
    assert (net.flat[padding] == 0).all() and (net.flat[~padding] != 0).any()
    for name, state in opt.state.items():
        assert (state[padding] == 0).all(), name
        assert (state[~padding] != 0).any(), name


def test_a_padded_members_checkpoints_hold_only_its_own_widths(tmp_path: Path) -> None:
    exps = _exps([{**m, "optimizer": "adamw"} for m in MEMBERS])
    layouts = [TrialLayout(tmp_path / str(i)) for i in range(3)]
    _group(exps, layouts)
    for exp, layout in zip(exps, layouts, strict=True):
        for state in (ckpt.load_latest(layout), ckpt.load_checkpoint(layout.best_checkpoint)):
            assert state is not None
            own = model_for(exp, _data(exp))
            own.load_state_dict(state["model"])  # strict: same names, same shapes
            assert [tuple(v.shape) for v in state["model"].values()] == [tuple(p.shape) for p in own.parameters()]
        state = ckpt.load_latest(layout)
        assert state is not None
        optimizer = make_optimizer(own.parameters(), exp.train, torch.device("cpu"))
        optimizer.load_state_dict(state["optimizer"])  # its own optimizer state, at its own widths
        for p in own.parameters():
            assert optimizer.state[p]["exp_avg"].shape == p.shape


def _key(widths: list[int]) -> str:
    exp = _exps([{"hidden_dims": widths, "seed": 0}])[0]
    key = group_key(exp, _data(exp))
    assert key is not None
    return key


def test_the_planner_pads_close_widths_but_not_far_ones() -> None:
    keys = [_key([32]), _key([48]), _key([64])]
    stacks = pad_stacks({key: 2 for key in keys})
    assert len(set(stacks.values())) == 1
    far = [_key([8]), _key([512])]
    assert pad_stacks({key: 1 for key in far}) == {key: key for key in far}
    deeper = _key([32, 32])
    # a deeper member's extra layer is computed for the shallow one too: 1.63x the FLOPs here
    assert pad_stacks({keys[0]: 1, deeper: 1}) == {keys[0]: keys[0], deeper: deeper}
    template = 10 * 32 + 32 * 32 + 32 + 32  # both hidden layers and an output Linear after each
    assert padding_ratio([(1, [10, 32, 1]), (1, [10, 32, 32, 1])]) == pytest.approx(2 * template / (352 + 1376))
    assert padding_ratio([(1, [10, 32, 1]), (1, [10, 64, 1])]) == pytest.approx(2 * 64 * 11 / (32 * 11 + 64 * 11))
    assert padding_ratio([(1, [10, 8, 1]), (1, [10, 512, 1])]) > PAD_FLOPS_LIMIT


def test_the_round_log_says_padded_and_the_trials_share_one_chunk() -> None:
    from tunelab.search.group_run import _plan, _Started
    from tunelab.search.rounds import packing_line

    keys = [_key([32]), _key([48]), _key([64]), _key([8]), _key([512])]
    line = packing_line(2, [keys[0], keys[1], keys[2], keys[3], keys[4]])
    assert line == "round 2: 5 trials; vectorized groups of 3 (padded: 3 shapes, model.hidden_dims); 2 alone"
    started = [_Started(i, None, {}, None, None, [None], key) for i, key in enumerate(keys)]  # type: ignore[arg-type]
    chunks, alone = _plan(started, max_group=32)
    assert [[s.index for s in chunk] for chunk in chunks] == [[0, 1, 2]]
    assert sorted(s.index for s in alone) == [3, 4]


def test_layer_norm_and_different_depths_pad_but_other_layers_do_not() -> None:
    def error(members: list[dict], **model: Any) -> str | None:
        exps = _exps(members, **model)
        return vectorize_error([e.train for e in exps], [model_for(e, _data(e)) for e in exps])

    assert error([{"hidden_dims": [16]}, {"hidden_dims": [24]}], layer_norm=True) is None
    assert error([{"hidden_dims": [16]}, {"hidden_dims": [16, 16]}]) is None
    assert error([{"hidden_dims": [16]}, {"hidden_dims": [24]}]) is None
    nn = torch.nn
    two_activations = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Tanh(), nn.Linear(8, 1))
    plain = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 1))
    assert pad_error([plain, two_activations]) == ("member 1: different shapes stack only as MLPs: layer 2 (Tanh) "
                                                   "is not Linear -> [LayerNorm] -> activation")
    assert pad_error([plain, nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 2))]) == (
        "member 1: different output width")


def test_at_most_two_layer_plans_share_a_stack() -> None:
    """Depth, activation and LayerNorm split a layer into runs of members: two plans pay, more do not."""
    def key(**model: Any) -> str:
        exp = _exps([{"hidden_dims": [32], "seed": 0}], **model)[0]
        out = group_key(exp, _data(exp))
        assert out is not None
        return out

    plans = [key(activation=a) for a in ("relu", "tanh", "gelu")]
    stacks = pad_stacks(dict.fromkeys(plans, 2))
    assert len(set(stacks.values())) == 2 and stacks[plans[0]] == stacks[plans[2]] != stacks[plans[1]]
    assert stack_fits(dict.fromkeys(plans[:2], 2)) and not stack_fits(dict.fromkeys(plans, 2))
    assert not stack_fits({plans[0]: 3, plans[1]: 1})  # a plan of one member would run alone inside the stack
    assert stack_fits({key(): 1, key(hidden_dims=[40]): 1})  # one plan: widths pad whatever their counts
    singles = [key(hidden_dims=[w], activation=a) for a in ("relu", "tanh") for w in (32, 40)]
    assert len(set(pad_stacks(dict.fromkeys(singles, 1)).values())) == 1  # each plan's keys join first
