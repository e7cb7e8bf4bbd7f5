"""The model-size estimate (models/size.py) is taken once per model section and shapes."""

from __future__ import annotations

import pytest

from tunelab.config.model_sections import MLPModel
from tunelab.errors import ConfigError
from tunelab.models import registry, size


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the meta-device builds the estimate makes (one per estimate not yet cached)."""
    monkeypatch.setattr(size, "_ESTIMATES", {})
    made: list[int] = []
    build = registry.MODEL_FAMILIES["mlp"]

    def counted(*args, **kwargs):
        made.append(1)
        return build(*args, **kwargs)

    monkeypatch.setitem(registry.MODEL_FAMILIES, "mlp", counted)
    return made


def test_same_model_and_shapes_are_estimated_once(builds: list[int]) -> None:
    cfg = MLPModel(hidden_dims=[64, 64])
    first = size.estimate_bytes(cfg, (8,), 1, 64)
    assert first == size.estimate_bytes(MLPModel(hidden_dims=[64, 64]), (8,), 1, 64)
    assert len(builds) == 1
    params = 8 * 64 + 64 + 64 * 64 + 64 + 64 + 1
    # weights, gradients, Adam's moments; each leaf's output (3 linears, 2 activations) kept for backward
    assert first == (params, params * size.BYTES_PER_PARAM + 64 * (64 + 64 + 64 + 64 + 1) * size.BYTES_PER_ACTIVATION)
    wider = size.estimate_bytes(MLPModel(hidden_dims=[128, 64]), (8,), 1, 64)
    larger_batch = size.estimate_bytes(cfg, (8,), 1, 256)
    assert len(builds) == 3
    assert wider is not None and wider[0] > first[0]
    assert larger_batch is not None and larger_batch[0] == first[0] and larger_batch[1] > first[1]


def test_a_cached_estimate_still_meets_the_limit_in_force(builds: list[int], monkeypatch) -> None:
    cfg = MLPModel(hidden_dims=[512, 512])
    size.check_model_size(cfg, (8,), 1, 64)
    monkeypatch.setenv(size.MAX_MODEL_GB_ENV, "0.001")
    with pytest.raises(ConfigError, match=r"over the limit of 0\.001 GB"):
        size.check_model_size(cfg, (8,), 1, 64)
    assert len(builds) == 1


def test_a_dropout_rate_changes_no_estimate_but_dropout_layers_do(builds: list[int]) -> None:
    some = size.estimate_bytes(MLPModel(hidden_dims=[32], dropout=0.2), (8,), 1, 16)
    other_rate = size.estimate_bytes(MLPModel(hidden_dims=[32], dropout=0.45), (8,), 1, 16)
    assert len(builds) == 1 and other_rate == some
    size._ESTIMATES.clear()  # the same estimate made afresh
    assert size.estimate_bytes(MLPModel(hidden_dims=[32], dropout=0.45), (8,), 1, 16) == some
    none = size.estimate_bytes(MLPModel(hidden_dims=[32], dropout=0.0), (8,), 1, 16)
    assert len(builds) == 3
    assert none is not None and some is not None and none[0] == some[0] and none[1] < some[1]  # no Dropout output
