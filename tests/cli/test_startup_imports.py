"""`tunelab --help` and worker start-up must not pay for torch, sklearn, pandas or matplotlib
before an argument is parsed; the public API still resolves to the same objects."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "sklearn", "pandas", "matplotlib", "optuna")


def _imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_importing_the_package_and_the_cli_imports_no_heavy_module() -> None:
    assert _imported_after("import tunelab, tunelab.cli") == set()


def test_the_public_api_is_bound_on_first_use() -> None:
    import tunelab
    from tunelab.app.train import train
    from tunelab.errors import ConfigError
    from tunelab.runs.view import RunView

    assert tunelab.train.__wrapped__ is train  # wrapped so a ConfigError names its file:line
    assert tunelab.ConfigError is ConfigError
    assert tunelab.load_run is RunView
    assert set(tunelab.__all__) <= set(dir(tunelab))


def test_the_train_subpackage_does_not_hide_the_train_function() -> None:
    import tunelab
    import tunelab.train.loop  # binds the subpackage on its parent, which the package refuses
    from tunelab.app.train import train

    assert callable(tunelab.train) and tunelab.train.__wrapped__ is train


def test_an_unknown_name_is_an_attribute_error() -> None:
    import tunelab

    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(tunelab, "no_such_name")
