"""Losses named in config/vocabulary.py: `l1` (mean absolute error) as the worked example of adding one."""

from __future__ import annotations

import pytest
import torch

from tunelab.config.load import load_experiment
from tunelab.config.vocabulary import LOSS_NAMES
from tunelab.errors import ConfigError
from tunelab.train.batched_model import batched_loss
from tunelab.train.losses import make_loss


def test_l1_is_the_mean_absolute_error() -> None:
    out = torch.tensor([[1.0], [2.0], [5.0]])
    y = torch.tensor([[0.0], [4.0], [5.0]])
    assert make_loss("l1", "regression")(out, y).item() == pytest.approx((1 + 2 + 0) / 3)


def test_l1_on_classification_compares_outputs_with_one_hot_targets() -> None:
    out = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 2.0]])
    y = torch.tensor([0, 1])  # one-hot [1,0,0] and [0,1,0]: |errors| 0.5 and 1 + 2
    assert make_loss("l1", "classification")(out, y).item() == pytest.approx(3.5 / 6)


@pytest.mark.parametrize("name", ["mse", "huber", "l1"])
def test_each_member_of_a_group_gets_the_loss_it_would_get_alone(name: str) -> None:
    torch.manual_seed(0)
    out, y = torch.randn(3, 8, 2) * 3, torch.randn(3, 8, 2)
    per_member = batched_loss(name, "regression", 0.5)(out, y)
    alone = [make_loss(name, "regression", 0.5)(out[k], y[k]) for k in range(3)]
    assert torch.allclose(per_member, torch.stack(alone))


def test_the_experiment_file_accepts_l1_and_names_it_when_a_loss_is_unknown(tmp_path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("name: l1_demo\ndata: {name: digits}\ntrain: {loss: l1}\n")
    assert load_experiment(path).train.loss == "l1"
    assert "l1" in LOSS_NAMES
    path.write_text("name: l1_demo\ndata: {name: digits}\ntrain: {loss: l2}\n")
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert "l1" in err.value.one_line() and "train.loss" in err.value.one_line()
