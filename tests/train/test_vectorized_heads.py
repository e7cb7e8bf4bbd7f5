"""encoder_head with a frozen encoder trains in vectorized groups: each head equals `fit` alone."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import torch

from tunelab.config.schema import EncoderHeadModel, Experiment, TrainSection
from tunelab.data import load_dataset
from tunelab.models.encoder_head import EncoderHead
from tunelab.train.grouping import can_vectorize, group_key
from tunelab.train.loop import fit
from tunelab.train.vectorized import fit_group

RTOL, ATOL = 1e-5, 1e-6
HEADS = [  # the head's own knobs, and the trial's lr / weight decay / seed / recipe (seed 001's knobs)
    ({"dropout": 0.0, "head_lr_multiplier": 1.0}, {"lr": 1e-3, "weight_decay": 0.0, "seed": 0,
                                                   "scheduler": "linear", "warmup_ratio": 0.2,
                                                   "gradient_accumulation_steps": 2}),
    ({"dropout": 0.2, "head_lr_multiplier": 10.0}, {"lr": 3e-4, "weight_decay": 1e-2, "seed": 1}),
    ({"dropout": 0.1, "head_lr_multiplier": 3.0}, {"lr": 1e-3, "weight_decay": 0.0, "seed": 2, "epochs": 3,
                                                   "scheduler": "linear", "warmup_ratio": 0.1,
                                                   "gradient_accumulation_steps": 4, "max_grad_norm": 1.0}),
]
SHAPE = {"encoder": "local-encoder", "num_layers": 2, "hidden_dim_ratio": 0.8, "layer_norm": True}


@pytest.fixture(scope="module")
def embedded() -> Any:
    """Diabetes' 10 features stand in for cached embeddings (a frozen head sees (n, d) floats)."""
    exp = Experiment.model_validate({"data": {"name": "diabetes"}})
    data = load_dataset(exp.data, exp.task)
    return replace(data, train=replace(data.train, texts=[""] * len(data.train)))


def _heads(x_dim: int) -> list[tuple[EncoderHead, TrainSection, torch.Tensor]]:
    built = []
    for head, train in HEADS:
        cfg = EncoderHeadModel.model_validate({**SHAPE, **head})
        torch.manual_seed(train["seed"])
        model = EncoderHead(cfg, x_dim, 1)
        built.append((model, TrainSection.model_validate({"epochs": 4, "batch_size": 32, "device": "cpu", **train}),
                      torch.get_rng_state()))
    return built


def test_frozen_heads_in_a_group_equal_each_head_trained_alone(embedded: Any) -> None:
    alone = []
    for model, cfg, state in _heads(10):
        torch.set_rng_state(state)
        alone.append((model, fit(model, embedded, cfg, loss_name="mse", metrics=["r2"], layout=None)))
    grouped = _heads(10)
    results = fit_group([m for m, _, _ in grouped], embedded, [c for _, c, _ in grouped], loss_name="mse",
                        metrics=["r2"], layouts=[None] * 3, identities=[{}] * 3,
                        rng_states=[s for _, _, s in grouped])
    for (m1, r1), (m2, _, _), r2 in zip(alone, grouped, results, strict=True):
        assert (r1.state, r1.epochs_run, r1.best_epoch) == (r2.state, r2.epochs_run, r2.best_epoch)
        for key in ("train_loss", "val_loss", "val_r2", "lr"):
            assert r2.last_record[key] == pytest.approx(r1.last_record[key], rel=RTOL, abs=ATOL), key
        for (name, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters(), strict=True):
            torch.testing.assert_close(p2, p1, rtol=RTOL, atol=ATOL, msg=name)
    assert results[1].last_record["lr"] == pytest.approx(3e-3)  # lr x head_lr_multiplier, as fit records


def _exp(**model: Any) -> Experiment:
    return Experiment.model_validate({
        "data": {"name": "diabetes"}, "train": {"epochs": 2},
        "model": {"family": "encoder_head", **SHAPE, **model},
    })


def test_only_a_frozen_head_on_embeddings_groups(embedded: Any) -> None:
    assert can_vectorize([(_exp(dropout=0.0), embedded), (_exp(dropout=0.3), embedded)]) is None
    assert group_key(_exp(dropout=0.0), embedded) == group_key(_exp(dropout=0.3), embedded)
    assert group_key(_exp(head_lr_multiplier=2.0), embedded) == group_key(_exp(), embedded)
    assert group_key(_exp(num_layers=1), embedded) != group_key(_exp(), embedded)
    tokens = replace(embedded, train=replace(embedded.train, x=torch.zeros(len(embedded.train), 2, 8,
                                                                           dtype=torch.long)))
    assert "not vectorized" in (can_vectorize([(_exp(freeze_encoder=False), tokens)]) or "")
