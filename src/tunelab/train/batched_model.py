"""K same-shape networks as one: parameters stacked in a (K, P) buffer, forward by batched ops.

A `StackedNet` is built from K `nn.Sequential` models that share every shape. Each member's
parameters live in one row of a flat `(K, P)` buffer; per-parameter views `(K, *shape)` of it
are the autograd leaves, so an optimizer can update every member's every tensor with a handful
of element-wise ops on the buffer. Linear layers run as `baddbmm` over the member dimension;
convolutions as one grouped convolution (`groups=K`) over channels stacked member-major, which
keeps each member's arithmetic separate (a member's NaN never reaches another member).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tunelab.config.schema import TrainSection
from tunelab.models.activations import ACTIVATION_MODULES
from tunelab.train.losses import ELEMENTWISE, elementwise_loss
from tunelab.train.member_dropout import MemberDropout, draws_match_bernoulli, shared_dropout
from tunelab.train.mixed import Padded, fit_width, masked_layer_norm, real_part, unit_masks

_ACTIVATIONS = tuple(ACTIVATION_MODULES.values())
_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def unsupported_module(model: nn.Module) -> str | None:
    """Why this network cannot be stacked, or None when it can."""
    if not isinstance(model, nn.Sequential):
        return f"model is a {type(model).__name__}, not an nn.Sequential"
    for i, layer in enumerate(model):
        if isinstance(layer, (nn.Linear, nn.Flatten, nn.Dropout, *_POOLS, *_ACTIVATIONS)):
            continue
        if isinstance(layer, nn.LayerNorm):
            if len(layer.normalized_shape) != 1 or not layer.elementwise_affine or layer.bias is None:
                return f"layer {i}: only a 1-d affine LayerNorm is supported"
            continue
        if isinstance(layer, nn.Conv2d):
            if layer.groups != 1 or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
                return f"layer {i}: only groups=1, zero-padded Conv2d with numeric padding is supported"
            continue
        return f"layer {i}: {type(layer).__name__} is not supported by vectorized training"
    return None


def stackable(model: nn.Module) -> nn.Module:
    """The plain Sequential a model trains as: its own, or the layers of a head that wraps one
    (the same parameter tensors, so writing back to it updates the model)."""
    layers = getattr(model, "layers", None)
    return layers if hasattr(model, "lr_multiplier") and isinstance(layers, nn.Sequential) else model


def head_lr(model: nn.Module, cfg: TrainSection) -> TrainSection:
    """A head that learns at lr x its multiplier (`param_groups`) trains in a group at that lr,
    as `fit` trains it (its records then show that lr too)."""
    multiplier = float(getattr(model, "lr_multiplier", 1.0))
    return cfg if multiplier == 1.0 else cfg.model_copy(update={"lr": cfg.lr * multiplier})


def layer_signature(model: nn.Module) -> list[str]:
    """Everything about the layers that must match across members (Dropout layers may differ)."""
    sig = [repr(layer) for layer in model if not isinstance(layer, nn.Dropout)]  # type: ignore[attr-defined]
    return sig + [f"{tuple(p.shape)}:{p.dtype}" for p in model.parameters()]


class StackedNet:
    """The K members' parameters as one flat buffer plus a batched forward.

    With `padded` (train/mixed.py) the members differ in shape: `models` are then the copies in
    one template, each padded Linear's input is masked to the member's real units, LayerNorms
    normalize each member's real units, activations are each member's own, layers a member lacks
    pass its input through untouched, and a member's own parameters are the blocks `piece` cuts
    out of its row."""

    def __init__(
        self, models: Sequence[nn.Module], device: torch.device, rng_states: Sequence[torch.Tensor | None] = (),
        padded: Padded | None = None,
    ) -> None:
        # Dropout layers are taken out of the plan (members differ in them: p=0 builds none) and
        # become per-member rates applied after the layer they follow.
        self.layers: list[nn.Module] = []
        self.drop_after: dict[int, int] = {}
        rates: list[list[float]] = []
        for model in models:
            member_rates: dict[int, float] = {}
            position = -1
            for layer in model:  # type: ignore[attr-defined]
                if isinstance(layer, nn.Dropout):
                    member_rates[position] = float(layer.p)
                else:
                    position += 1
                    if model is models[0]:
                        self.layers.append(layer)
            rates.append(list(member_rates.items()))  # type: ignore[arg-type]
        for member_rates in rates:
            for position, _ in member_rates:  # type: ignore[misc]
                self.drop_after.setdefault(position, len(self.drop_after))
        table = [[0.0] * len(self.drop_after) for _ in models]
        for row, member_rates in zip(table, rates, strict=True):
            for position, p in member_rates:  # type: ignore[misc]
                row[self.drop_after[position]] = p
        self.dropout = torch.tensor(table, dtype=torch.float32, device=device)  # (K, dropout slots)
        self.rates = table
        # With each member's global-RNG state (taken right after its model was built) its dropout
        # masks are drawn exactly as `fit` draws them; without, from one shared stream.
        states = list(rng_states) or [None] * len(models)
        self.generators: list[torch.Generator] | None = None
        if all(state is not None for state in states):
            self.generators = []
            for state in states:
                gen = torch.Generator()
                gen.set_state(state)  # type: ignore[arg-type]
                self.generators.append(gen)
        self._fast_masks = self.generators is not None and draws_match_bernoulli()
        self.names = [n for n, p in models[0].named_parameters()]
        self.shapes = [tuple(p.shape) for p in models[0].parameters()]
        self.real_shapes = padded.real_shapes if padded else [self.shapes] * len(models)
        self.own = padded.own if padded else [list(range(len(self.shapes)))] * len(models)
        self.in_masks = {j: m.to(device) for j, m in padded.in_masks.items()} if padded else {}
        self.widths = padded.widths if padded else {}
        self.widen = padded.widen if padded else {}
        # Where members differ: each member's module at that position (None: it passes its input
        # through); applied per run of consecutive members (`fit_group` orders them so runs are few).
        self.choices: dict[int, list[nn.Module | None]] = {}
        for j in sorted(set(padded.skip) | set(padded.acts)) if padded else ():
            skip, acts = padded.skip.get(j, [False] * len(models)), padded.acts.get(j)  # type: ignore[union-attr]
            self.choices[j] = [None if s else (acts[r] if acts else self.layers[j]) for r, s in enumerate(skip)]
        self.norms = {j: unit_masks(w, self.layers[j].normalized_shape[0], device)  # type: ignore[index]
                      for j, w in self.widths.items() if isinstance(self.layers[j], nn.LayerNorm)}
        self.sizes = [math.prod(s) for s in self.shapes]
        self.offsets = [0]
        for size in self.sizes:
            self.offsets.append(self.offsets[-1] + size)
        self.conv_input = any(isinstance(layer, nn.Conv2d) for layer in self.layers)
        self.device = device
        rows = [torch.cat([p.detach().reshape(-1) for p in model.parameters()]) for model in models]
        self.flat = torch.stack(rows).to(device)
        self._make_views()

    @property
    def k(self) -> int:
        return int(self.flat.shape[0])

    def _make_views(self) -> None:
        self.runs = {j: _runs(c) for j, c in self.choices.items()}
        self.member_dropouts = {  # each dropout layer's masks from the members' own generators
            position: MemberDropout([row[slot] for row in self.rates], self.generators, self.widths.get(position),
                                    fast=self._fast_masks)
            for position, slot in self.drop_after.items()} if self.generators is not None else {}
        self.views = [view.requires_grad_(True) for view in self.split(self.flat)]
        self.by_layer: dict[int, dict[str, torch.Tensor]] = {}
        views = iter(self.views)
        for index, layer in enumerate(self.layers):  # parameters() order: each layer's weight, then bias
            for attr in ("weight", "bias"):
                if getattr(layer, attr, None) is not None:
                    self.by_layer.setdefault(index, {})[attr] = next(views)

    def split(self, buffer: torch.Tensor) -> list[torch.Tensor]:
        """Each parameter's (K, *shape) view of a (K, P) buffer laid out as `flat` (the weights;
        the gradient buffer, filled by a copy per parameter, not a reshape and a concatenation)."""
        k = buffer.shape[0]
        return [buffer[:, a:b].view(k, *shape)
                for a, b, shape in zip(self.offsets[:-1], self.offsets[1:], self.shapes, strict=True)]

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only these members (row indices), in this order."""
        self.flat = self.flat.index_select(0, rows)
        self.dropout = self.dropout.index_select(0, rows)
        keep = rows.tolist()
        self.rates = [self.rates[r] for r in keep]
        self.real_shapes = [self.real_shapes[r] for r in keep]
        self.own = [self.own[r] for r in keep]
        self.in_masks = {j: m.index_select(0, rows) for j, m in self.in_masks.items()}
        self.widths = {j: [w[r] for r in keep] for j, w in self.widths.items()}
        self.choices = {j: [c[r] for r in keep] for j, c in self.choices.items()}
        self.norms = {j: (m.index_select(0, rows), n.index_select(0, rows)) for j, (m, n) in self.norms.items()}
        if self.generators is not None:
            self.generators = [self.generators[r] for r in keep]
        self._make_views()

    def piece(self, buffer: torch.Tensor, row: int, index: int) -> torch.Tensor:
        """Member `row`'s own parameter `index` (its real block, a view) in a (K, P) buffer laid
        out as `flat` (the weights, or an optimizer state)."""
        at = self.own[row][index]
        a, b = self.offsets[at], self.offsets[at + 1]
        return real_part(buffer[row, a:b].view(self.shapes[at]), self.real_shapes[row][index])

    def own_norms(self, norms: Sequence[Sequence[float]], row: int) -> list[float]:
        """Member `row`'s gradient norm of each of its own parameters, from `grad_norms` (synced)."""
        return [norms[at][row] for at in self.own[row]]

    def write_back(self, row: int, model: nn.Module) -> None:
        """Copy member `row`'s current weights into its own module."""
        with torch.no_grad():
            for index, param in enumerate(model.parameters()):
                param.copy_(self.piece(self.flat, row, index))

    def grad_norms(self, flat_grad: torch.Tensor) -> torch.Tensor:
        """(n_params, K): each member's gradient norm per parameter tensor."""
        return torch.stack(
            [flat_grad[:, a:b].norm(dim=1) for a, b in zip(self.offsets, self.offsets[1:], strict=False)]
        )

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """(K, B, *shape) per-member rows -> the layout the first layer takes."""
        if self.conv_input:  # (B, K*C, H, W): each member's channels side by side
            k, b = x.shape[:2]
            return x.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:])
        return x

    def shared_input(self, x: torch.Tensor) -> torch.Tensor:
        """The same rows for every member (validation): (B, *shape) -> the first layer's layout."""
        if self.conv_input:
            return x.repeat(1, self.k, 1, 1)
        return x.unsqueeze(0).expand(self.k, *x.shape)

    def forward(self, h: torch.Tensor, *, train: bool) -> torch.Tensor:
        """Batched forward from `input`/`shared_input`; returns (K, B, outputs)."""
        k = self.k
        conv = self.conv_input
        if conv:  # channels-last grouped conv and pooling run faster on CPU than NCHW
            h = h.contiguous(memory_format=torch.channels_last)
        if train and -1 in self.drop_after:  # dropout on the input itself (an encoder head's pooled vector)
            h = self._drop(h, -1, conv, k)
        for i, layer in enumerate(self.layers):
            p = self.by_layer.get(i, {})
            if isinstance(layer, nn.Conv2d):
                w = p["weight"].reshape(-1, *p["weight"].shape[2:])
                bias = p["bias"].reshape(-1) if "bias" in p else None
                h = F.conv2d(h, w, bias, layer.stride, layer.padding, layer.dilation, groups=k)
            elif isinstance(layer, nn.Flatten):
                if conv:
                    h = h.reshape(h.shape[0], k, -1).transpose(0, 1)
                    conv = False
                else:
                    h = h.reshape(k, h.shape[1], -1)
            elif i in self.runs:  # members differ here: each run of them its own way
                width = self.widen.get(i, layer.out_features) if isinstance(layer, nn.Linear) else h.shape[-1]
                pieces = [fit_width(h[a:b], width) if module is None else self._apply(i, module, h[a:b], p, slice(a, b))
                          for a, b, module in self.runs[i]]
                h = torch.cat(pieces) if len(pieces) > 1 else pieces[0]
            else:
                h = self._apply(i, layer, h, p)
            if train and i in self.drop_after:
                h = self._drop(h, i, conv, k)
        return h

    def _apply(self, i: int, layer: nn.Module, h: torch.Tensor, p: dict[str, torch.Tensor],
               rows: slice | None = None) -> torch.Tensor:
        """Layer `i` (Linear, LayerNorm, an activation or a pool) on members `rows` of `h` (all)."""
        def of(t: torch.Tensor) -> torch.Tensor:
            return t if rows is None else t[rows]

        if isinstance(layer, nn.Linear):
            if i in self.in_masks:  # padded units: zero out, so they get zero gradients too
                h = h * of(self.in_masks[i])
            h = torch.baddbmm(of(p["bias"]).unsqueeze(1), h, of(p["weight"]).transpose(1, 2))
            return fit_width(h, self.widen[i]) if i in self.widen else h  # a shallower member's output
        if isinstance(layer, nn.LayerNorm):
            if i in self.norms:  # members of different widths: each over its real units
                mask, count = self.norms[i]
                h = masked_layer_norm(h, of(mask), of(count), layer.eps)
            else:
                h = F.layer_norm(h, layer.normalized_shape, None, None, layer.eps)
            return torch.addcmul(of(p["bias"]).unsqueeze(1), h, of(p["weight"]).unsqueeze(1))
        return layer(h)  # activations and pools act element- or channel-wise

    def _drop(self, h: torch.Tensor, position: int, conv: bool, k: int) -> torch.Tensor:
        """Each member's dropout after layer `position` (-1: on the input)."""
        if self.generators is not None:
            return self.member_dropouts[position](h, conv, k)
        return shared_dropout(h, self.dropout[:, self.drop_after[position]], conv, k)


def _runs(choices: Sequence[nn.Module | None]) -> list[tuple[int, int, nn.Module | None]]:
    """Consecutive members with the same module (or None) as (start, end, module) runs."""
    runs: list[tuple[int, int, nn.Module | None]] = []
    for row, module in enumerate(choices):
        key = None if module is None else repr(module)
        if runs and (None if runs[-1][2] is None else repr(runs[-1][2])) == key:
            runs[-1] = (runs[-1][0], row + 1, runs[-1][2])
        else:
            runs.append((row, row + 1, module))
    return runs


BatchedLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def batched_loss(name: str, task: str, huber_delta: float = 1.0) -> BatchedLoss:
    """Per-member mean loss: (K, B, out) and (K, B[, targets]) -> (K,), as `make_loss` per member."""

    def per_member(values: torch.Tensor) -> torch.Tensor:
        return values.reshape(values.shape[0], -1).mean(dim=1)

    if name == "cross_entropy":
        def ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            flat = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="none")
            return per_member(flat.view(y.shape))
        return ce
    if name in ELEMENTWISE:
        elementwise = elementwise_loss(name, huber_delta, reduction="none")

        def regression(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if task == "classification":
                y = F.one_hot(y, out.shape[-1]).to(out.dtype)
            return per_member(elementwise(out, y))
        return regression
    if name == "gaussian_nll":
        def nll(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            k = out.shape[-1] // 2
            var = F.softplus(out[..., k:]) + 1e-6
            return per_member(F.gaussian_nll_loss(out[..., :k], y, var, reduction="none"))
        return nll
    raise ValueError(f"unknown loss {name!r}")
