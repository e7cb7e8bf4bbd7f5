"""The split a study really used, for the decision card's "Fixed" line.

The configured fractions are not the split when a data set brings its own (toy_2d: 180 train and
60 validation rows, no test split): the card must not say "val 0.2, test 0.2" then. The rows are
counted by loading the data the way the study did; when that is not possible here (a file that
moved, a data set not downloaded) the card falls back to the configured fractions, marked so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunelab.diagnose.readings import fmt


def split_text(experiment: Mapping[str, Any]) -> str:
    """`wine.csv (142 train / 36 val / no test rows; split_seed 0)` or the configured fractions."""
    data = experiment.get("data") if isinstance(experiment.get("data"), Mapping) else {}
    source = str(data.get("name") or "data")
    if source == "csv" and data.get("path"):
        source = str(data["path"]).replace("\\", "/").rsplit("/", 1)[-1]
    seed = f"split_seed {data.get('split_seed')}"
    try:
        counts = _counts(experiment)
    except Exception:  # any failure to reload means: describe the configuration instead
        counts = None
    if counts is None:
        return (f"{source} (configured: val {fmt(data.get('val_fraction'))}, "
                f"test {fmt(data.get('test_fraction'))}; {seed})")
    train, val, test = counts
    tested = f"{test} test rows" if test else "no test split"
    return f"{source} ({train} train / {val} val rows, {tested}; {seed})"


def _counts(experiment: Mapping[str, Any]) -> tuple[int, int, int] | None:
    from tunelab.config.schema import DataSection, TaskSection
    from tunelab.data import load_dataset

    data = DataSection.model_validate(experiment.get("data") or {})
    task = TaskSection.model_validate(experiment.get("task") or {})
    dataset = load_dataset(data, task)
    test = len(dataset.test) if dataset.test is not None else 0
    return len(dataset.train), len(dataset.val), test
