"""Dropout in a vectorized stack: each member at its own rate, with its own masks.

`MemberDropout` draws each member's mask from the member's own generator exactly as `nn.Dropout`
would alone (so a member is bit for bit its sequential twin); `shared_dropout` draws them from the
global RNG (statistically alike, used when the members' RNG states are not given).

Where torch's CPU `bernoulli_(q)` is its portable kernel (one 53-bit uniform double `u` per
element, kept when `u < q`: torch builds with MKL use it on every CPU but Intel's), the same
uniforms drawn by `uniform_` and compared with `q` give the same mask and leave the generator in
the same state, in 0.55-0.7x the time (AMD EPYC VM). `draws_match_bernoulli` checks this on the
running build before it is relied on; else each mask is drawn by `bernoulli_` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def shared_dropout(h: torch.Tensor, p: torch.Tensor, conv: bool, k: int) -> torch.Tensor:
    """Inverted dropout with each member's own rate; masks are drawn from the global RNG."""
    if not bool((p > 0).any()):
        return h
    if conv:  # (B, K*C, H, W)
        view = h.reshape(h.shape[0], k, -1)
        rate = p.view(1, k, 1)
    else:
        view = h
        rate = p.view(k, *([1] * (h.dim() - 1)))
    keep = (torch.rand_like(view) >= rate).to(h.dtype) / (1 - rate)
    return (view * keep).reshape(h.shape)


def draws_match_bernoulli() -> bool:
    """Whether `uniform_` doubles compared with q give `bernoulli_(q)`'s mask and generator state
    on this torch build and CPU (a probe of 97 draws; False for MKL's Intel-only kernel)."""
    a, b = torch.Generator().manual_seed(20251201), torch.Generator().manual_seed(20251201)
    mask = torch.empty(97).bernoulli_(0.7, generator=a)
    same = torch.equal(mask, (torch.empty(97, dtype=torch.float64).uniform_(0, 1, generator=b) < 0.7).float())
    return same and torch.equal(a.get_state(), b.get_state())


class MemberDropout:
    """One dropout layer's masks for K members, each drawn as `nn.Dropout` draws it alone (same
    shape, same memory order, the same 1/(1-p) scale), so a member equals its sequential twin.

    Each member's mask is drawn and scaled in its slice of one buffer kept per input shape (a
    padded member's at its real width, as alone: its padding stays 0; a member with p = 0 draws
    nothing and stays 1), which is then the stack's mask. Autograd keeps that buffer for the
    backward pass, so each forward's backward must run before the next forward redraws it (the
    training loop's order; torch raises on the buffer's version counter otherwise).
    """

    def __init__(self, rates: Sequence[float], generators: Sequence[torch.Generator],
                 widths: Sequence[int] | None = None, fast: bool = False) -> None:
        """`widths`: each member's real feature count in a padded stack. `fast`: draw by
        `uniform_` (only where `draws_match_bernoulli()`)."""
        self.rates = list(rates)
        self.generators = list(generators)
        self.widths = list(widths) if widths is not None else None
        self.active = any(p > 0 for p in self.rates)
        self.fast = fast
        self._buffers: dict[tuple[torch.Size, torch.dtype, torch.device, bool], _Buffers] = {}

    def __call__(self, h: torch.Tensor, conv: bool, k: int) -> torch.Tensor:
        """`h` (K, B, F...) or, `conv`, (B, K*C, H, W), with each member's mask applied."""
        if not self.active:
            return h
        key = (h.shape, h.dtype, h.device, conv)
        buffers = self._buffers.get(key)
        if buffers is None:
            buffers = self._buffers[key] = self._make(h, conv, k, self.fast and h.device.type == "cpu")
        for row, (p, scale) in enumerate(zip(self.rates, buffers.scales, strict=True)):
            if p == 0:
                continue
            mask = buffers.masks[row]
            if buffers.uniforms:  # kept where u < 1-p, as bernoulli_(1-p) keeps
                torch.lt(buffers.uniforms[row].uniform_(0, 1, generator=self.generators[row]), 1 - p, out=mask)
            else:
                mask.bernoulli_(1 - p, generator=self.generators[row])
            mask.mul_(scale)  # 0 or exactly nn.Dropout's 1/(1-p)
        return h * buffers.mask

    def _make(self, h: torch.Tensor, conv: bool, k: int, fast: bool) -> _Buffers:
        """The mask buffer for inputs shaped like `h` (and the doubles drawn for it, `fast`), each
        member's slice of them, and each member's scale."""
        def cut(t: torch.Tensor) -> list[torch.Tensor]:
            if conv:  # (B, K*C, H, W): member k owns channels k*C..(k+1)*C
                c = h.shape[1] // k
                return [t[:, row * c:(row + 1) * c] for row in range(k)]
            return [t[row] if self.widths is None else t[row, ..., :self.widths[row]] for row in range(k)]

        mask = torch.zeros(h.shape, dtype=h.dtype, device=h.device)  # contiguous, as a fresh mask is
        masks = cut(mask)
        for row, p in enumerate(self.rates):
            if p == 0:
                masks[row].fill_(1.0)
        # the doubles are drawn member after member into one scratch of the largest member's size
        # (a contiguous tensor of the member's shape fills in the same order as its slice)
        uniforms: list[torch.Tensor] = []
        if fast:
            scratch = torch.empty(max(m.numel() for m in masks), dtype=torch.float64, device=h.device)
            uniforms = [scratch[:m.numel()].view(m.shape) for m in masks]
        # the scale as nn.Dropout computes it: a kept 1 divided by 1-p in h's dtype
        scales = [torch.ones((), dtype=h.dtype, device=h.device).div_(1 - p) for p in self.rates]
        return _Buffers(mask, masks, uniforms, scales)


@dataclass
class _Buffers:
    """One input shape's mask buffer, each member's slice of it, where the member's doubles are
    drawn (`uniforms`: fast draws only; one shared scratch), and each member's scale (a 0-d
    tensor of the mask's dtype)."""

    mask: torch.Tensor
    masks: list[torch.Tensor]
    uniforms: list[torch.Tensor]
    scales: list[torch.Tensor]
