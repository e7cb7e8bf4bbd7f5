"""`LeanStep` gives the optimizer's own numbers bit for bit, and takes its short way only where that holds."""

from __future__ import annotations

import types
from collections.abc import Callable

import pytest
import torch
from torch import nn

from tunelab.train.lean_step import LeanStep

Make = Callable[[list[dict]], torch.optim.Optimizer]
OPTIMIZERS: dict[str, Make] = {
    "adam": lambda groups: torch.optim.Adam(groups, lr=1e-2, fused=True),
    "adamw": lambda groups: torch.optim.AdamW(groups, lr=1e-2, weight_decay=0.1, betas=(0.8, 0.99), fused=True),
    "adam_wd": lambda groups: torch.optim.Adam(groups, lr=1e-2, weight_decay=0.05, eps=1e-6, fused=True),
    "adam_foreach": lambda groups: torch.optim.Adam(groups, lr=1e-2, foreach=True),
    "sgd": lambda groups: torch.optim.SGD(groups, lr=1e-2, momentum=0.9),
}


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))


def _groups(net: nn.Module) -> list[dict]:
    """Two groups with their own lr (as encoder_head's head), one layer frozen (no gradient)."""
    net[2].weight.requires_grad_(False)
    return [{"params": list(net[0].parameters())}, {"params": list(net[2:].parameters()), "lr": 3e-3}]


def _train(make: Make, steps: int, lean: bool, resume_at: int | None = None) -> tuple[nn.Module, dict, int]:
    """`steps` steps under a warmup schedule; with `resume_at`, the optimizer and scheduler are rebuilt
    there from their state dicts (as a resumed trial); returns the net, the optimizer state and how
    often `optimizer.step()` itself ran."""
    net = _net()
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 5, generator=gen), torch.randn(64, 2, generator=gen)

    def build(state: dict | None = None) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, list]:
        opt = make(_groups(net))
        calls = []
        real = opt.step

        def counted(_self: torch.optim.Optimizer, *args: object, **kwargs: object) -> object:
            calls.append(1)
            return real(*args, **kwargs)

        opt.step = types.MethodType(counted, opt)  # type: ignore[method-assign]
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 4))
        if state is not None:
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
        return opt, sched, calls

    opt, sched, calls = build()
    stepper = LeanStep(opt)
    real_calls = 0
    for i in range(steps):
        if i == resume_at:
            real_calls += len(calls)
            opt, sched, calls = build({"opt": opt.state_dict(), "sched": sched.state_dict()})
            stepper = LeanStep(opt)
        idx = torch.randint(0, 64, (16,), generator=gen)
        nn.functional.mse_loss(net(x[idx]), y[idx]).backward()
        if lean:
            stepper.step()
            stepper.zero_grad()
        else:
            opt.step()
            opt.zero_grad(set_to_none=True)
        sched.step()
    return net, opt.state_dict(), real_calls + len(calls)


def _assert_identical(a: object, b: object) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            _assert_identical(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_identical(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("resume_at", [None, 5])
def test_lean_steps_equal_the_optimizers_own_bit_for_bit(name: str, resume_at: int | None) -> None:
    plain_net, plain_state, plain_calls = _train(OPTIMIZERS[name], 12, lean=False, resume_at=resume_at)
    lean_net, lean_state, lean_calls = _train(OPTIMIZERS[name], 12, lean=True, resume_at=resume_at)
    _assert_identical(plain_net.state_dict(), lean_net.state_dict())
    _assert_identical(plain_state, lean_state)
    assert plain_net[2].weight.grad is None and lean_net[2].weight.grad is None
    assert plain_calls == 12
    # fused Adam/AdamW: only the first step after (re)building the optimizer goes through it
    expected = (1 if resume_at is None else 2) if name in ("adam", "adamw", "adam_wd") else 12
    assert lean_calls == expected


def test_a_registered_step_hook_sends_every_step_through_the_optimizer() -> None:
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)
    seen = []
    opt.register_step_post_hook(lambda *_: seen.append(1))
    stepper = LeanStep(opt)
    for _ in range(3):
        net(torch.ones(2, 5)).sum().backward()
        stepper.step()
        stepper.zero_grad()
    assert len(seen) == 3
    assert all(p.grad is None for p in net.parameters())


def test_a_parameter_that_gets_its_first_gradient_late_is_stepped_as_the_optimizer_would() -> None:
    """The second layer is used from step 3 on: its state is created then and it is updated from then."""

    def run(lean: bool) -> tuple[nn.Module, int]:
        torch.manual_seed(0)
        net = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        opt = torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)
        calls = []
        real = opt.step
        opt.step = types.MethodType(lambda _s: (calls.append(1), real())[1], opt)  # type: ignore[method-assign]
        stepper = LeanStep(opt)
        for i in range(6):
            out = net[0](torch.ones(3, 4))
            (net[1](out) if i >= 3 else out).sum().backward()
            stepper.step() if lean else opt.step()
            stepper.zero_grad()
        return net, len(calls)

    (plain, _), (lean, calls) = run(False), run(True)
    _assert_identical(plain.state_dict(), lean.state_dict())
    assert calls == 2  # the first step, and the step where the second layer's state is created
