"""Download code for the file-based built-ins, for users with a network (never used by the tests).

Each function writes into `dest_dir/<data set>/` atomically (temp file + rename), so an
interrupted download never leaves a half file that a later run would read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from tunelab.errors import DataError

CALIFORNIA_URL = "https://ndownloader.figshare.com/files/5976036"  # scikit-learn's cal_housing.tgz
CALIFORNIA_SHA256 = "aaa5c9a6afe2225cc2aed2723682ae403280c4a3695a2ddda4ffb5d8215ea681"
ESL_URL = "https://hastie.su.domains/ElemStatLearn/datasets/"
QUERY_URL = "https://raw.githubusercontent.com/google-research-datasets/query-wellformedness/master/"
KAGGLE_URL = "https://www.kaggle.com/competitions/house-prices-advanced-regression-techniques/data"


def _fetch(url: str, target: Path, sha256: str | None = None) -> Path:
    """Stream `url` to `target` via a temp file in the same folder; check the hash when known."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if sha256 and digest.hexdigest() != sha256:
            raise DataError(f"download of {url} has sha256 {digest.hexdigest()}, expected {sha256}")
        os.replace(tmp_name, target)
    except OSError as exc:
        raise DataError(f"cannot download {url}: {exc}") from exc
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def download_california_housing(dest_dir: Path) -> None:
    """scikit-learn's cal_housing.tgz; keeps its two members cal_housing.data and cal_housing.domain."""
    folder = Path(dest_dir) / "california_housing"
    archive = _fetch(CALIFORNIA_URL, folder / "cal_housing.tgz", CALIFORNIA_SHA256)
    with tarfile.open(archive, "r:gz") as tar:
        for member in ("cal_housing.data", "cal_housing.domain"):
            source = tar.extractfile(f"CaliforniaHousing/{member}")
            if source is None:
                raise DataError(f"{archive} has no CaliforniaHousing/{member}")
            tmp = folder / f".{member}.part"
            with source, tmp.open("wb") as out:
                shutil.copyfileobj(source, out)
            os.replace(tmp, folder / member)


def download_usps(dest_dir: Path) -> None:
    """ESL's zip.train.gz and zip.test.gz (the 7291/2007 USPS split)."""
    for name in ("zip.train.gz", "zip.test.gz"):
        _fetch(ESL_URL + name, Path(dest_dir) / "usps" / name)


def download_query_wellformedness(dest_dir: Path) -> None:
    """train/dev/test.tsv from github.com/google-research-datasets/query-wellformedness."""
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        _fetch(QUERY_URL + name, Path(dest_dir) / "query_wellformedness" / name)


def download_house_prices(dest_dir: Path) -> None:
    """Kaggle needs a login and accepting the competition rules, so this only says what to do."""
    raise DataError(
        f"data set house_prices: cannot be downloaded automatically (Kaggle needs a login); download "
        f"train.csv from {KAGGLE_URL} into {Path(dest_dir) / 'house_prices'}"
    )
