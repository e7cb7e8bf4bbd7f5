"""How exact a vectorized member is: the same trial as alone, up to the order of float sums.

A member shares everything with its lone trial (initial weights, batch order, dropout masks,
optimizer arithmetic); what differs is how BLAS sums a stacked matmul (`baddbmm`) against a lone
one (`addmm`, a matrix-vector kernel for a width-1 output). In float64 the two agree to ~1e-15
after training; in float32 they start a few ulps apart, and training can grow that
(docs/speed.md, "How exact a member is"). Small generated data: each test takes about a second.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from tunelab.config.schema import Experiment, TrainSection
from tunelab.data.dataset import Dataset, Split
from tunelab.train.batched_optim import BatchedOptimizer
from tunelab.train.loop import fit
from tunelab.train.optim import make_optimizer
from tunelab.train.trial import model_for
from tunelab.train.vectorized import fit_group

MEMBERS = [  # lr, weight decay, dropout, seed: two members share an lr, one decays, two drop out
    {"lr": 1e-2, "weight_decay": 0.0, "dropout": 0.0, "seed": 0},
    {"lr": 3e-3, "weight_decay": 1e-3, "dropout": 0.3, "seed": 1},
    {"lr": 1e-2, "weight_decay": 0.0, "dropout": 0.5, "seed": 2},
]


def _data(dtype: torch.dtype) -> Dataset:
    """A small nonlinear regression problem (192 train / 64 val rows, 5 features)."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(256, 5, generator=gen, dtype=torch.float64)
    y = (x[:, :1] * x[:, 1:2]).sin() + 0.5 * x[:, 2:3] - x[:, 3:4] ** 2 / 4 + 0.1 * torch.randn(256, 1, generator=gen,
                                                                                                 dtype=torch.float64)
    x, y = x.to(dtype), y.to(dtype)
    return Dataset(name="generated", task="regression", train=Split(x[:192], y[:192]), val=Split(x[192:], y[192:]),
                   test=None, input_shape=(5,), output_dim=1)


def _exp(member: dict[str, Any], epochs: int, batch_size: int | str) -> Experiment:
    return Experiment.model_validate({
        "data": {"name": "diabetes"},
        "model": {"family": "mlp", "hidden_dims": [24, 24], "dropout": member["dropout"]},
        "train": {"epochs": epochs, "batch_size": batch_size, "loss": "huber", "optimizer": "adam", "device": "cpu",
                  "lr": member["lr"], "weight_decay": member["weight_decay"], "seed": member["seed"]},
    })


def _weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _alone_and_grouped(members: list[dict[str, Any]], dtype: torch.dtype, epochs: int,
                       batch_size: int | str = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weights trained alone by `fit`, weights as a member of one `fit_group`) per member."""
    data = _data(dtype)
    exps = [_exp(m, epochs, batch_size) for m in members]
    alone = []
    for exp in exps:
        model = model_for(exp, data).to(dtype)
        fit(model, data, exp.train, loss_name="huber", metrics=[])
        alone.append(_weights(model))
    models, states = [], []
    for exp in exps:
        models.append(model_for(exp, data).to(dtype))
        states.append(torch.get_rng_state())  # the member's dropout stream, as `fit` would draw it
    fit_group(models, data, [e.train for e in exps], loss_name="huber", metrics=[], layouts=[None] * len(exps),
              identities=[{} for _ in exps], rng_states=states)
    return [(a, _weights(m)) for a, m in zip(alone, models, strict=True)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd", "nesterov"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("width", [13, 64])
def test_the_batched_optimizer_is_each_members_torch_optimizer_bit_for_bit(kind: str, dtype: torch.dtype,
                                                                          width: int) -> None:
    """Same gradients in, the same weights out as the member's own torch optimizer, to the last
    bit: an element-wise update has no sum to reorder. Width 13: every tensor has a scalar tail;
    64: the kernel segments merge tensors."""
    torch.manual_seed(0)
    lrs, decays = [1e-2, 1e-3, 1e-2, 3e-4], [0.0, 1e-2, 0.0, 1e-3]  # rows 0 and 2 share their hyperparameters
    optimizer = "sgd" if kind == "nesterov" else kind
    cfgs = [TrainSection(optimizer=optimizer, lr=lr, weight_decay=wd, momentum=0.9, nesterov=kind == "nesterov")
            for lr, wd in zip(lrs, decays, strict=True)]
    models = [torch.nn.Sequential(torch.nn.Linear(8, width), torch.nn.ReLU(), torch.nn.Linear(width, width),
                                  torch.nn.ReLU(), torch.nn.Linear(width, 1)).to(dtype) for _ in cfgs]
    flat = torch.stack([_weights(m) for m in models])
    offsets = [0, *itertools.accumulate(p.numel() for p in models[0].parameters())]
    batched = BatchedOptimizer(cfgs, flat, offsets)
    alone = [make_optimizer(m.parameters(), c, torch.device("cpu")) for m, c in zip(models, cfgs, strict=True)]
    _step_both(batched, flat, models, alone)
    for k, model in enumerate(models):
        assert torch.equal(_weights(model), flat[k]), f"member {k} ({kind}, lr {lrs[k]}) left its optimizer's path"


def _step_both(batched: BatchedOptimizer, flat: torch.Tensor, models: list, alone: list, steps: int = 12) -> None:
    """The same random gradients, `steps` times, to the stacked optimizer and to each model's own."""
    for _ in range(steps):
        grad = torch.randn_like(flat)
        batched.step(flat, grad.clone())
        for k, (model, opt) in enumerate(zip(models, alone, strict=True)):
            offset = 0
            for p in model.parameters():
                p.grad = grad[k, offset : offset + p.numel()].view_as(p).clone()
                offset += p.numel()
            opt.step()


def test_in_float64_a_member_equals_its_lone_trial_to_1e_12() -> None:
    """Everything that is not summation order (initial weights, batch order, dropout masks,
    optimizer, weight decay) is shared: in float64, where rounding is 1e-16, a member ends three
    epochs (18 steps) within 1e-12 of the lone trial. A different mask, order or eps would be
    ~1e-2 off; hyperparameters rounded to float32 were ~1e-8 off."""
    for alone, member in _alone_and_grouped(MEMBERS, torch.float64, epochs=3):
        assert _rel(member, alone) < 1e-12


def test_in_float32_a_member_starts_a_few_ulps_from_its_lone_trial() -> None:
    """One full-batch step in float32: the summation order of the stacked matmuls moves a
    member's weights by a few ulps (float32's ulp is 1.2e-7 of a value), never more."""
    pairs = _alone_and_grouped(MEMBERS, torch.float32, epochs=1, batch_size="full")
    gaps = [_rel(member, alone) for alone, member in pairs]
    assert max(gaps) < 1e-6, gaps


def test_a_members_arithmetic_does_not_depend_on_the_other_members() -> None:
    """The same member in a group of two and in a group of three ends bit for bit alike: the other
    members' values never enter its sums (the kernels see a batch of matrices either way)."""
    data = _data(torch.float32)
    finals = []
    for group in (MEMBERS[:2], MEMBERS):
        exps = [_exp(m, 2, 32) for m in group]
        models, states = [], []
        for exp in exps:
            models.append(model_for(exp, data))
            states.append(torch.get_rng_state())
        fit_group(models, data, [e.train for e in exps], loss_name="huber", metrics=[], layouts=[None] * len(exps),
                  identities=[{} for _ in exps], rng_states=states)
        finals.append([_weights(m) for m in models[:2]])
    for small, large in zip(*finals, strict=True):
        assert torch.equal(small, large)


def _member_in(stack: list[tuple[dict[str, Any], list[int]]]) -> torch.Tensor:
    """The first member's weights after two epochs (float32) in a group of these (member, widths)."""
    data = _data(torch.float32)
    models, states, cfgs = [], [], []
    for member, dims in stack:
        exp = _exp(member, 2, 32)
        exp = exp.model_copy(update={"model": exp.model.model_copy(update={"hidden_dims": dims})})
        models.append(model_for(exp, data))
        states.append(torch.get_rng_state())
        cfgs.append(exp.train)
    fit_group(models, data, cfgs, loss_name="huber", metrics=[], layouts=[None] * len(stack),
              identities=[{} for _ in stack], rng_states=states)
    return _weights(models[0])


@pytest.mark.parametrize("others", [
    [(MEMBERS[0], [64, 64]), (MEMBERS[2], [128, 128])],  # padded to 128 wide
    [(MEMBERS[2], [32, 32]), (MEMBERS[0], [64, 64, 64]), (MEMBERS[2], [64, 64, 64])],  # beside deeper ones
])
def test_a_32_wide_members_bits_do_not_depend_on_the_stack_it_is_padded_into(
        others: list[tuple[dict[str, Any], list[int]]]) -> None:
    """A member of seed 000's widths (32, 64, 128) ends bit for bit alike in a same-shape pair and
    in a stack padded wider or holding deeper members: only training alone (`fit`'s kernels)
    rounds differently, which is why a round's parcels never leave a stacked trial alone
    (search/round_parcels.py). Widths off multiples of 32 (24 padded to 32) can move a few bits."""
    pair = _member_in([(MEMBERS[1], [32, 32]), (MEMBERS[0], [32, 32])])
    assert torch.equal(_member_in([(MEMBERS[1], [32, 32]), *others]), pair)


@pytest.mark.parametrize("mode", ["no fused kernel", "one call"])
def test_adams_other_ways_stay_within_float_rounding(mode: str) -> None:
    """Without `_fused_adam_` (the same math in column ops) and off the CPU (one lr=1 call for
    all, scaled per member): rounded their own way, equal to float rounding."""
    torch.manual_seed(1)
    betas = (0.9, 0.999) if mode == "one call" else (0.8, 0.99)  # one call needs shared betas and eps
    cfgs = [TrainSection(optimizer="adam", lr=1e-2),
            TrainSection(optimizer="adam", lr=1e-3, weight_decay=1e-2, betas=betas)]
    models = [torch.nn.Sequential(torch.nn.Linear(5, 13), torch.nn.ReLU(), torch.nn.Linear(13, 1)) for _ in cfgs]
    flat = torch.stack([_weights(m) for m in models])
    batched = BatchedOptimizer(cfgs, flat)
    batched.one_call, batched.fused = mode == "one call", mode != "no fused kernel"
    alone = [make_optimizer(m.parameters(), c, torch.device("cpu")) for m, c in zip(models, cfgs, strict=True)]
    _step_both(batched, flat, models, alone)
    for k, model in enumerate(models):
        assert _rel(flat[k], _weights(model)) < 1e-6
