"""Members of different MLP shapes in one stack (train/mixed.py): widths, LayerNorm, activations,
depths and per-member inputs; each member equals itself trained alone with `fit` (float64).

Frozen encoder heads on generated 16-d "embeddings" stand in for seed 001's heads on cached
sentence embeddings (the same module, at a width that keeps each test near a second).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.config.schema import EncoderHeadModel, Experiment, TrainSection
from tunelab.data.dataset import Dataset, Split
from tunelab.models.encoder_head import EncoderHead
from tunelab.runs.layout import TrialLayout
from tunelab.train import checkpoint as ckpt
from tunelab.train.batched_model import StackedNet, batched_loss
from tunelab.train.batched_optim import BatchedOptimizer
from tunelab.train.grouping import can_vectorize, group_key, vectorize_error
from tunelab.train.loop import fit
from tunelab.train.mixed import pad_models
from tunelab.train.optim import make_optimizer
from tunelab.train.padding import pad_stacks, stack_fits
from tunelab.train.trial import model_for
from tunelab.train.vectorized import fit_group

REL = 1e-10
D = 16  # embedding width
HEADS = [  # seed 001's shape knobs, one member each, with its own lr / decay / dropout / seed
    {"num_layers": 3, "hidden_dim_ratio": 0.75, "activation": "gelu", "layer_norm": True, "dropout": 0.2,
     "lr": 1e-2, "weight_decay": 0.0, "seed": 0},
    {"num_layers": 1, "hidden_dim_ratio": 0.5, "activation": "relu", "layer_norm": False, "dropout": 0.0,
     "lr": 3e-3, "weight_decay": 1e-2, "seed": 1},
    {"num_layers": 2, "hidden_dim_ratio": 0.25, "activation": "tanh", "layer_norm": True, "dropout": 0.1,
     "lr": 1e-2, "weight_decay": 0.0, "seed": 2},
    {"num_layers": 2, "hidden_dim_ratio": 0.75, "activation": "leaky_relu", "layer_norm": False, "dropout": 0.3,
     "lr": 5e-3, "weight_decay": 1e-3, "seed": 3},
]
TRAIN_KEYS = ("lr", "weight_decay", "seed")
EXTRA_TRAIN = "train"  # a head's further train settings (early stopping)


def _data(shift: float = 0.0) -> Dataset:
    """A nonlinear regression problem on (n, 16) floats (192 train / 64 val rows); `shift`
    changes the inputs (another max_length's embedding of the same rows), not the targets."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(256, D, generator=gen, dtype=torch.float64)
    y = (x[:, :1] * x[:, 1:2]).sin() + 0.5 * x[:, 2:3] - x[:, 3:4] ** 2 / 4
    x = x + shift * torch.cos(3 * x)
    return Dataset(name="generated", task="regression", train=Split(x[:192], y[:192]), val=Split(x[192:], y[192:]),
                   test=None, input_shape=(D,), output_dim=1)


def _built(heads: list[dict[str, Any]], optimizer: str = "adamw", epochs: int = 3
           ) -> list[tuple[EncoderHead, TrainSection, torch.Tensor]]:
    out = []
    for head in heads:
        model = {k: v for k, v in head.items() if k not in (*TRAIN_KEYS, EXTRA_TRAIN)}
        cfg = EncoderHeadModel.model_validate({"encoder": "local", "head_layout": "halving", **model})
        torch.manual_seed(head["seed"])
        net = EncoderHead(cfg, D, 1).to(torch.float64)
        train = TrainSection.model_validate({
            "epochs": epochs, "batch_size": 32, "device": "cpu", "optimizer": optimizer, "loss": "huber",
            "momentum": 0.9 if optimizer == "sgd" else 0.0, "max_grad_norm": 1.0,
            **{k: head[k] for k in TRAIN_KEYS}, **head.get(EXTRA_TRAIN, {})})
        out.append((net, train, torch.get_rng_state()))
    return out


def _compare(heads: list[dict[str, Any]], datas: list[Dataset], optimizer: str = "adamw",
             layouts: list[TrialLayout | None] | None = None) -> tuple[list[Any], list[Any]]:
    """Train each head alone on its data, then all in one group; assert they agree. Returns
    the grouped heads (model, train section, RNG state) and their results."""
    alone = []
    for (model, cfg, state), data in zip(_built(heads, optimizer), datas, strict=True):
        torch.set_rng_state(state)
        alone.append((model, fit(model, data, cfg, loss_name="huber", metrics=["r2"], layout=None)))
    grouped = _built(heads, optimizer)
    own = datas if any(d is not datas[0] for d in datas) else ()
    results = fit_group([m for m, _, _ in grouped], datas[0], [c for _, c, _ in grouped], loss_name="huber",
                        metrics=["r2"], layouts=layouts or [None] * len(heads), identities=[{}] * len(heads),
                        rng_states=[s for _, _, s in grouped], member_data=own)
    for (m1, r1), (m2, _, _), r2 in zip(alone, grouped, results, strict=True):
        assert (r1.state, r1.epochs_run, r1.best_epoch) == (r2.state, r2.epochs_run, r2.best_epoch)
        for key in ("train_loss", "val_loss", "val_r2"):
            assert r2.last_record[key] == pytest.approx(r1.last_record[key], rel=REL), key
        for (name, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters(), strict=True):
            assert p1.shape == p2.shape, name
            torch.testing.assert_close(p2, p1, rtol=REL, atol=REL, msg=name)
    return grouped, results


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_heads_of_different_widths_with_layer_norm_equal_each_head_alone(optimizer: str) -> None:
    heads = [{**h, "num_layers": 2, "activation": "gelu", "layer_norm": True} for h in HEADS]
    _compare(heads, [_data()] * len(heads), optimizer)


def test_different_activations_in_one_stack_equal_each_alone() -> None:
    heads = [{**h, "num_layers": 2, "hidden_dim_ratio": 0.5, "layer_norm": False} for h in HEADS]
    models = [m for m, _, _ in _built(heads)]
    assert len({repr(m) for m in models}) == 4  # only the activation differs
    _compare(heads, [_data()] * len(heads))


def test_different_depths_and_layer_norms_in_one_stack_equal_each_alone(tmp_path: Path) -> None:
    layouts: list[TrialLayout | None] = [TrialLayout(tmp_path / str(i)) for i in range(len(HEADS))]
    grouped, _ = _compare(HEADS, [_data()] * len(HEADS), layouts=layouts)
    for (model, cfg, _), layout in zip(grouped, layouts, strict=True):
        assert layout is not None
        own = [name for name, _ in model.named_parameters()]
        for state in (ckpt.load_latest(layout), ckpt.load_checkpoint(layout.best_checkpoint)):
            assert state is not None
            assert list(state["model"]) == own  # its own layers only, at its own widths
            model.load_state_dict(state["model"])  # strict
        optimizer = make_optimizer(model.parameters(), cfg, torch.device("cpu"))
        optimizer.load_state_dict(ckpt.load_latest(layout)["optimizer"])  # type: ignore[index]
        assert [optimizer.state[p]["exp_avg"].shape for p in model.parameters()] == \
            [p.shape for p in model.parameters()]
        norms = [json.loads(line) for line in layout.grad_norms_jsonl.read_text().splitlines()]
        assert len(norms[-1]["norms"]) == len(own) and all(v > 0 for v in norms[-1]["norms"].values())


def test_the_deepest_head_leaves_early_and_the_others_stay_exact() -> None:
    """After it stops, no member has the template's third layer: it gets no gradient (zeros)."""
    heads = [{**HEADS[0], "lr": 0.05, EXTRA_TRAIN: {"early_stopping": {"patience": 1, "min_delta": 10.0}}},
             *HEADS[1:]]
    _, results = _compare(heads, [_data()] * len(heads))
    assert results[0].epochs_run == 2 and [r.epochs_run for r in results[1:]] == [3, 3, 3]


def test_seed001_recipes_on_mixed_shapes_and_embeddings_equal_each_alone() -> None:
    """Shapes (train/mixed.py) and recipes (train/member_schedule.py) at once, as seed 001's rounds
    pack them: each head its own depth, activation and LayerNorm, embedding, warmup and linear
    decay, number of epochs and gradient accumulation."""
    recipes = [{"scheduler": "linear", "warmup_ratio": 0.2, "gradient_accumulation_steps": 2},
               {"scheduler": "linear", "warmup_ratio": 0.0, "gradient_accumulation_steps": 1, "epochs": 2},
               {"scheduler": "cosine", "warmup_ratio": 0.1, "gradient_accumulation_steps": 4},
               {"scheduler": "constant", "gradient_accumulation_steps": 3, "epochs": 4}]
    heads = [{**h, EXTRA_TRAIN: r} for h, r in zip(HEADS, recipes, strict=True)]
    _, results = _compare(heads, [_data(0.0), _data(0.3), _data(0.0), _data(-0.2)])
    assert [r.epochs_run for r in results] == [3, 2, 3, 4]


def test_heads_on_their_own_embeddings_equal_each_alone() -> None:
    """max_length 64 / 128 / 256: a different input per member, the same rows and targets."""
    datas = [_data(0.0), _data(0.3), _data(0.0), _data(-0.2)]
    _compare(HEADS, datas)


def test_padding_and_absent_layers_stay_zero_in_weights_gradients_and_optimizer_state() -> None:
    grouped = _built(HEADS)
    padded = pad_models([m.layers for m, _, _ in grouped])
    net = StackedNet(padded.models, torch.device("cpu"), [s for _, _, s in grouped], padded)
    assert net.runs and net.norms  # depths, activations and LayerNorm widths differ
    opt = BatchedOptimizer([c for _, c, _ in grouped], net.flat, net.offsets)
    real = torch.zeros_like(net.flat)
    for row, (model, _, _) in enumerate(grouped):
        for index, _ in enumerate(model.parameters()):
            net.piece(real, row, index).fill_(1.0)
    padding = real == 0
    assert padding.any()
    data, loss = _data(), batched_loss("huber", "regression")
    for step in range(5):
        xb = data.train.x[step * 16:(step + 1) * 16].unsqueeze(0).expand(4, -1, -1)
        yb = data.train.y[step * 16:(step + 1) * 16].unsqueeze(0).expand(4, -1, -1)
        grads = torch.autograd.grad(loss(net.forward(xb, train=True), yb).sum(), net.views)
        flat_grad = torch.cat([g.reshape(4, -1) for g in grads], dim=1)
        assert (flat_grad[padding] == 0).all()
        opt.step(net.flat, flat_grad)
    assert (net.flat[padding] == 0).all()
    for name, state in opt.state.items():
        assert (state[padding] == 0).all(), name


def _exp(head: dict[str, Any]) -> Experiment:
    model = {k: v for k, v in head.items() if k not in (*TRAIN_KEYS, EXTRA_TRAIN)}
    return Experiment.model_validate({
        "data": {"name": "diabetes"},
        "train": {"epochs": 2, **{k: head[k] for k in TRAIN_KEYS}, **head.get(EXTRA_TRAIN, {})},
        "model": {"family": "encoder_head", "encoder": "local", "head_layout": "halving", **model},
    })


def test_seed001_shapes_share_a_key_base_and_pad_together_when_the_flops_allow() -> None:
    data = _data()
    data = replace(data, train=replace(data.train, texts=[""] * len(data.train)))  # embedded texts
    exps = [_exp(h) for h in HEADS] + [_exp({**HEADS[1], "max_length": 256})]
    assert can_vectorize([(e, data) for e in exps]) is None
    models = [model_for(e, data) for e in exps]
    assert vectorize_error([e.train for e in exps], models) is None
    keys = [group_key(e, data) for e in exps]
    assert None not in keys and len(set(keys)) == 5
    stacks = pad_stacks(dict.fromkeys(keys, 1))  # type: ignore[arg-type]
    assert stacks[keys[1]] == stacks[keys[4]]  # another max_length: another key, one stack
    assert len(set(stacks.values())) < 5
    other = _exp({**HEADS[0], "pooling": "cls"})
    assert pad_stacks({keys[0]: 1, group_key(other, data): 1})[keys[0]] == keys[0]  # type: ignore[dict-item]


def test_compute_bound_heads_pad_only_when_the_padding_wastes_almost_nothing() -> None:
    """Widths 0.5 / 0.75 of 384-d embeddings (1.24x the FLOPs) pad at batch 8, not at batch 512
    (122 k multiply-adds a row x 512 rows: compute-bound)."""
    x = torch.zeros(600, 384)
    data = Dataset(name="generated", task="regression", train=Split(x, torch.zeros(600, 1), texts=[""] * 600),
                   val=Split(x[:10], torch.zeros(10, 1)), test=None, input_shape=(384,), output_dim=1)

    def keys(batch: int) -> dict[str, int]:
        heads = [{**HEADS[1], "num_layers": 2, "hidden_dim_ratio": r, EXTRA_TRAIN: {"batch_size": batch}}
                 for r in (0.5, 0.75)]
        return {group_key(_exp(h), data): 2 for h in heads}  # type: ignore[misc]

    assert stack_fits(keys(8)) and not stack_fits(keys(512))
