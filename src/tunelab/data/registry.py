"""BUILTINS: every named data set, its task and defaults, where its files live and how to get them."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tunelab.config.schema import DataSection
from tunelab.data import builtins, download, tabular
from tunelab.data.locate import data_roots, find_files
from tunelab.data.raw import RawData
from tunelab.errors import ConfigError

Loader = Callable[[DataSection, Path | None], RawData]

# Sources that are not data sets of their own: a user file and a user function.
USER_SOURCES: tuple[str, ...] = ("csv", "function", "image_folder")


@dataclass(frozen=True)
class BuiltinSpec:
    """One built-in data set. `files`: alternatives, each a tuple of files that must sit together."""

    name: str
    task: str
    description: str
    loader: Loader
    standardize: bool = False
    standardize_target: bool = False
    files: tuple[tuple[str, ...], ...] = ()
    download: Callable[[Path], None] | None = None
    how_to_get: str = ""

    @property
    def file_based(self) -> bool:
        return bool(self.files)


@dataclass(frozen=True)
class DatasetStatus:
    """One line of `tunelab datasets`."""

    name: str
    task: str
    description: str
    available: bool
    where: str


_HOW = ", set TUNELAB_DATA_DIR, or set data.download: true"

BUILTINS: dict[str, BuiltinSpec] = {
    spec.name: spec
    for spec in (
        BuiltinSpec(
            "california_housing",
            "regression",
            "1990 California block groups, 8 features, median house value in $100k (20,640 rows)",
            builtins.load_california_housing,
            standardize=True,
            files=(("cal_housing.data",), ("housing.csv",)),
            download=download.download_california_housing,
            how_to_get="put StatLib's cal_housing.data (or Géron's housing.csv) there" + _HOW,
        ),
        BuiltinSpec(
            "diabetes",
            "regression",
            "scikit-learn diabetes progression, 10 features (442 rows)",
            builtins.load_diabetes,
            standardize=True,
            standardize_target=True,
        ),
        BuiltinSpec(
            "digits",
            "classification",
            "scikit-learn 8x8 handwritten digits, 10 classes (1,797 rows)",
            builtins.load_digits,
        ),
        BuiltinSpec(
            "house_prices",
            "regression",
            "Kaggle Ames house prices, SalePrice from 4 features (default) or all 79 (1,460 rows)",
            tabular.load_house_prices,
            standardize=True,
            standardize_target=True,
            files=(("train.csv",),),
            download=download.download_house_prices,
            how_to_get=f"download Kaggle's train.csv from {download.KAGGLE_URL} into it, or set TUNELAB_DATA_DIR",
        ),
        BuiltinSpec(
            "query_wellformedness",
            "regression",
            "Google query well-formedness rating 0..1 of 25,100 queries (text; train/dev/test)",
            builtins.load_query_wellformedness,
            files=(("train.tsv", "dev.tsv", "test.tsv"),),
            download=download.download_query_wellformedness,
            how_to_get="put train.tsv, dev.tsv and test.tsv of google-research-datasets/"
            "query-wellformedness there" + _HOW,
        ),
        BuiltinSpec(
            "toy_2d",
            "classification",
            "240 generated 2-D points, linear boundary (180 train / 60 val)",
            builtins.load_toy_2d,
        ),
        BuiltinSpec(
            "wine",
            "classification",
            "scikit-learn wine, 13 measurements, 3 cultivars (178 rows)",
            builtins.load_wine,
            standardize=True,
        ),
        BuiltinSpec(
            "usps",
            "classification",
            "USPS 16x16 handwritten digits, 10 classes (7,291 train + 2,007 test)",
            builtins.load_usps,
            files=(("zip.train.gz", "zip.test.gz"),),
            download=download.download_usps,
            how_to_get="put ESL's zip.train.gz and zip.test.gz there" + _HOW,
        ),
    )
}

# Defaults of the user sources: a CSV is usually raw tabular data; a function's arrays are taken as given.
_USER_DEFAULTS: dict[str, dict[str, object]] = {
    "csv": {"task": "auto", "standardize": True, "standardize_target": False},
    "function": {"task": "auto", "standardize": False, "standardize_target": False},
    "image_folder": {"task": "classification", "standardize": False, "standardize_target": False},
}


def known_names() -> list[str]:
    """Every accepted `data.name`, sorted."""
    return sorted([*BUILTINS, *USER_SOURCES])


def check_name(name: str) -> None:
    """Raise the one-line `data.name` error, with a did-you-mean hint, for an unknown name."""
    if name in BUILTINS or name in USER_SOURCES:
        return
    names = known_names()
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ConfigError(f"unknown data set {name!r}; choose one of {', '.join(names)}{hint}", key="data.name")


def dataset_defaults(name: str) -> dict[str, object]:
    """Task and standardization defaults of a data set, without loading it (resolves `null` keys)."""
    check_name(name)
    if name in _USER_DEFAULTS:
        return dict(_USER_DEFAULTS[name])
    spec = BUILTINS[name]
    return {"task": spec.task, "standardize": spec.standardize, "standardize_target": spec.standardize_target}


def list_datasets(data_dir: str | None = None) -> list[DatasetStatus]:
    """Every built-in, whether it can be loaded here, and from where (for `tunelab datasets`)."""
    roots = data_roots(data_dir)
    rows = []
    for spec in BUILTINS.values():
        if not spec.file_based:
            origin = "generated" if spec.name == "toy_2d" else "bundled with scikit-learn"
            rows.append(DatasetStatus(spec.name, spec.task, spec.description, True, origin))
            continue
        found = find_files(spec.name, spec.files, roots)
        where = str(found.parent) if found else "not found (searched: " + ", ".join(str(r) for r in roots) + ")"
        rows.append(DatasetStatus(spec.name, spec.task, spec.description, found is not None, where))
    return rows
