"""Each stacked member's dropout equals `nn.Dropout` on that member alone, bit for bit: the same
mask from the member's own RNG stream, the same scale, and the stream left where it would be."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tunelab.train.member_dropout import MemberDropout, draws_match_bernoulli

RATES = [0.0, 0.021, 0.5, 0.3]  # 0.021: 1/(1-p) rounds differently in float32 than in float64


def _streams(k: int) -> list[torch.Tensor]:
    return [torch.Generator().manual_seed(100 + row).get_state() for row in range(k)]


def _alone(x: torch.Tensor, p: float, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """nn.Dropout on one member's input with the global RNG at its state: output, state after."""
    saved = torch.get_rng_state()
    try:
        torch.set_rng_state(state)
        out = nn.Dropout(p).train()(x)
        return out, torch.get_rng_state()
    finally:
        torch.set_rng_state(saved)


def _generators(states: list[torch.Tensor]) -> list[torch.Generator]:
    gens = []
    for state in states:
        gen = torch.Generator()
        gen.set_state(state)
        gens.append(gen)
    return gens


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_padded_members_masks_equal_nn_dropout_alone_step_after_step(fast: bool, dtype: torch.dtype) -> None:
    if fast and not draws_match_bernoulli():
        pytest.skip("this torch build's bernoulli_ is not the portable kernel")
    widths, width = [7, 16, 12, 16], 16
    states = _streams(len(RATES))
    drop = MemberDropout(RATES, _generators(states), widths, fast=fast)
    gen = torch.Generator().manual_seed(0)
    for batch in (5, 5, 3, 5):  # buffers are reused across steps and kept per batch size
        h = torch.randn(len(RATES), batch, width, generator=gen, dtype=dtype)
        h[0, 0, 0] = -h[0, 0, 0].abs()  # a negative input of a dropped unit gives -0.0 alone as stacked
        out = drop(h, conv=False, k=len(RATES))
        for row, (p, w) in enumerate(zip(RATES, widths, strict=True)):
            alone, states[row] = _alone(h[row, :, :w], p, states[row])
            assert torch.equal(out[row, :, :w], alone)
            assert torch.equal(out[row, :, :w].signbit(), alone.signbit())
            assert not out[row, :, w:].any()  # padding is dropped
            assert torch.equal(drop.generators[row].get_state(), states[row])


@pytest.mark.parametrize("fast", [True, False])
def test_conv_members_masks_equal_nn_dropout_alone(fast: bool) -> None:
    if fast and not draws_match_bernoulli():
        pytest.skip("this torch build's bernoulli_ is not the portable kernel")
    k, channels = len(RATES), 3
    states = _streams(k)
    drop = MemberDropout(RATES, _generators(states), fast=fast)
    h = torch.randn(4, k * channels, 5, 5, generator=torch.Generator().manual_seed(1))
    h = h.contiguous(memory_format=torch.channels_last)  # as the stack's conv layers run
    for _ in range(2):
        out = drop(h, conv=True, k=k)
        for row, p in enumerate(RATES):
            own = slice(row * channels, (row + 1) * channels)
            alone, states[row] = _alone(h[:, own].contiguous(), p, states[row])
            assert torch.equal(out[:, own], alone)


def test_members_without_dropout_pass_through_and_draw_nothing() -> None:
    states = _streams(2)
    drop = MemberDropout([0.0, 0.0], _generators(states), fast=draws_match_bernoulli())
    h = torch.randn(2, 4, 3)
    assert drop(h, conv=False, k=2) is h
    assert all(torch.equal(g.get_state(), s) for g, s in zip(drop.generators, states, strict=True))


def test_a_second_forward_before_the_first_backward_is_refused_not_silently_wrong() -> None:
    """The mask buffer is reused: autograd's version check stops a stale backward."""
    drop = MemberDropout([0.5, 0.5], _generators(_streams(2)), fast=draws_match_bernoulli())
    h = torch.randn(2, 4, 3, requires_grad=True)
    first = drop(h, conv=False, k=2)
    drop(h, conv=False, k=2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        first.sum().backward()


def test_the_probe_refuses_a_bernoulli_kernel_that_draws_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """As MKL's Intel-only kernel does: one seed from the generator, then a stream of its own."""
    real = torch.Tensor.bernoulli_

    def seeded_once(self: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
        seed = int(torch.randint(2**31, (1,), generator=generator))
        return real(self, p, generator=torch.Generator().manual_seed(seed))

    monkeypatch.setattr(torch.Tensor, "bernoulli_", seeded_once)
    assert not draws_match_bernoulli()
