"""`model.head_layout: halving`: seed 001's head widths, int(encoder width x ratio x 0.5^i)."""

from __future__ import annotations

import pytest
from torch import nn

from tunelab.config.schema import EncoderHeadModel
from tunelab.models import build_model
from tunelab.models.encoder_head import head_widths


@pytest.mark.parametrize(("in_dim", "layers", "ratio", "widths"), [
    (768, 3, 0.75, [576, 288, 144]),  # seed 001's ModernBERT width
    (768, 2, 0.25, [192, 96]),
    (384, 3, 0.75, [288, 144, 72]),  # the ratio layout gives [288, 216, 162]
    (100, 3, 0.75, [75, 37, 18]),  # truncated like the seed's int(), not rounded
    (4, 3, 0.25, [1, 1, 1]),  # never a zero-width layer
])
def test_halving_layout_matches_seed_001(in_dim, layers, ratio, widths):
    cfg = EncoderHeadModel(num_layers=layers, hidden_dim_ratio=ratio, head_layout="halving")
    assert head_widths(cfg, in_dim) == widths
    model = build_model(cfg, (in_dim,), 1, seed=0)
    assert [m.out_features for m in model.layers if isinstance(m, nn.Linear)] == [*widths, 1]


def test_ratio_layout_is_still_the_default():
    cfg = EncoderHeadModel(num_layers=3, hidden_dim_ratio=0.75)
    assert cfg.head_layout == "ratio"
    assert head_widths(cfg, 384) == [288, 216, 162]


def test_unknown_head_layout_is_refused():
    with pytest.raises(ValueError, match="head_layout"):
        EncoderHeadModel(head_layout="shrinking")
