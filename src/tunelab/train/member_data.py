"""Members of one vectorized group that bring rows of their own (cross-validation folds, frozen
heads on embeddings of their own `max_length`): when such data can be stacked, and the stack.

`fit_group` (train/vectorized.py) reads each member's batches and validation rows from here;
`search/group_run.py` asks `same_rows` / `member_data_error` before it packs members together.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tunelab.data.dataset import Dataset
from tunelab.train.batched_model import StackedNet


def same_rows(a: Dataset, b: Dataset) -> bool:
    """Whether two members' data sets hold the same rows (one stacked copy serves both)."""
    def same(u: torch.Tensor, v: torch.Tensor) -> bool:
        return u is v or (u.shape == v.shape and u.dtype == v.dtype and torch.equal(u, v))

    return all(same(getattr(a, s).x, getattr(b, s).x) and same(getattr(a, s).y, getattr(b, s).y)
               for s in ("train", "val"))


def member_data_error(data: Dataset, member_data: Sequence[Dataset], k: int) -> str | None:
    """Why these per-member data sets cannot be stacked (None: they can)."""
    if not member_data:
        return None
    if len(member_data) != k:
        return f"need one data set per member, got {len(member_data)} for {k} members"
    d0 = member_data[0]
    for i, d in enumerate(member_data):
        if d.is_image or (d.is_text and not (d.train.x.is_floating_point() and d.train.x.dim() == 2)):
            return f"member {i}: per-member data must be numeric tensors (no images or raw texts)"
        if (d.task, tuple(d.input_shape), d.output_dim) != (data.task, tuple(data.input_shape), data.output_dim):
            return f"member {i}: data of another task or shape"
        sizes, sizes0 = (len(d.train), len(d.val)), (len(d0.train), len(d0.val))
        if sizes != sizes0:
            return f"member {i}: {sizes[0]} train / {sizes[1]} val rows, member 0 has {sizes0[0]} / {sizes0[1]}"
    return None


class OwnData:
    """Each member's own rows (cross-validation folds, embeddings of its own max_length), stacked
    once per distinct data set: (D, n, ...) per split, and which one each member reads."""

    def __init__(self, member_data: Sequence[Dataset], device: torch.device) -> None:
        distinct: list[Dataset] = []
        which = []
        for d in member_data:
            at = next((j for j, e in enumerate(distinct) if same_rows(d, e)), len(distinct))
            if at == len(distinct):
                distinct.append(d)
            which.append(at)
        self.which = torch.tensor(which, device=device)
        self.x = {s: torch.stack([getattr(d, s).x for d in distinct]).to(device) for s in ("train", "val")}
        self.y = {s: torch.stack([getattr(d, s).y for d in distinct]).to(device) for s in ("train", "val")}
        self.scalers = [d.target_scaler for d in member_data]

    def split(self, name: str, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """The active members' rows of one split, and their indices (for `_Evaluator`)."""
        index = self.which[torch.tensor(list(rows), device=self.which.device)]
        return self.x[name].index_select(0, index), self.y[name].index_select(0, index), list(rows)

    def batches(self, rows: Sequence[int], generators: Sequence[torch.Generator], batch_size: int | None,
                net: StackedNet) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """One epoch's batches: each member's own training rows in its own seeded order (`fit`'s
        `randperm`), or all of them at once (`batch_size` None: full batch)."""
        if batch_size is None:
            x, y, _ = self.split("train", rows)
            return [net.input(x)], [y]
        x, y = self.x["train"], self.y["train"]
        orders = torch.stack([torch.randperm(x.shape[1], generator=g) for g in generators]).to(x.device)
        members = self.which[torch.tensor(list(rows), device=x.device)].unsqueeze(1)
        xs = [net.input(xb) for xb in x[members, orders].split(batch_size, dim=1)]
        return xs, list(y[members, orders].split(batch_size, dim=1))
