"""Readable parameter names (models/param_names.py): what the gradient-norm legends show."""

from __future__ import annotations

from torch import nn

from tunelab.config.model_sections import CNNModel, EncoderHeadModel, MLPModel, ResNetModel
from tunelab.models.cnn import build_cnn
from tunelab.models.encoder_head import EncoderHead
from tunelab.models.mlp import build_mlp
from tunelab.models.param_names import param_names
from tunelab.models.resnet import build_resnet


def _names(model: nn.Module) -> list[str]:
    names = param_names(model)
    assert list(names) == [n for n, _ in model.named_parameters()]  # every parameter, in order
    assert len(set(names.values())) == len(names)  # unique
    return list(names.values())


def test_mlp_layers_are_named_by_role_not_index() -> None:
    model = build_mlp(MLPModel(hidden_dims=[8, 4], layer_norm=True, dropout=0.1), (3, 2), 2)
    assert _names(model) == [
        "hidden 1 Linear.weight", "hidden 1 Linear.bias", "hidden 1 LayerNorm.weight", "hidden 1 LayerNorm.bias",
        "hidden 2 Linear.weight", "hidden 2 Linear.bias", "hidden 2 LayerNorm.weight", "hidden 2 LayerNorm.bias",
        "output Linear.weight", "output Linear.bias",
    ]


def test_cnn_convolutions_then_head() -> None:
    names = _names(build_cnn(CNNModel(), (1, 16, 16), 10))
    assert names[:2] == ["conv 1 Conv2d.weight", "conv 1 Conv2d.bias"]
    assert names[-2:] == ["output Linear.weight", "output Linear.bias"]


def test_resnet_stem_blocks_and_shortcuts() -> None:
    names = _names(build_resnet(ResNetModel(), (3, 32, 32), 10))
    assert names[0] == "stem 1 Conv2d.weight" and names[1] == "stem 1 BatchNorm2d.weight"
    assert "block 1 conv1 Conv2d.weight" in names and "block 3 shortcut Conv2d.weight" in names
    assert names[-1] == "output Linear.bias"
    assert all(n.endswith((".weight", ".bias")) for n in names)  # the gradient rules read the ending


def test_encoder_head_and_python_models() -> None:
    assert _names(EncoderHead(EncoderHeadModel(), 16, 3))[-2:] == ["output Linear.weight", "output Linear.bias"]

    class Net(nn.Module):  # a python builder's own module: its parts keep their attribute names
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
            self.classifier = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    assert _names(Net()) == ["features conv 1 Conv2d.weight", "features conv 1 Conv2d.bias", "hidden 1 Linear.weight",
                             "hidden 1 Linear.bias", "output Linear.weight", "output Linear.bias"]
