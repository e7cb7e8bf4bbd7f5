"""`tunelab init` and `tunelab datasets`: what a new user starts from.

The CLI imports this module at start-up (for `--template` help), so `tunelab.data` (torch, pandas)
is imported only when the data sets are listed, not for `tunelab --help`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunelab.templates import TEMPLATES, choices_help, shell_path, write_template

if TYPE_CHECKING:
    from tunelab.data import DatasetStatus

__all__ = ["TEMPLATES", "choices_help", "list_datasets", "shell_path", "write_template"]


def list_datasets(data_dir: str | None = None) -> list[DatasetStatus]:
    """`tunelab.data.list_datasets`, imported on first call."""
    from tunelab.data import list_datasets as list_all

    return list_all(data_dir)
