"""Dropout in a vectorized stack: each member at its own rate, with its own masks.

`member_dropout` draws each member's mask from the member's own generator exactly as `nn.Dropout`
would alone (so a member is bit for bit its sequential twin); `shared_dropout` draws them from the
global RNG (statistically alike, used when the members' RNG states are not given).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


def member_dropout(
    h: torch.Tensor, rates: list[float], generators: list[torch.Generator], conv: bool, k: int,
    widths: list[int] | None = None,
) -> torch.Tensor:
    """Each member's mask from its own generator, drawn as `nn.Dropout` draws it (same shape,
    same memory order, same arithmetic), so a member equals its sequential twin bit for bit.
    `widths`: each member's real feature count in a padded stack (its mask is drawn at that
    width, as alone, and padded with zeros)."""
    if not any(p > 0 for p in rates):
        return h
    if conv:  # (B, K*C, H, W): member k owns channels k*C..(k+1)*C
        b, kc, hh, ww = h.shape
        shape = (b, kc // k, hh, ww)
    else:  # (K, B, F...)
        shape = tuple(h.shape[1:])
    masks = []
    for row, (p, gen) in enumerate(zip(rates, generators, strict=True)):
        own = shape if widths is None else (*shape[:-1], widths[row])
        if p > 0:
            noise = torch.empty(own, dtype=h.dtype, device=h.device).bernoulli_(1 - p, generator=gen)
            mask = noise.div_(1 - p)
        else:
            mask = torch.ones(own, dtype=h.dtype, device=h.device)
        masks.append(mask if own == shape else F.pad(mask, (0, shape[-1] - own[-1])))
    return h * (torch.cat(masks, dim=1) if conv else torch.stack(masks))
