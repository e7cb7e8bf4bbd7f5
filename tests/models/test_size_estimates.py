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
