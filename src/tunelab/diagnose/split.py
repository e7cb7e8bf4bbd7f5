"""The split a study really used, for the decision card's "Fixed" line.

The configured fractions are not the split when a data set brings its own (toy_2d: 180 train and
60 validation rows, no test split): the card must not say "val 0.2, test 0.2" then. The rows come
from the run folder's `split.json`, written when the study loaded its data; a folder without it
(written by an older tunelab) falls back to the configured fractions, marked so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunelab.diagnose.readings import fmt


def split_text(experiment: Mapping[str, Any], counts: tuple[int, int, int] | None) -> str:
    """`wine.csv (142 train / 36 val / no test rows; split_seed 0)` or the configured fractions."""
    data = experiment.get("data") if isinstance(experiment.get("data"), Mapping) else {}
    source = str(data.get("name") or "data")
    if source == "csv" and data.get("path"):
        source = str(data["path"]).replace("\\", "/").rsplit("/", 1)[-1]
    seed = f"split_seed {data.get('split_seed')}"
    if counts is None:
        return (f"{source} (configured: val {fmt(data.get('val_fraction'))}, "
                f"test {fmt(data.get('test_fraction'))}; {seed})")
    train, val, test = counts
    tested = f"{test} test rows" if test else "no test split"
    return f"{source} ({train} train / {val} val rows, {tested}; {seed})"

