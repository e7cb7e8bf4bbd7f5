"""Each word of the experiment file is defined once and the other lists derive from it."""

from __future__ import annotations

import math
import re

import pytest

from tunelab.config.model_sections import FAMILY_MODELS
from tunelab.config.space_limits import env_limit
from tunelab.config.vocabulary import (
    ENUMERATED_STRATEGIES,
    MODEL_FAMILY_NAMES,
    SAMPLER_STRATEGIES,
    SEARCHING_STRATEGIES,
    SEQUENTIAL_STRATEGIES,
)
from tunelab.errors import ConfigError
from tunelab.models.registry import MODEL_FAMILIES
from tunelab.runs.records import read_number


def test_every_family_has_one_section_and_one_builder() -> None:
    assert set(FAMILY_MODELS) == set(MODEL_FAMILY_NAMES) == set(MODEL_FAMILIES)
    for name, section in FAMILY_MODELS.items():
        assert section.model_fields["family"].default == name


def test_strategy_groups_follow_from_strategy_info() -> None:
    assert ENUMERATED_STRATEGIES == ("grid", "ablation")
    assert SEARCHING_STRATEGIES == ("grid", "random", "tpe", "gp", "cmaes", "qmc", "ablation")
    assert SEQUENTIAL_STRATEGIES == ("tpe", "gp", "cmaes")
    assert set(SEQUENTIAL_STRATEGIES) <= set(SAMPLER_STRATEGIES)
    assert not {"none", "lr_sweep", "staged"} & set(SEARCHING_STRATEGIES)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3), (2.5, 2.5), ("inf", math.inf), ("-inf", -math.inf), ("1e-3", 1e-3), (None, None), (True, None),
     ("abc", None), ([1], None)],
)
def test_a_logged_number_reads_back(value: object, expected: object) -> None:
    got = read_number(value)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("text", ["0", "-1", "abc", "inf", "nan"])
def test_an_env_limit_refuses_what_is_not_a_positive_finite_number(monkeypatch, text: str) -> None:
    monkeypatch.setenv("TUNELAB_TEST_LIMIT", text)
    with pytest.raises(ConfigError, match=re.escape(f"TUNELAB_TEST_LIMIT must be a positive number, got '{text}'")):
        env_limit("TUNELAB_TEST_LIMIT", 1.0, float, "a positive number")


def test_an_env_limit_reads_its_type_or_falls_back(monkeypatch) -> None:
    monkeypatch.delenv("TUNELAB_TEST_LIMIT", raising=False)
    assert env_limit("TUNELAB_TEST_LIMIT", 7, int, "a positive integer") == 7
    monkeypatch.setenv("TUNELAB_TEST_LIMIT", " 12 ")
    assert env_limit("TUNELAB_TEST_LIMIT", 7, int, "a positive integer") == 12
    monkeypatch.setenv("TUNELAB_TEST_LIMIT", "1.5")
    with pytest.raises(ConfigError, match=re.escape("must be a positive integer, got '1.5'")):
        env_limit("TUNELAB_TEST_LIMIT", 7, int, "a positive integer")
