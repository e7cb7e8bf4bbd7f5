"""The resnet family: the published ResNet-18/34 (CIFAR stem) shapes, knobs, and bad input shapes."""

from __future__ import annotations

import pytest
import torch

from tunelab.config.schema import ResNetModel
from tunelab.errors import ConfigError
from tunelab.models import build_model


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("depth", "count"), [(18, 11_173_962), (34, 21_282_122)])
def test_depth_builds_the_known_resnet_parameter_count(depth: int, count: int) -> None:
    model = build_model(ResNetModel(depth=depth), (3, 32, 32), 10, seed=0)
    assert _params(model) == count  # the CIFAR ResNet-18/34 (3x3 stem, 64 base channels) counts
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_blocks_and_width_override_depth() -> None:
    small = build_model(ResNetModel(blocks=[1, 1], width=8), (1, 16, 16), 4, seed=0)
    blocks = [m for m in small.modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 2
    assert small[-1].in_features == 16  # width x 2 in the second stage
    assert small(torch.zeros(3, 1, 16, 16)).shape == (3, 4)


def test_large_stem_handles_seed_003_photo_size() -> None:
    model = build_model(ResNetModel(stem="large", width=8), (3, 150, 150), 6, seed=0)
    assert model(torch.zeros(2, 3, 150, 150)).shape == (2, 6)


def test_same_seed_same_weights() -> None:
    a = build_model(ResNetModel(blocks=[1], width=4), (3, 8, 8), 2, seed=3)
    b = build_model(ResNetModel(blocks=[1], width=4), (3, 8, 8), 2, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_flat_rows_are_refused_with_the_family_key() -> None:
    with pytest.raises(ConfigError, match=r"model.family: family resnet needs image data .* shape \(64,\)"):
        build_model(ResNetModel(), (64,), 10, seed=0)
