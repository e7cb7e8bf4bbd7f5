"""Find the local copy of a file-based data set: which folders to search, in which order.

Order: the explicit folder (`--data-dir`), else `data.data_dir`, else `$TUNELAB_DATA_DIR`,
else `./data` and `~/.cache/tunelab/data`. Nothing outside the current folder and the user's cache
is searched by default: a sibling folder must never silently supply the data of a run.
Inside each folder a data set may sit in its own subfolder (`<dir>/usps/`) or directly in it.
"""

from __future__ import annotations

import os
from pathlib import Path

from tunelab.errors import DataError, DataPathError

ENV_VAR = "TUNELAB_DATA_DIR"
CACHE_DIR = Path("~/.cache/tunelab/data")
DEFAULT_ROOTS: tuple[str, ...] = ("./data", str(CACHE_DIR))


def _expand(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().resolve()


def data_roots(explicit: str | None = None, configured: str | None = None) -> list[Path]:
    """The folders searched for local copies, first match wins."""
    chosen = explicit or configured or os.environ.get(ENV_VAR)
    if chosen:
        return [_expand(chosen)]
    return [_expand(root) for root in DEFAULT_ROOTS]


def download_root(explicit: str | None = None, configured: str | None = None) -> Path:
    """Where a download goes: the folder the user named, else the per-user cache."""
    chosen = explicit or configured or os.environ.get(ENV_VAR)
    return _expand(chosen) if chosen else _expand(CACHE_DIR)


def candidate_folders(name: str, roots: list[Path]) -> list[Path]:
    """`<root>/<name>/` then `<root>/` for every root, in search order."""
    folders: list[Path] = []
    for root in roots:
        folders.extend([root / name, root])
    return folders


def find_files(name: str, alternatives: tuple[tuple[str, ...], ...], roots: list[Path]) -> Path | None:
    """The first file of the first alternative whose files all sit in one folder, or None.

    Roots are searched outermost so the first folder holding the data set wins; inside a root the
    preferred alternative (e.g. `cal_housing.data` over `housing.csv`) wins.
    """
    for root in roots:
        for files in alternatives:
            for folder in (root / name, root):
                if all((folder / f).is_file() for f in files):
                    return folder / files[0]
    return None


def missing_error(
    name: str, alternatives: tuple[tuple[str, ...], ...], roots: list[Path], how: str, key: str | None = None
) -> DataError:
    """One line: which data set, which file, where we looked, how to get it. `key`: the experiment key
    that chose the folder (`data.data_dir`), so the error names the file:line that set it."""
    searched = ", ".join(str(f) for f in candidate_folders(name, roots))
    wanted = alternatives[0][0]
    where = f" in {roots[0]}" if len(roots) == 1 else ""
    message = f"data set {name}: {wanted} not found{where} (searched: {searched}); {how}"
    return DataPathError(message, key=key) if key else DataError(message)
