"""`data.function: module:function`: dicts, tuples, torch arrays, native splits and one-line errors."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

from tunelab.config.schema import DataSection, TaskSection
from tunelab.data import load_dataset
from tunelab.errors import ConfigError

AUTO = TaskSection()
_counter = itertools.count()


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a module into a fresh current directory; return a function making `module:function` specs."""
    monkeypatch.chdir(tmp_path)

    def write(body: str) -> str:
        name = f"tunelab_user_data_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text("import numpy as np\nimport torch\n\n" + body)
        monkeypatch.delitem(sys.modules, name, raising=False)
        return name

    yield write
    for name in [m for m in sys.modules if m.startswith("tunelab_user_data_")]:
        del sys.modules[name]


def test_tuple_of_torch_tensors_is_split_by_fractions(user_module) -> None:
    mod = user_module("def make():\n    return torch.randn(50, 3), torch.randn(50)\n")
    ds = load_dataset(DataSection(name="function", function=f"{mod}:make"), AUTO)
    assert ds.task == "regression" and ds.input_shape == (3,)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (30, 10, 10)
    assert ds.source == f"function {mod}:make"


def test_dict_with_native_val_and_declared_task(user_module) -> None:
    body = (
        "def make():\n"
        "    rng = np.random.default_rng(0)\n"
        "    return {'x': rng.normal(size=(40, 2)), 'y': rng.integers(0, 3, 40),\n"
        "            'x_val': rng.normal(size=(8, 2)), 'y_val': rng.integers(0, 3, 8),\n"
        "            'task': 'classification', 'feature_names': ['a', 'b']}\n"
    )
    mod = user_module(body)
    ds = load_dataset(DataSection(name="function", function=f"{mod}:make", test_fraction=0.25), AUTO)
    assert ds.task == "classification" and ds.feature_names == ["a", "b"]
    assert (len(ds.train), len(ds.val), len(ds.test)) == (30, 8, 10)


@pytest.mark.parametrize(
    ("body", "spec_suffix", "fragment"),
    [
        ("import not_a_real_module_xyz\n", ":make", "cannot import module"),
        ("def other():\n    pass\n", ":make", "has no function 'make'"),
        ("def make():\n    return 42\n", ":make", "must return (x, y)"),
        (
            "def make():\n    return {'x': np.zeros((3, 1)), 'y': np.zeros(2)}\n",
            ":make",
            "x has 3 rows but y has 2",
        ),
        ("def make():\n    return {'X': 1, 'y': 2}\n", ":make", "unknown keys X"),
        ("def make():\n    raise RuntimeError('no\\ndata')\n", ":make", "raised RuntimeError: no data"),
    ],
)
def test_broken_functions_give_one_line_config_errors(user_module, body: str, spec_suffix: str, fragment: str) -> None:
    mod = user_module(body)
    with pytest.raises(ConfigError) as err:
        load_dataset(DataSection(name="function", function=f"{mod}{spec_suffix}"), AUTO)
    assert err.value.key == "data.function"
    assert fragment in str(err.value) and "\n" not in str(err.value)
